use tch::Tensor;

use super::negative_binomial::{gamma_poisson_sample, nb_log_prob};
use super::util::scalar_family;
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The gamma–Poisson mixture (Pyro's `GammaPoisson`): `Poisson(λ)` with
/// `λ ~ Gamma(concentration, rate)`; a negative binomial with `total_count = α` and
/// `probs = 1 / (1 + β)`.
///
/// Mass: `p(k) = Γ(α + k) / (k! Γ(α)) β^α / (1 + β)^(α + k)`. Parameters:
/// `concentration = α > 0`, `rate = β > 0`. Support: the nonnegative integers (as floats).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = GammaPoisson::new(1.0, 1.0)?; // = Geometric(1/2)
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GammaPoisson {
    concentration: Tensor,
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl GammaPoisson {
    /// `GammaPoisson(concentration, rate)`, both positive.
    pub fn new(concentration: impl Into<Arg>, rate: impl Into<Arg>) -> Result<GammaPoisson> {
        let [concentration, rate] =
            broadcast_args("GammaPoisson", [concentration.into(), rate.into()])?;
        check_positive("GammaPoisson", "concentration", &concentration)?;
        check_positive("GammaPoisson", "rate", &rate)?;
        let batch_shape = rate.size();
        Ok(GammaPoisson {
            concentration,
            rate,
            batch_shape,
        })
    }
    /// The gamma shape `α`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
    /// The gamma rate `β`.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

impl Distribution for GammaPoisson {
    scalar_family!("GammaPoisson"; concentration, rate);
    fn support(&self) -> Constraint {
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        gamma_poisson_sample(&self.concentration, &self.rate, &shape)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        nb_log_prob(&self.concentration, &self.rate.f_log()?.f_neg()?, value)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.concentration.f_div(&self.rate)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_div(&self.rate.f_square()?)?
            .f_mul(&self.rate.f_add_scalar(1.0)?)?)
    }
}
