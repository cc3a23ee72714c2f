use std::f64::consts::PI;

use tch::Tensor;

use super::util::scalar_family;
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The half-normal distribution: `|Y|` for `Y ~ N(0, scale²)`.
///
/// Density: `p(x) = √2 exp(-x² / (2 scale²)) / (scale √π)` for `x >= 0`. Parameters:
/// `scale > 0`. Support: `x >= 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = HalfNormal::new(1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) - (2.0 / std::f64::consts::PI).sqrt().ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HalfNormal {
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl HalfNormal {
    /// `HalfNormal(scale)`; `scale` must be positive.
    pub fn new(scale: impl Into<Arg>) -> Result<HalfNormal> {
        let [scale] = broadcast_args("HalfNormal", [scale.into()])?;
        check_positive("HalfNormal", "scale", &scale)?;
        let batch_shape = scale.size();
        Ok(HalfNormal { scale, batch_shape })
    }
    /// The scale of the underlying normal.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for HalfNormal {
    scalar_family!("HalfNormal"; scale);
    fn support(&self) -> Constraint {
        Constraint::Nonnegative
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let eps = Tensor::f_randn(shape.as_slice(), (self.scale.kind(), self.scale.device()))?;
        Ok(eps.f_mul(&self.scale)?.f_abs()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let z = value.f_div(&self.scale)?;
        let lp = z
            .f_square()?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.scale.f_log()?)?
            .f_add_scalar(0.5 * (2.0 / PI).ln())?;
        // Zero density below 0 (reachable with validation off), as torch.
        Ok(lp.f_masked_fill(&value.f_lt(0.0)?, f64::NEG_INFINITY)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul_scalar((2.0 / PI).sqrt())?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_square()?.f_mul_scalar(1.0 - 2.0 / PI)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .f_log()?
            .f_add_scalar(0.5 * (PI / 2.0).ln() + 0.5)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value
            .f_div(&self.scale)?
            .f_mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
            .f_erf()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        // The normal quantile of (1 + p) / 2, in torch's order of operations (the float32
        // rounding of the tails then matches).
        let q = value.f_add_scalar(1.0)?.f_mul_scalar(0.5)?;
        Ok(q.f_mul_scalar(2.0)?
            .f_sub_scalar(1.0)?
            .f_erfinv()?
            .f_mul_scalar(std::f64::consts::SQRT_2)?
            .f_mul(&self.scale)?)
    }
}
