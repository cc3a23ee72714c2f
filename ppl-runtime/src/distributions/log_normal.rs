use std::f64::consts::PI;

use tch::Tensor;

use super::util::{scalar_family, std_normal_cdf};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The log-normal distribution: `exp(Y)` for `Y ~ N(loc, scale²)`.
///
/// Density: `p(x) = exp(-(log x - loc)² / (2 scale²)) / (x scale √(2π))` for `x > 0`.
/// Parameters: `loc` real, `scale > 0`. Support: `x > 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = LogNormal::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) + 0.9189385).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LogNormal {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl LogNormal {
    /// `LogNormal(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<LogNormal> {
        let [loc, scale] = broadcast_args("LogNormal", [loc.into(), scale.into()])?;
        check_positive("LogNormal", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(LogNormal {
            loc,
            scale,
            batch_shape,
        })
    }
    /// The mean of `log x`.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The standard deviation of `log x`.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for LogNormal {
    scalar_family!("LogNormal"; loc, scale);
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let eps = Tensor::f_randn(shape.as_slice(), (self.loc.kind(), self.loc.device()))?;
        Ok(eps.f_mul(&self.scale)?.f_add(&self.loc)?.f_exp()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let y = value.f_log()?;
        let z = y.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_square()?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.scale.f_log()?)?
            .f_sub_scalar(0.5 * (2.0 * PI).ln())?
            .f_sub(&y)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .f_square()?
            .f_mul_scalar(0.5)?
            .f_add(&self.loc)?
            .f_exp()?)
    }
    fn variance(&self) -> Result<Tensor> {
        let s2 = self.scale.f_square()?;
        Ok(s2
            .f_expm1()?
            .f_mul(&self.loc.f_mul_scalar(2.0)?.f_add(&s2)?.f_exp()?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .f_log()?
            .f_add_scalar(0.5 + 0.5 * (2.0 * PI).ln())?
            .f_add(&self.loc)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        std_normal_cdf(&value.f_log()?.f_sub(&self.loc)?.f_div(&self.scale)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value
            .f_mul_scalar(2.0)?
            .f_sub_scalar(1.0)?
            .f_erfinv()?
            .f_mul_scalar(std::f64::consts::SQRT_2)?;
        Ok(z.f_mul(&self.scale)?.f_add(&self.loc)?.f_exp()?)
    }
}
