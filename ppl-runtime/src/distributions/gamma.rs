use tch::Tensor;

use super::util::{scalar_family, standard_gamma};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The gamma distribution with shape `α` and rate `β`.
///
/// Density: `p(x) = β^α x^(α-1) exp(-β x) / Γ(α)` for `x > 0`. Parameters:
/// `concentration = α > 0`, `rate = β > 0`. Support: `x > 0`. Reparameterized through the
/// standard-gamma gradient.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Gamma::new(1.0, 2.0)?; // = Exponential(2)
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - (2f64.ln() - 2.0)).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Gamma {
    concentration: Tensor,
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl Gamma {
    /// `Gamma(concentration, rate)`, both positive.
    pub fn new(concentration: impl Into<Arg>, rate: impl Into<Arg>) -> Result<Gamma> {
        let [concentration, rate] = broadcast_args("Gamma", [concentration.into(), rate.into()])?;
        check_positive("Gamma", "concentration", &concentration)?;
        check_positive("Gamma", "rate", &rate)?;
        let batch_shape = rate.size();
        Ok(Gamma {
            concentration,
            rate,
            batch_shape,
        })
    }
    /// The shape `α`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
    /// The rate `β`.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

/// The gamma log-density, shared with [`super::Chi2`] and [`super::InverseGamma`].
pub(crate) fn gamma_log_prob(a: &Tensor, rate: &Tensor, x: &Tensor) -> Result<Tensor> {
    Ok(a.f_xlogy(rate)?
        .f_add(&a.f_sub_scalar(1.0)?.f_xlogy(x)?)?
        .f_sub(&rate.f_mul(x)?)?
        .f_sub(&a.f_lgamma()?)?)
}

/// The gamma entropy `α - log β + lgamma(α) + (1 - α) ψ(α)`.
pub(crate) fn gamma_entropy(a: &Tensor, rate: &Tensor) -> Result<Tensor> {
    Ok(a.f_sub(&rate.f_log()?)?
        .f_add(&a.f_lgamma()?)?
        .f_add(&a.f_neg()?.f_add_scalar(1.0)?.f_mul(&a.f_digamma()?)?)?)
}

impl Distribution for Gamma {
    scalar_family!("Gamma"; concentration, rate);
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
        let g = standard_gamma(&self.concentration, &shape)?;
        let tiny = super::finfo_tiny(g.kind());
        Ok(g.f_div(&self.rate)?.f_clamp_min(tiny)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        gamma_log_prob(&self.concentration, &self.rate, value)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.concentration.f_div(&self.rate)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.concentration.f_div(&self.rate.f_square()?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        gamma_entropy(&self.concentration, &self.rate)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_special_gammainc(&self.rate.f_mul(value)?)?)
    }
}
