use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{validation_enabled, Arg, Categorical, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The categorical distribution over one-hot vectors of length `K`.
///
/// Mass: `p(e_k) = probs[k]` (normalized along the last dim), or given `logits`,
/// `softmax(logits)[k]`. Support: one-hot float vectors (event shape `[K]`). Enumerable.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = OneHotCategorical::new(&Tensor::from_slice(&[1.0f32, 3.0]))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[0.0f32, 1.0]))?;
/// assert!((lp.double_value(&[]) - 0.75f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OneHotCategorical {
    cat: Categorical,
    event_shape: Vec<i64>,
}

impl OneHotCategorical {
    /// From nonnegative weights along the last dim (normalized here).
    pub fn new(probs: impl Into<Arg>) -> Result<OneHotCategorical> {
        Ok(Self::wrap(Categorical::new(probs)?))
    }
    /// From unnormalized log-weights along the last dim.
    pub fn from_logits(logits: impl Into<Arg>) -> Result<OneHotCategorical> {
        Ok(Self::wrap(Categorical::from_logits(logits)?))
    }
    fn wrap(cat: Categorical) -> OneHotCategorical {
        let event_shape = vec![cat.num_categories()];
        OneHotCategorical { cat, event_shape }
    }
    /// Normalized probabilities.
    pub fn probs(&self) -> &Tensor {
        self.cat.probs()
    }
    /// Normalized log-probabilities.
    pub fn logits(&self) -> &Tensor {
        self.cat.logits()
    }
}

fn one_hot(idx: &Tensor, k: i64, kind: Kind) -> Result<Tensor> {
    Ok(idx.f_one_hot(k)?.f_to_kind(kind)?)
}

impl Distribution for OneHotCategorical {
    fn name(&self) -> &'static str {
        "OneHotCategorical"
    }
    fn batch_shape(&self) -> &[i64] {
        self.cat.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(Constraint::Boolean), 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let idx = self.cat.sample(sample_shape)?;
        one_hot(&idx, self.event_shape[0], self.probs().kind())
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        if validation_enabled() {
            let ok = Constraint::Boolean.check(value)?.f_all()?.f_logical_and(
                &value
                    .f_sum_dim_intlist(-1, false, None::<Kind>)?
                    .f_eq(1.0)?
                    .f_all()?,
            )?;
            if ok.f_int64_value(&[])? == 0 {
                return Err(Error::OutsideSupport {
                    dist: "OneHotCategorical",
                    support: "one-hot vectors".into(),
                });
            }
        }
        self.cat.log_prob(&value.f_argmax(-1, false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = [self.event_shape[0]];
        let logits = super::expand_param(self.logits(), batch_shape, &k)?;
        Ok(Rc::new(Self::from_logits(logits)?))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let k = self.event_shape[0];
        let idx = self.cat.enumerate_support(expand)?;
        one_hot(&idx, k, self.probs().kind())
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.probs().shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        let p = self.probs();
        Ok(p.f_mul(&p.f_neg()?.f_add_scalar(1.0)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        self.cat.entropy()
    }
}
