use std::f64::consts::PI;

use tch::Tensor;

use super::util::{full_like, scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Cauchy distribution.
///
/// Density: `p(x) = 1 / (π scale (1 + ((x - loc) / scale)²))`. Parameters: `loc` real,
/// `scale > 0`. Support: the reals. Reparameterized. Mean and variance are undefined (NaN and
/// infinity, as in torch).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Cauchy::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) + std::f64::consts::PI.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cauchy {
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl Cauchy {
    /// `Cauchy(loc, scale)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<Cauchy> {
        let [loc, scale] = broadcast_args("Cauchy", [loc.into(), scale.into()])?;
        check_positive("Cauchy", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(Cauchy {
            loc,
            scale,
            batch_shape,
        })
    }
    /// The median.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The half-width at half-maximum.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for Cauchy {
    scalar_family!("Cauchy"; loc, scale);
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
        Ok(z.f_square()?
            .f_log1p()?
            .f_add(&self.scale.f_log()?)?
            .f_add_scalar(PI.ln())?
            .f_neg()?)
    }
    fn mean(&self) -> Result<Tensor> {
        full_like(&self.loc, f64::NAN)
    }
    fn variance(&self) -> Result<Tensor> {
        full_like(&self.loc, f64::INFINITY)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.scale.f_log()?.f_add_scalar((4.0 * PI).ln())?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_atan()?.f_div_scalar(PI)?.f_add_scalar(0.5)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub_scalar(0.5)?.f_mul_scalar(PI)?.f_tan()?;
        Ok(z.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
}
