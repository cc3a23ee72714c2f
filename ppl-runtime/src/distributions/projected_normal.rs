use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::std_normal_cdf;
use super::{expand_param, extended_shape, validate_sample, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `ProjectedNormal`: `x / |x|` for `x ~ N(concentration, I)`, a unimodal distribution on
/// the unit sphere in `D` dimensions that reparameterizes well.
///
/// Density on the sphere: with `t = ⟨c, u⟩` and `r² = |c|² - t²`,
/// `p(u) = (2π)^(-(D-1)/2) exp(-r²/2) M_(D-1)(t)` where `M_k(t) = ∫_0^∞ s^k φ(s - t) ds`
/// (`M_0 = Φ(t)`, `M_1 = tΦ(t) + φ(t)`, `M_k = t M_(k-1) + (k-1) M_(k-2)`), the closed forms
/// Pyro uses for `D = 2, 3, 4`, for any `D >= 2`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// // Zero concentration: uniform on the circle, density 1 / (2π).
/// let d = ProjectedNormal::new(&Tensor::zeros([2], (Kind::Double, Device::Cpu)))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[0.6f64, 0.8]))?.double_value(&[]);
/// assert!((lp + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ProjectedNormal {
    concentration: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl ProjectedNormal {
    /// `ProjectedNormal(concentration)`, `concentration` `[.., D]` with `D >= 2`.
    pub fn new(concentration: &Tensor) -> Result<ProjectedNormal> {
        let mut batch = concentration.size();
        let d = batch.pop().unwrap_or(0);
        if d < 2 {
            return Err(Error::InvalidParameter {
                dist: "ProjectedNormal",
                param: "concentration",
                expected: format!(
                    "a vector of at least 2 entries, got shape {:?}",
                    concentration.size()
                ),
            });
        }
        Ok(ProjectedNormal {
            concentration: concentration.shallow_clone(),
            batch_shape: batch,
            event_shape: vec![d],
        })
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.f_mul(b)?.f_sum_dim_intlist(-1, false, None::<Kind>)?)
}

impl Distribution for ProjectedNormal {
    fn name(&self) -> &'static str {
        "ProjectedNormal"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Sphere
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let c = &self.concentration;
        let x = Tensor::f_randn(shape.as_slice(), (c.kind(), c.device()))?.f_add(c)?;
        let norm = x
            .f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)?
            .f_clamp_min(crate::distributions::finfo_tiny(c.kind()))?;
        Ok(x.f_div(&norm)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let dim = self.event_shape[0];
        let c = &self.concentration;
        let t = dot(c, value)?;
        let r2 = dot(c, c)?.f_sub(&t.f_square()?)?;
        let phi = t
            .f_square()?
            .f_mul_scalar(-0.5)?
            .f_exp()?
            .f_div_scalar((2.0 * PI).sqrt())?;
        let cdf = std_normal_cdf(&t)?;
        // M_0 = Φ, M_1 = tΦ + φ, M_k = t M_(k-1) + (k-1) M_(k-2).
        let mut m_prev = cdf.shallow_clone();
        let mut m = t.f_mul(&cdf)?.f_add(&phi)?;
        for k in 2..dim {
            let next = t.f_mul(&m)?.f_add(&m_prev.f_mul_scalar((k - 1) as f64)?)?;
            m_prev = m;
            m = next;
        }
        let m = m.f_clamp_min(crate::distributions::finfo_tiny(m.kind()))?;
        Ok(r2
            .f_mul_scalar(-0.5)?
            .f_sub_scalar(0.5 * (dim - 1) as f64 * (2.0 * PI).ln())?
            .f_add(&m.f_log()?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(ProjectedNormal {
            concentration: expand_param(&self.concentration, batch_shape, &self.event_shape)?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
}
