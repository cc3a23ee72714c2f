use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::uniform_open;
use super::{expand_param, extended_shape, validate_sample, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `VonMises3D`: the von Mises–Fisher distribution on the unit sphere in 3 dimensions,
/// by one concentration vector `c = κ μ` (mean direction `μ`, concentration `κ = |c|`).
///
/// Density: `p(x) = κ / (4π sinh κ) exp(⟨c, x⟩)` (`1/(4π)` at `κ = 0`). Sampling by Wood's
/// (1994) method for the sphere, which is exact in 3 dimensions (not reparameterized).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = VonMises3D::new(&Tensor::from_slice(&[0.0f64, 0.0, 2.0]))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[0.0f64, 0.0, 1.0]))?.double_value(&[]);
/// let want = 2.0 + 2f64.ln() - (4.0 * std::f64::consts::PI * 2f64.sinh()).ln();
/// assert!((lp - want).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VonMises3D {
    concentration: Tensor,
    batch_shape: Vec<i64>,
}

impl VonMises3D {
    /// `VonMises3D(concentration)`, `concentration` `[.., 3]`.
    pub fn new(concentration: &Tensor) -> Result<VonMises3D> {
        let mut batch = concentration.size();
        if batch.pop() != Some(3) {
            return Err(Error::InvalidParameter {
                dist: "VonMises3D",
                param: "concentration",
                expected: format!("a [.., 3] vector, got shape {:?}", concentration.size()),
            });
        }
        Ok(VonMises3D {
            concentration: concentration.shallow_clone(),
            batch_shape: batch,
        })
    }

    fn kappa(&self) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?)
    }
}

impl Distribution for VonMises3D {
    fn name(&self) -> &'static str {
        "VonMises3D"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[3]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Sphere
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let shape = extended_shape(self, sample_shape);
            let batch = &shape[..shape.len() - 1];
            let c = &self.concentration;
            let k = self.kappa()?.f_clamp_min(1e-12)?;
            // w = cos θ from its marginal: w = 1 + log(u + (1 - u) e^(-2κ)) / κ.
            let u = uniform_open(batch, c)?;
            let e = k.f_mul_scalar(-2.0)?.f_exp()?;
            let w = u
                .f_add(&u.f_neg()?.f_add_scalar(1.0)?.f_mul(&e)?)?
                .f_log()?
                .f_div(&k)?
                .f_add_scalar(1.0)?
                .f_clamp(-1.0, 1.0)?;
            // A uniform direction around the pole.
            let phi = uniform_open(batch, c)?.f_mul_scalar(2.0 * PI)?;
            let s = w
                .f_square()?
                .f_neg()?
                .f_add_scalar(1.0)?
                .f_clamp_min(0.0)?
                .f_sqrt()?;
            let x = Tensor::f_stack(&[s.f_mul(&phi.f_cos()?)?, s.f_mul(&phi.f_sin()?)?, w], -1)?;
            // Householder reflection taking e₃ to μ: H = I - 2 v vᵀ / |v|², v = e₃ - μ.
            let mu = c.f_div(&k.f_unsqueeze(-1)?)?;
            let e3 = Tensor::f_from_slice(&[0.0, 0.0, 1.0])?
                .f_to_kind(c.kind())?
                .f_to_device(c.device())?;
            let v = e3.f_sub(&mu)?;
            let vv = v.f_square()?.f_sum_dim_intlist(-1, true, None::<Kind>)?;
            let proj = x.f_mul(&v)?.f_sum_dim_intlist(-1, true, None::<Kind>)?;
            let reflected = x.f_sub(
                &v.f_mul(&proj)?
                    .f_mul_scalar(2.0)?
                    .f_div(&vv.f_clamp_min(1e-30)?)?,
            )?;
            // μ = e₃ already: no reflection.
            let at_pole = vv.f_lt(1e-24)?;
            Ok(x.f_where_self(&at_pole, &reflected)?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let c = &self.concentration;
        let k = self.kappa()?;
        let dot = c.f_mul(value)?.f_sum_dim_intlist(-1, false, None::<Kind>)?;
        // log(κ / sinh κ) = log 2κ - κ - log1p(-e^(-2κ)), and -κ²/6 near 0.
        let big = k.f_gt(1e-4)?;
        let safe = k.f_clamp_min(1e-4)?;
        let exact = safe
            .f_mul_scalar(2.0)?
            .f_log()?
            .f_sub(&safe)?
            .f_sub(&safe.f_mul_scalar(-2.0)?.f_exp()?.f_neg()?.f_log1p()?)?;
        let small = k.f_square()?.f_div_scalar(-6.0)?;
        let log_ratio = exact.f_where_self(&big, &small)?;
        Ok(dot.f_add(&log_ratio)?.f_sub_scalar((4.0 * PI).ln())?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(VonMises3D {
            concentration: expand_param(&self.concentration, batch_shape, &[3])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        // E[x] = (coth κ - 1/κ) μ
        let k = self.kappa()?.f_clamp_min(1e-6)?;
        let a = k.f_tanh()?.f_reciprocal()?.f_sub(&k.f_reciprocal()?)?;
        Ok(self
            .concentration
            .f_div(&k.f_unsqueeze(-1)?)?
            .f_mul(&a.f_unsqueeze(-1)?)?)
    }
}
