use tch::Tensor;

use super::util::scalar_family;
use super::{broadcast_args, check_positive, extended_shape, finfo_eps, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Laplace (double exponential) distribution.
///
/// Density: `p(x) = exp(-|x - loc| / scale) / (2 scale)`. Parameters: `loc` real,
/// `scale > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Laplace::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) + 1.0 + 2f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Laplace {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl Laplace {
    /// `Laplace(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<Laplace> {
        let [loc, scale] = broadcast_args("Laplace", [loc.into(), scale.into()])?;
        check_positive("Laplace", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(Laplace {
            loc,
            scale,
            batch_shape,
        })
    }
    /// The location (mean and median).
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for Laplace {
    scalar_family!("Laplace"; loc, scale);
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let k = self.loc.kind();
        let mut u = Tensor::f_empty(shape.as_slice(), (k, self.loc.device()))?;
        let u = tch::no_grad(|| u.f_uniform_(finfo_eps(k) - 1.0, 1.0))?;
        let d = u.f_sign()?.f_mul(&u.f_abs()?.f_neg()?.f_log1p()?)?;
        Ok(self.loc.f_sub(&self.scale.f_mul(&d)?)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_abs()?.f_div(&self.scale)?;
        Ok(z.f_add(&self.scale.f_mul_scalar(2.0)?.f_log()?)?.f_neg()?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_square()?.f_mul_scalar(2.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul_scalar(2.0)?.f_log()?.f_add_scalar(1.0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let d = value.f_sub(&self.loc)?;
        let e = d.f_abs()?.f_neg()?.f_div(&self.scale)?.f_expm1()?;
        Ok(d.f_sign()?
            .f_mul(&e)?
            .f_mul_scalar(-0.5)?
            .f_add_scalar(0.5)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let t = value.f_sub_scalar(0.5)?;
        let d = t
            .f_sign()?
            .f_mul(&t.f_abs()?.f_mul_scalar(-2.0)?.f_log1p()?)?;
        Ok(self.loc.f_sub(&self.scale.f_mul(&d)?)?)
    }
}
