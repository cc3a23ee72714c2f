use std::f64::consts::PI;
use std::rc::Rc;

use tch::Tensor;

use super::{
    broadcast_args, check_positive, expand_param, extended_shape, Arg, DistRef, Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The normal distribution `N(loc, scale²)`.
///
/// Density: `p(x) = exp(-(x - loc)² / (2 scale²)) / (scale √(2π))`. Parameters: `loc` real,
/// `scale > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Normal::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) + 0.9189385).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Normal {
    loc: Tensor,
    scale: Tensor,
    /// The scale when it was given as a plain number: `log_prob` then folds it into scalars,
    /// three libtorch ops (and autograd nodes) fewer per call.
    scale_const: Option<f64>,
    batch_shape: Vec<i64>,
}

impl Normal {
    /// `N(loc, scale²)`; `scale` must be positive.
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<Normal> {
        let scale = scale.into();
        let scale_const = match scale {
            Arg::Scalar(v) => Some(v),
            Arg::Tensor(_) => None,
        };
        let [loc, scale] = broadcast_args("Normal", [loc.into(), scale])?;
        check_positive("Normal", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(Normal {
            loc,
            scale,
            scale_const,
            batch_shape,
        })
    }
    /// The mean.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The standard deviation.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for Normal {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "Normal"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
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
        let eps = Tensor::f_randn(shape.as_slice(), (self.loc.kind(), self.loc.device()))?;
        Ok(eps.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        if let Some(s) = self.scale_const {
            let d = value.f_sub(&self.loc)?;
            let lp = d
                .f_square()?
                .f_mul_scalar(-0.5 / (s * s))?
                .f_add_scalar(-s.ln() - 0.5 * (2.0 * PI).ln())?;
            return Ok(lp);
        }
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_square()?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.scale.f_log()?)?
            .f_sub_scalar(0.5 * (2.0 * PI).ln())?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Normal {
            loc: expand_param(&self.loc, batch_shape, &[])?,
            scale: expand_param(&self.scale, batch_shape, &[])?,
            scale_const: self.scale_const,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.f_square()?)
    }
    fn stddev(&self) -> Result<Tensor> {
        Ok(self.scale.shallow_clone())
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .f_log()?
            .f_add_scalar(0.5 + 0.5 * (2.0 * PI).ln())?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value
            .f_sub(&self.loc)?
            .f_div(&self.scale)?
            .f_mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?;
        Ok(z.f_erf()?.f_add_scalar(1.0)?.f_mul_scalar(0.5)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value
            .f_mul_scalar(2.0)?
            .f_sub_scalar(1.0)?
            .f_erfinv()?
            .f_mul_scalar(std::f64::consts::SQRT_2)?;
        Ok(z.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
}
