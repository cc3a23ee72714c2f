use std::rc::Rc;

use tch::Tensor;

use super::util::bound_of;
use super::{
    broadcast_args, check, expand_param, extended_shape, validation_enabled, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The continuous uniform distribution on `[low, high)`.
///
/// Density: `p(x) = 1 / (high - low)` for `low <= x < high`. Parameters: `low < high`.
/// Support: `[low, high)`, per element: [`Distribution::support`] is `interval(low, high)` with
/// tensor bounds when the bounds are batched (so HMC and the autoguides map each element onto its
/// own interval), with numbers when they are single CPU values. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Uniform::new(0.0, 4.0)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) + 4f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Uniform {
    low: Tensor,
    high: Tensor,
    batch_shape: Vec<i64>,
    support: Constraint,
}

impl Uniform {
    /// `Uniform(low, high)`; needs `low < high` elementwise.
    pub fn new(low: impl Into<Arg>, high: impl Into<Arg>) -> Result<Uniform> {
        let [low, high] = broadcast_args("Uniform", [low.into(), high.into()])?;
        check("Uniform", "high", "> low", || {
            high.f_gt_tensor(&low)?.f_all()
        })?;
        let support = Constraint::Interval(bound_of(&low)?, bound_of(&high)?);
        let batch_shape = low.size();
        Ok(Uniform {
            low,
            high,
            batch_shape,
            support,
        })
    }
    /// The lower bound.
    pub fn low(&self) -> &Tensor {
        &self.low
    }
    /// The upper bound.
    pub fn high(&self) -> &Tensor {
        &self.high
    }
}

impl Distribution for Uniform {
    fn name(&self) -> &'static str {
        "Uniform"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        self.support.clone()
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let u = Tensor::f_rand(shape.as_slice(), (self.low.kind(), self.low.device()))?;
        Ok(u.f_mul(&self.high.f_sub(&self.low)?)?.f_add(&self.low)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let inside = value
            .f_ge_tensor(&self.low)?
            .f_logical_and(&value.f_lt_tensor(&self.high)?)?;
        if validation_enabled() && inside.f_all()?.f_int64_value(&[])? == 0 {
            return Err(Error::OutsideSupport {
                dist: "Uniform",
                support: "[low, high)".into(),
            });
        }
        let lp = self.high.f_sub(&self.low)?.f_log()?.f_neg()?;
        let lp = lp.f_add(&value.f_zeros_like()?.f_to_kind(lp.kind())?)?;
        Ok(lp.f_masked_fill(&inside.f_logical_not()?, f64::NEG_INFINITY)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Uniform {
            low: expand_param(&self.low, batch_shape, &[])?,
            high: expand_param(&self.high, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
            support: self.support.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.high.f_add(&self.low)?.f_mul_scalar(0.5)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.high.f_sub(&self.low)?.f_square()?.f_div_scalar(12.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.high.f_sub(&self.low)?.f_log()?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let r = value
            .f_sub(&self.low)?
            .f_div(&self.high.f_sub(&self.low)?)?;
        Ok(r.f_clamp(0.0, 1.0)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value
            .f_mul(&self.high.f_sub(&self.low)?)?
            .f_add(&self.low)?)
    }
}
