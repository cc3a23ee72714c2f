use tch::Tensor;

use super::util::{scalar_family, to_float};
use super::{broadcast_args, check, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Poisson distribution with rate `λ`.
///
/// Mass: `p(k) = λ^k exp(-λ) / k!` for integers `k >= 0`. Parameters: `rate = λ >= 0`.
/// Support: the nonnegative integers (as floats).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Poisson::new(2.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) + 2.0).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Poisson {
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl Poisson {
    /// `Poisson(rate)`; `rate` must be nonnegative.
    pub fn new(rate: impl Into<Arg>) -> Result<Poisson> {
        let [rate] = broadcast_args("Poisson", [rate.into()])?;
        check("Poisson", "rate", ">= 0", || rate.f_ge(0.0)?.f_all())?;
        let batch_shape = rate.size();
        Ok(Poisson { rate, batch_shape })
    }
    /// The rate `λ`.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

/// The Poisson log-mass, shared with [`super::ZeroInflatedPoisson`].
pub(crate) fn poisson_log_prob(rate: &Tensor, k: &Tensor) -> Result<Tensor> {
    Ok(k.f_xlogy(rate)?
        .f_sub(rate)?
        .f_sub(&k.f_add_scalar(1.0)?.f_lgamma()?)?)
}

impl Distribution for Poisson {
    scalar_family!("Poisson"; rate);
    fn support(&self) -> Constraint {
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let k = tch::no_grad(|| self.rate.f_expand(shape.as_slice(), false)?.f_poisson())?;
        to_float(k, self.rate.kind())
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        poisson_log_prob(&self.rate, value)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.rate.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.rate.shallow_clone())
    }
}
