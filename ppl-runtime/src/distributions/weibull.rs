use tch::Tensor;

use super::util::{scalar_family, EULER_GAMMA};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Weibull distribution with scale `λ` and shape `k`.
///
/// Density: `p(x) = (k / λ) (x / λ)^(k-1) exp(-(x / λ)^k)` for `x > 0`. Parameters:
/// `scale = λ > 0`, `concentration = k > 0`. Support: `x > 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Weibull::new(1.0, 1.0)?; // = Exponential(1)
/// let lp = d.log_prob(&Tensor::from(2.0f32))?;
/// assert!((lp.double_value(&[]) + 2.0).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Weibull {
    scale: Tensor,
    concentration: Tensor,
    batch_shape: Vec<i64>,
}

impl Weibull {
    /// `Weibull(scale, concentration)`, both positive (torch's argument order).
    pub fn new(scale: impl Into<Arg>, concentration: impl Into<Arg>) -> Result<Weibull> {
        let [scale, concentration] =
            broadcast_args("Weibull", [scale.into(), concentration.into()])?;
        check_positive("Weibull", "scale", &scale)?;
        check_positive("Weibull", "concentration", &concentration)?;
        let batch_shape = scale.size();
        Ok(Weibull {
            scale,
            concentration,
            batch_shape,
        })
    }
    /// The scale `λ`.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
    /// The shape `k`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
    fn gamma_of(&self, c: f64) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_reciprocal()?
            .f_mul_scalar(c)?
            .f_add_scalar(1.0)?
            .f_lgamma()?
            .f_exp()?)
    }
}

impl Distribution for Weibull {
    scalar_family!("Weibull"; scale, concentration);
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
        let k = self.scale.kind();
        let mut e = Tensor::f_empty(shape.as_slice(), (k, self.scale.device()))?;
        let e = tch::no_grad(|| e.f_exponential_(1.0))?;
        Ok(e.f_pow(&self.concentration.f_reciprocal()?)?
            .f_mul(&self.scale)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let k = &self.concentration;
        let logz = value.f_log()?.f_sub(&self.scale.f_log()?)?;
        Ok(k.f_log()?
            .f_sub(&self.scale.f_log()?)?
            .f_add(&k.f_sub_scalar(1.0)?.f_mul(&logz)?)?
            .f_sub(&logz.f_mul(k)?.f_exp()?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul(&self.gamma_of(1.0)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let g1 = self.gamma_of(1.0)?;
        Ok(self
            .scale
            .f_square()?
            .f_mul(&self.gamma_of(2.0)?.f_sub(&g1.f_square()?)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let k = &self.concentration;
        Ok(k.f_reciprocal()?
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_mul_scalar(EULER_GAMMA)?
            .f_add(&self.scale.f_div(k)?.f_log()?)?
            .f_add_scalar(1.0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_div(&self.scale)?.f_pow(&self.concentration)?;
        Ok(z.f_neg()?.f_expm1()?.f_neg()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let e = value.f_neg()?.f_log1p()?.f_neg()?;
        Ok(e.f_pow(&self.concentration.f_reciprocal()?)?
            .f_mul(&self.scale)?)
    }
}
