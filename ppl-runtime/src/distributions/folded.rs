use std::rc::Rc;

use tch::Tensor;

use super::{validate_sample, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `FoldedDistribution`: `|x|` for `x` drawn from a real-valued `base` with scalar
/// events, e.g. a folded normal or a folded Student's t.
///
/// Density: `p(y) = p_base(y) + p_base(-y)` for `y >= 0`. Reparameterized when the base is.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// // A folded standard normal is the half-normal.
/// let d = FoldedDistribution::new(Normal::new(0.0, 1.0)?.boxed())?;
/// let h = HalfNormal::new(1.0)?;
/// let x = Tensor::from(0.7f32);
/// assert!((d.log_prob(&x)? - h.log_prob(&x)?).abs().double_value(&[]) < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FoldedDistribution {
    base: DistRef,
}

impl FoldedDistribution {
    /// `|x|` for `x ~ base`; `base` must have real support and scalar events.
    pub fn new(base: DistRef) -> Result<FoldedDistribution> {
        if !base.event_shape().is_empty() || base.support() != Constraint::Real {
            return Err(Error::Invalid(format!(
                "FoldedDistribution: the base {} has support {} and event shape {:?}; folding \
                 needs a real support and scalar events",
                base.name(),
                base.support(),
                base.event_shape()
            )));
        }
        Ok(FoldedDistribution { base })
    }
}

impl Distribution for FoldedDistribution {
    fn name(&self) -> &'static str {
        "FoldedDistribution"
    }
    fn batch_shape(&self) -> &[i64] {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Nonnegative
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        Ok(self.base.sample(sample_shape)?.f_abs()?)
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        Ok(self.base.rsample(sample_shape)?.f_abs()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        Ok(self
            .base
            .log_prob(value)?
            .f_logaddexp(&self.base.log_prob(&value.f_neg()?)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(FoldedDistribution {
            base: self.base.expand(batch_shape)?,
        }))
    }
}
