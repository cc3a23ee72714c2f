use tch::Tensor;

use super::util::scalar_family;
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The exponential distribution with rate `λ`.
///
/// Density: `p(x) = λ exp(-λ x)` for `x >= 0`. Parameters: `rate = λ > 0`. Support:
/// `x >= 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Exponential::new(2.0)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - (2f64.ln() - 2.0)).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Exponential {
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl Exponential {
    /// `Exponential(rate)`; `rate` must be positive.
    pub fn new(rate: impl Into<Arg>) -> Result<Exponential> {
        let [rate] = broadcast_args("Exponential", [rate.into()])?;
        check_positive("Exponential", "rate", &rate)?;
        let batch_shape = rate.size();
        Ok(Exponential { rate, batch_shape })
    }
    /// The rate `λ`.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

impl Distribution for Exponential {
    scalar_family!("Exponential"; rate);
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
        let mut e = Tensor::f_empty(shape.as_slice(), (self.rate.kind(), self.rate.device()))?;
        let e = tch::no_grad(|| e.f_exponential_(1.0))?;
        Ok(e.f_div(&self.rate)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        Ok(self.rate.f_log()?.f_sub(&self.rate.f_mul(value)?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.rate.f_reciprocal()?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.rate.f_square()?.f_reciprocal()?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.rate.f_log()?.f_neg()?.f_add_scalar(1.0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(self.rate.f_mul(value)?.f_neg()?.f_expm1()?.f_neg()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value.f_neg()?.f_log1p()?.f_neg()?.f_div(&self.rate)?)
    }
}
