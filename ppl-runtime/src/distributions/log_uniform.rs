use tch::Tensor;

use super::util::{bound_of, scalar_family, uniform_open};
use super::{
    broadcast_args, check, check_positive, extended_shape, validate_sample, Arg, Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The log-uniform (reciprocal) distribution: `log x` uniform on `[log low, log high]`
/// (Pyro's `LogUniform`).
///
/// Density: `p(x) = 1 / (x (log high - log low))` for `low <= x <= high`. Parameters:
/// `0 < low < high`. Support: `[low, high]` per element. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = LogUniform::new(1.0, std::f64::consts::E)?;
/// let lp = d.log_prob(&Tensor::from(2.0f64))?;
/// assert!((lp.double_value(&[]) + 2f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LogUniform {
    low: Tensor,
    high: Tensor,
    batch_shape: Vec<i64>,
}

impl LogUniform {
    /// `LogUniform(low, high)`; needs `0 < low < high`.
    pub fn new(low: impl Into<Arg>, high: impl Into<Arg>) -> Result<LogUniform> {
        let [low, high] = broadcast_args("LogUniform", [low.into(), high.into()])?;
        check_positive("LogUniform", "low", &low)?;
        check("LogUniform", "high", "> low", || {
            high.f_gt_tensor(&low)?.f_all()
        })?;
        let batch_shape = low.size();
        Ok(LogUniform {
            low,
            high,
            batch_shape,
        })
    }

    /// `log high - log low`.
    fn width(&self) -> Result<Tensor> {
        Ok(self.high.f_log()?.f_sub(&self.low.f_log()?)?)
    }
}

impl Distribution for LogUniform {
    scalar_family!("LogUniform"; low, high);
    fn support(&self) -> Constraint {
        match (bound_of(&self.low), bound_of(&self.high)) {
            (Ok(a), Ok(b)) => Constraint::Interval(a, b),
            _ => Constraint::Positive,
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.low)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let lp = value.f_log()?.f_add(&self.width()?.f_log()?)?.f_neg()?;
        let outside = value
            .f_lt_tensor(&self.low)?
            .f_logical_or(&value.f_gt_tensor(&self.high)?)?;
        Ok(lp.f_masked_fill(&outside, f64::NEG_INFINITY)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.high.f_sub(&self.low)?.f_div(&self.width()?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let m2 = self
            .high
            .f_square()?
            .f_sub(&self.low.f_square()?)?
            .f_div(&self.width()?.f_mul_scalar(2.0)?)?;
        Ok(m2.f_sub(&self.mean()?.f_square()?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        // H(exp U) = H(U) + E[U] for U uniform on [log low, log high].
        let (a, b) = (self.low.f_log()?, self.high.f_log()?);
        Ok(self
            .width()?
            .f_log()?
            .f_add(&a.f_add(&b)?.f_mul_scalar(0.5)?)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let c = value
            .f_log()?
            .f_sub(&self.low.f_log()?)?
            .f_div(&self.width()?)?;
        Ok(c.f_clamp(0.0, 1.0)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value
            .f_mul(&self.width()?)?
            .f_add(&self.low.f_log()?)?
            .f_exp()?)
    }
}
