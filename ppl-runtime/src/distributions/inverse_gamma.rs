use tch::Tensor;

use super::gamma::gamma_log_prob;
use super::util::{scalar_family, standard_gamma, where_scalar};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The inverse-gamma distribution: `1 / X` for `X ~ Gamma(α, β)`.
///
/// Density: `p(x) = β^α x^(-α-1) exp(-β / x) / Γ(α)` for `x > 0`. Parameters:
/// `concentration = α > 0`, `rate = β > 0`. Support: `x > 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = InverseGamma::new(1.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) + 1.0).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InverseGamma {
    concentration: Tensor,
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl InverseGamma {
    /// `InverseGamma(concentration, rate)`, both positive.
    pub fn new(concentration: impl Into<Arg>, rate: impl Into<Arg>) -> Result<InverseGamma> {
        let [concentration, rate] =
            broadcast_args("InverseGamma", [concentration.into(), rate.into()])?;
        check_positive("InverseGamma", "concentration", &concentration)?;
        check_positive("InverseGamma", "rate", &rate)?;
        let batch_shape = rate.size();
        Ok(InverseGamma {
            concentration,
            rate,
            batch_shape,
        })
    }
    /// The shape `α`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
    /// The rate `β` (a scale of `x`).
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

impl Distribution for InverseGamma {
    scalar_family!("InverseGamma"; concentration, rate);
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
        Ok(self.rate.f_div(&g)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let inv = value.f_reciprocal()?;
        let lp = gamma_log_prob(&self.concentration, &self.rate, &inv)?;
        Ok(lp.f_sub(&value.f_log()?.f_mul_scalar(2.0)?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let m = self.rate.f_div(&self.concentration.f_sub_scalar(1.0)?)?;
        where_scalar(&self.concentration.f_gt(1.0)?, &m, f64::INFINITY)
    }
    fn variance(&self) -> Result<Tensor> {
        let a = &self.concentration;
        let v = self.rate.f_square()?.f_div(
            &a.f_sub_scalar(1.0)?
                .f_square()?
                .f_mul(&a.f_sub_scalar(2.0)?)?,
        )?;
        where_scalar(&a.f_gt(2.0)?, &v, f64::INFINITY)
    }
    fn entropy(&self) -> Result<Tensor> {
        let a = &self.concentration;
        Ok(a.f_add(&self.rate.f_log()?)?
            .f_add(&a.f_lgamma()?)?
            .f_sub(&a.f_add_scalar(1.0)?.f_mul(&a.f_digamma()?)?)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_special_gammaincc(&self.rate.f_div(value)?)?)
    }
}
