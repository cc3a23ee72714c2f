use std::rc::Rc;

use tch::Tensor;

use super::util::{probs_to_logits, uniform_open};
use super::{
    broadcast_args, check, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The geometric distribution: failures before the first success (torch's convention).
///
/// Mass: `p(k) = (1 - p)^k p` for integers `k >= 0`. Parameters: `probs = p` in `(0, 1]` or
/// `logits`. Support: the nonnegative integers (as floats).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Geometric::new(0.5)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Geometric {
    probs: Tensor,
    logits: Tensor,
    batch_shape: Vec<i64>,
}

impl Geometric {
    /// `Geometric(probs)` with success probability in `(0, 1]`.
    pub fn new(probs: impl Into<Arg>) -> Result<Geometric> {
        let [probs] = broadcast_args("Geometric", [probs.into()])?;
        check("Geometric", "probs", "in (0, 1]", || {
            probs.f_gt(0.0)?.f_logical_and(&probs.f_le(1.0)?)?.f_all()
        })?;
        let logits = probs_to_logits(&probs)?;
        let batch_shape = probs.size();
        Ok(Geometric {
            probs,
            logits,
            batch_shape,
        })
    }
    /// `Geometric` from the log-odds of success.
    pub fn from_logits(logits: impl Into<Arg>) -> Result<Geometric> {
        let [logits] = broadcast_args("Geometric", [logits.into()])?;
        let probs = logits.f_sigmoid()?;
        let batch_shape = probs.size();
        Ok(Geometric {
            probs,
            logits,
            batch_shape,
        })
    }
    /// The success probability.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
    /// The log-odds of success.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }
}

impl Distribution for Geometric {
    fn name(&self) -> &'static str {
        "Geometric"
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
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let u = uniform_open(&shape, &self.probs)?;
            Ok(u.f_log()?
                .f_div(&self.probs.f_neg()?.f_log1p()?)?
                .f_floor()?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        // p = 1 and k = 0 give 0 * log(0); torch sets p to 0 there so the term is 0.
        let sure = self.probs.f_eq(1.0)?.f_logical_and(&value.f_eq(0.0)?)?;
        let p = self
            .probs
            .f_add(&value.f_zeros_like()?)?
            .f_masked_fill(&sure, 0.0)?;
        Ok(value
            .f_mul(&p.f_neg()?.f_log1p()?)?
            .f_add(&self.probs.f_log()?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Geometric {
            probs: expand_param(&self.probs, batch_shape, &[])?,
            logits: expand_param(&self.logits, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.probs.f_reciprocal()?.f_sub_scalar(1.0)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.mean()?.f_div(&self.probs)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let bce = self.logits.f_binary_cross_entropy_with_logits::<Tensor>(
            &self.probs,
            None,
            None,
            tch::Reduction::None,
        )?;
        Ok(bce.f_div(&self.probs)?)
    }
}
