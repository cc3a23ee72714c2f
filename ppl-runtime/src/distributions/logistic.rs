use std::f64::consts::PI;

use tch::Tensor;

use super::util::{scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The logistic distribution (NumPyro's `Logistic`).
///
/// Density: with `z = (x - loc) / scale`, `p(x) = exp(-z) / (scale (1 + exp(-z))²)`.
/// Parameters: `loc` real, `scale > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Logistic::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f64))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Logistic {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl Logistic {
    /// `Logistic(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<Logistic> {
        let [loc, scale] = broadcast_args("Logistic", [loc.into(), scale.into()])?;
        check_positive("Logistic", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(Logistic {
            loc,
            scale,
            batch_shape,
        })
    }
    /// The location (mean, median and mode).
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for Logistic {
    scalar_family!("Logistic"; loc, scale);
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
        // -z - 2 softplus(-z) - log scale, stable on both tails.
        Ok(z.f_neg()?
            .f_sub(&z.f_neg()?.f_softplus()?.f_mul_scalar(2.0)?)?
            .f_sub(&self.scale.f_log()?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_square()?.f_mul_scalar(PI * PI / 3.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.scale.f_log()?.f_add_scalar(2.0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value.f_sub(&self.loc)?.f_div(&self.scale)?.f_sigmoid()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value.f_logit(None)?.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
}
