use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `MixtureOfDiagNormals`: a mixture of `K` normals in `D` dimensions with diagonal
/// covariances, `p(x) = Σ_k π_k Π_d N(x_d; μ_kd, σ_kd)`, `π = softmax(component_logits)`.
///
/// Parameters: `locs` and `coord_scale` `[K, D]`, `component_logits` `[K]`. Event shape `[D]`,
/// batch shape `[]`. Draws pick a component, then its normal (not reparameterized: Pyro's
/// implicit-gradient sampler is not reproduced).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let o = (Kind::Double, Device::Cpu);
/// let d = MixtureOfDiagNormals::new(&Tensor::zeros([2, 3], o), &Tensor::ones([2, 3], o),
///     &Tensor::zeros([2], o))?;
/// // Two identical standard normals: the mixture is one.
/// let lp = d.log_prob(&Tensor::zeros([3], o))?.double_value(&[]);
/// assert!((lp + 1.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MixtureOfDiagNormals {
    locs: Tensor,
    coord_scale: Tensor,
    log_weights: Tensor,
    event_shape: Vec<i64>,
}

impl MixtureOfDiagNormals {
    /// `MixtureOfDiagNormals(locs, coord_scale, component_logits)`.
    pub fn new(locs: &Tensor, coord_scale: &Tensor, component_logits: &Tensor) -> Result<Self> {
        let (l, s, w) = (locs.size(), coord_scale.size(), component_logits.size());
        if l.len() != 2 || s != l || w != [l[0]] {
            return Err(Error::InvalidParameter {
                dist: "MixtureOfDiagNormals",
                param: "locs",
                expected: format!(
                    "locs and coord_scale [K, D] and component_logits [K]; got {l:?}, {s:?}, \
                     {w:?}"
                ),
            });
        }
        super::check_positive("MixtureOfDiagNormals", "coord_scale", coord_scale)?;
        let lw = component_logits
            .f_to_kind(locs.kind())?
            .f_log_softmax(-1, None::<Kind>)?;
        Ok(MixtureOfDiagNormals {
            locs: locs.shallow_clone(),
            coord_scale: coord_scale.f_to_kind(locs.kind())?,
            log_weights: lw,
            event_shape: vec![l[1]],
        })
    }
}

impl Distribution for MixtureOfDiagNormals {
    fn name(&self) -> &'static str {
        "MixtureOfDiagNormals"
    }
    fn batch_shape(&self) -> &[i64] {
        &[]
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::RealVector
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let n: i64 = sample_shape.iter().product();
            let k = self
                .log_weights
                .f_exp()?
                .f_multinomial(n.max(1), true)?
                .f_narrow(0, 0, n)?;
            let mu = self.locs.f_index_select(0, &k)?;
            let sd = self.coord_scale.f_index_select(0, &k)?;
            let x = Tensor::f_randn(mu.size().as_slice(), (mu.kind(), mu.device()))?
                .f_mul(&sd)?
                .f_add(&mu)?;
            let mut shape = sample_shape.to_vec();
            shape.extend_from_slice(&self.event_shape);
            Ok(x.f_reshape(shape.as_slice())?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        // [.., 1, D] against [K, D]: per-component log-densities, then logsumexp over K.
        let x = value.f_unsqueeze(-2)?;
        let z = x.f_sub(&self.locs)?.f_div(&self.coord_scale)?;
        let per = z
            .f_square()?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.coord_scale.f_log()?)?
            .f_sub_scalar(0.5 * (2.0 * PI).ln())?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        Ok(per
            .f_add(&self.log_weights)?
            .f_logsumexp([-1i64].as_slice(), false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        if batch_shape.is_empty() {
            return Ok(Rc::new(MixtureOfDiagNormals {
                locs: self.locs.shallow_clone(),
                coord_scale: self.coord_scale.shallow_clone(),
                log_weights: self.log_weights.shallow_clone(),
                event_shape: self.event_shape.clone(),
            }));
        }
        Err(Error::Unsupported(format!(
            "MixtureOfDiagNormals has batch shape [] (as in Pyro); expanding it to \
             {batch_shape:?} is not supported"
        )))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self
            .log_weights
            .f_exp()?
            .f_unsqueeze(-1)?
            .f_mul(&self.locs)?
            .f_sum_dim_intlist(0, false, None::<Kind>)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let w = self.log_weights.f_exp()?.f_unsqueeze(-1)?;
        let m = self.mean()?;
        let second = self.coord_scale.f_square()?.f_add(&self.locs.f_square()?)?;
        Ok(w.f_mul(&second)?
            .f_sum_dim_intlist(0, false, None::<Kind>)?
            .f_sub(&m.f_square()?)?)
    }
}
