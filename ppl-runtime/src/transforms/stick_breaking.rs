use tch::{Kind, Tensor};

use super::Transform;
use crate::constraints::Constraint;
use crate::error::Result;

/// The stick-breaking bijection from `R^(K-1)` onto the `K`-simplex (torch's
/// `StickBreakingTransform`): `z_k = sigmoid(x_k - log(K - 1 - k))`, `y_k = z_k ∏_{j<k} (1 - z_j)`.
#[derive(Debug, Clone, Copy)]
pub struct StickBreakingTransform;

fn offset(k: i64, x: &Tensor) -> Result<Tensor> {
    // log(K-1-k) for k in 0..K-1 where K-1 = k (the input size)
    let r = Tensor::f_arange_start_step(k, 0, -1, (x.kind(), x.device()))?;
    Ok(r.f_log()?)
}

impl Transform for StickBreakingTransform {
    fn codomain(&self) -> Constraint {
        Constraint::Simplex
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = x.size().last().copied().unwrap_or(0);
        // Clipped as NumPyro does: in float32 sigmoid reaches exactly 1 near x = 17 and 0 below
        // x = -88, which would leave zeros in y and make log-densities inf - inf = NaN.
        let tiny = crate::distributions::finfo_tiny(x.kind());
        let eps = crate::distributions::finfo_eps(x.kind());
        let z = x
            .f_sub(&offset(k, x)?)?
            .f_sigmoid()?
            .f_clamp(tiny, 1.0 - eps)?;
        let one_minus = z.f_neg()?.f_add_scalar(1.0)?;
        let cum = one_minus.f_cumprod(-1, None::<Kind>)?;
        let pad_one = |t: &Tensor, front: bool| -> Result<Tensor> {
            let mut s = t.size();
            if let Some(l) = s.last_mut() {
                *l = 1;
            }
            let one = Tensor::f_ones(s.as_slice(), (t.kind(), t.device()))?;
            Ok(if front {
                Tensor::f_cat(&[&one, t], -1)?
            } else {
                Tensor::f_cat(&[t, &one], -1)?
            })
        };
        Ok(pad_one(&z, false)?.f_mul(&pad_one(&cum, true)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let k = y.size().last().copied().unwrap_or(1) - 1;
        let y_crop = y.f_narrow(-1, 0, k)?;
        let tiny = crate::distributions::finfo_tiny(y.kind());
        let sf = y_crop
            .f_cumsum(-1, None::<Kind>)?
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_clamp_min(tiny)?;
        Ok(y_crop.f_log()?.f_sub(&sf.f_log()?)?.f_add(&offset(k, y)?)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let k = x.size().last().copied().unwrap_or(0);
        let xo = x.f_sub(&offset(k, x)?)?;
        let y_crop = y.f_narrow(-1, 0, k)?;
        // sum(-x + logsigmoid(x) + log(y_k)) as in torch
        Ok(xo
            .f_neg()?
            .f_add(&xo.f_log_sigmoid()?)?
            .f_add(&y_crop.f_log()?)?
            .f_sum_dim_intlist(-1, false, None)?)
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape.to_vec();
        if let Some(l) = s.last_mut() {
            *l += 1;
        }
        s
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape.to_vec();
        if let Some(l) = s.last_mut() {
            *l -= 1;
        }
        s
    }
}
