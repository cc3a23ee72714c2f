use tch::Tensor;

use super::util::{bound_of, scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Pareto (type I) distribution.
///
/// Density: `p(x) = α s^α / x^(α+1)` for `x >= s`. Parameters: `scale = s > 0`, `alpha > 0`.
/// Support: `x >= scale` (per element). Reparameterized. The mean is infinite for `α <= 1` and
/// the variance for `α <= 2`, as torch reports them.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Pareto::new(1.0, 2.0)?;
/// let lp = d.log_prob(&Tensor::from(2.0f64))?;
/// assert!((lp.double_value(&[]) - (2.0f64 / 8.0).ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pareto {
    scale: Tensor,
    alpha: Tensor,
    batch_shape: Vec<i64>,
}

impl Pareto {
    /// `Pareto(scale, alpha)`; both positive.
    pub fn new(scale: impl Into<Arg>, alpha: impl Into<Arg>) -> Result<Pareto> {
        let [scale, alpha] = broadcast_args("Pareto", [scale.into(), alpha.into()])?;
        check_positive("Pareto", "scale", &scale)?;
        check_positive("Pareto", "alpha", &alpha)?;
        let batch_shape = scale.size();
        Ok(Pareto {
            scale,
            alpha,
            batch_shape,
        })
    }
    /// The scale (the lower end of the support).
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
    /// The shape `α`.
    pub fn alpha(&self) -> &Tensor {
        &self.alpha
    }
}

impl Distribution for Pareto {
    scalar_family!("Pareto"; scale, alpha);
    fn support(&self) -> Constraint {
        match bound_of(&self.scale) {
            Ok(b) => Constraint::GreaterThanEq(b),
            Err(_) => Constraint::Positive,
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.scale)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let lp = self
            .alpha
            .f_log()?
            .f_add(&self.alpha.f_mul(&self.scale.f_log()?)?)?
            .f_sub(&self.alpha.f_add_scalar(1.0)?.f_mul(&value.f_log()?)?)?;
        Ok(lp.f_masked_fill(&value.f_lt_tensor(&self.scale)?, f64::NEG_INFINITY)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let a = self.alpha.f_clamp_min(1.0)?;
        Ok(a.f_mul(&self.scale)?.f_div(&a.f_sub_scalar(1.0)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let a = self.alpha.f_clamp_min(2.0)?;
        let d = a
            .f_sub_scalar(1.0)?
            .f_square()?
            .f_mul(&a.f_sub_scalar(2.0)?)?;
        Ok(self.scale.f_square()?.f_mul(&a)?.f_div(&d)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .f_div(&self.alpha)?
            .f_log()?
            .f_add(&self.alpha.f_reciprocal()?)?
            .f_add_scalar(1.0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let c = self
            .scale
            .f_div(value)?
            .f_pow(&self.alpha)?
            .f_neg()?
            .f_add_scalar(1.0)?;
        Ok(c.f_clamp_min(0.0)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        // s (1 - u)^(-1/α)
        Ok(value
            .f_neg()?
            .f_log1p()?
            .f_div(&self.alpha)?
            .f_neg()?
            .f_exp()?
            .f_mul(&self.scale)?)
    }
}
