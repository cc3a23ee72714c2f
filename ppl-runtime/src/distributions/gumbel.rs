use std::f64::consts::PI;

use tch::Tensor;

use super::util::{scalar_family, uniform_open, EULER_GAMMA};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Gumbel (type-I extreme value) distribution.
///
/// Density: with `z = (x - loc) / scale`, `p(x) = exp(-(z + exp(-z))) / scale`. Parameters:
/// `loc` real, `scale > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Gumbel::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) + 1.0).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Gumbel {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl Gumbel {
    /// `Gumbel(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<Gumbel> {
        let [loc, scale] = broadcast_args("Gumbel", [loc.into(), scale.into()])?;
        check_positive("Gumbel", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(Gumbel {
            loc,
            scale,
            batch_shape,
        })
    }
    /// The location (mode).
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for Gumbel {
    scalar_family!("Gumbel"; loc, scale);
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
        let u = uniform_open(&shape, &self.loc)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_add(&z.f_neg()?.f_exp()?)?
            .f_add(&self.scale.f_log()?)?
            .f_neg()?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul_scalar(EULER_GAMMA)?.f_add(&self.loc)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_square()?.f_mul_scalar(PI * PI / 6.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.scale.f_log()?.f_add_scalar(1.0 + EULER_GAMMA)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_neg()?.f_exp()?.f_neg()?.f_exp()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let g = value.f_log()?.f_neg()?.f_log()?;
        Ok(self.loc.f_sub(&self.scale.f_mul(&g)?)?)
    }
}
