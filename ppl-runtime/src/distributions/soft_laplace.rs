use std::f64::consts::{FRAC_2_PI, PI};

use tch::Tensor;

use super::util::{scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// Pyro's `SoftLaplace`: a smooth distribution with Laplace-like tails (log-convex, with
/// `log p` quadratic near the mode and linear in the tails), handy for HMC.
///
/// Density: with `z = (x - loc) / scale`, `p(x) = 2 / (π scale (exp(z) + exp(-z)))`.
/// Parameters: `loc` real, `scale > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = SoftLaplace::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f64))?;
/// assert!((lp.double_value(&[]) - (1.0 / std::f64::consts::PI).ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SoftLaplace {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl SoftLaplace {
    /// `SoftLaplace(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<SoftLaplace> {
        let [loc, scale] = broadcast_args("SoftLaplace", [loc.into(), scale.into()])?;
        check_positive("SoftLaplace", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(SoftLaplace {
            loc,
            scale,
            batch_shape,
        })
    }
}

impl Distribution for SoftLaplace {
    scalar_family!("SoftLaplace"; loc, scale);
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.loc)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        // log(2/π) - log scale - logaddexp(z, -z)
        let lae = z.f_logaddexp(&z.f_neg()?)?;
        Ok(lae
            .f_neg()?
            .f_sub(&self.scale.f_log()?)?
            .f_add_scalar(FRAC_2_PI.ln())?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul_scalar(PI / 2.0)?.f_square()?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_exp()?.f_atan()?.f_mul_scalar(FRAC_2_PI)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_mul_scalar(PI / 2.0)?.f_tan()?.f_log()?;
        Ok(z.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
}
