use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{
    broadcast_args, check_unit, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Bernoulli distribution over `{0, 1}`.
///
/// Mass: `p(1) = probs`, `p(0) = 1 - probs`; or given `logits`, `probs = sigmoid(logits)`.
/// Support: `{0, 1}` (as floats). Enumerable.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Bernoulli::new(0.25)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Bernoulli {
    logits: Tensor,
    probs: Tensor,
    batch_shape: Vec<i64>,
}

impl Bernoulli {
    /// Bernoulli with success probability `probs` in `[0, 1]`.
    pub fn new(probs: impl Into<Arg>) -> Result<Bernoulli> {
        let [probs] = broadcast_args("Bernoulli", [probs.into()])?;
        check_unit("Bernoulli", "probs", &probs)?;
        let eps = eps(probs.kind());
        let logits = probs.f_clamp(eps, 1.0 - eps)?.f_logit(None)?;
        Ok(Self::build(logits, probs))
    }
    /// Bernoulli with log-odds `logits`.
    pub fn from_logits(logits: impl Into<Arg>) -> Result<Bernoulli> {
        let [logits] = broadcast_args("Bernoulli", [logits.into()])?;
        let probs = logits.f_sigmoid()?;
        Ok(Self::build(logits, probs))
    }
    fn build(logits: Tensor, probs: Tensor) -> Bernoulli {
        let batch_shape = probs.size();
        Bernoulli {
            logits,
            probs,
            batch_shape,
        }
    }
    /// Success probabilities.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
    /// Log-odds.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }
}

/// The smallest probability distinguishable from 0 in `kind` (torch's `finfo.eps`).
pub(crate) fn eps(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::EPSILON,
        Kind::Half => 0.000977,
        Kind::BFloat16 => 0.0078125,
        _ => f32::EPSILON as f64,
    }
}

impl Distribution for Bernoulli {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "Bernoulli"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn support(&self) -> Constraint {
        Constraint::Boolean
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            Ok(self
                .probs
                .f_expand(shape.as_slice(), false)?
                .f_bernoulli()?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (logits, value) = broadcast_pair(&self.logits, value)?;
        Ok(logits
            .f_binary_cross_entropy_with_logits::<Tensor>(&value, None, None, tch::Reduction::None)?
            .f_neg()?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Bernoulli {
            logits: expand_param(&self.logits, batch_shape, &[])?,
            probs: expand_param(&self.probs, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let v = Tensor::f_arange(2, (self.probs.kind(), self.probs.device()))?;
        let mut shape = vec![2];
        shape.extend(std::iter::repeat_n(1, self.batch_shape.len()));
        let v = v.f_reshape(shape.as_slice())?;
        if expand {
            let mut full = vec![2];
            full.extend_from_slice(&self.batch_shape);
            Ok(v.f_expand(full.as_slice(), false)?)
        } else {
            Ok(v)
        }
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.probs.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.probs.f_mul(&self.probs.f_neg()?.f_add_scalar(1.0)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.logits.f_binary_cross_entropy_with_logits::<Tensor>(
            &self.probs,
            None,
            None,
            tch::Reduction::None,
        )?)
    }
}

/// Broadcasts two tensors against each other (value against a parameter).
pub(crate) fn broadcast_pair(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    if a.size() == b.size() {
        return Ok((a.shallow_clone(), b.shallow_clone()));
    }
    let v = Tensor::f_broadcast_tensors(&[a, b]).map_err(|e| {
        crate::Error::Shape(format!(
            "value of shape {:?} does not broadcast with parameters of shape {:?} ({e})",
            b.size(),
            a.size()
        ))
    })?;
    let mut it = v.into_iter();
    match (it.next(), it.next()) {
        (Some(x), Some(y)) => {
            let k = x.kind();
            Ok((x, y.f_to_kind(k)?))
        }
        _ => Err(crate::Error::Shape("broadcast failed".into())),
    }
}
