use std::rc::Rc;

use tch::Tensor;

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Reinterprets the `n` rightmost batch dims of a distribution as event dims (Pyro's
/// `to_event`, torch's `Independent`): their log-densities are summed.
#[derive(Debug)]
pub struct Independent {
    base: DistRef,
    n: usize,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl Independent {
    /// Moves `n` batch dims of `base` into the event.
    pub fn new(base: DistRef, n: usize) -> Result<Independent> {
        let b = base.batch_shape();
        if n > b.len() {
            return Err(Error::Shape(format!(
                "to_event({n}) on {} with batch shape {b:?}: only {} batch dims",
                base.name(),
                b.len()
            )));
        }
        let split = b.len() - n;
        let mut event_shape = b[split..].to_vec();
        event_shape.extend_from_slice(base.event_shape());
        Ok(Independent {
            batch_shape: b[..split].to_vec(),
            event_shape,
            base,
            n,
        })
    }
    /// The wrapped distribution.
    pub fn base(&self) -> &DistRef {
        &self.base
    }
    /// How many batch dims were moved into the event.
    pub fn reinterpreted_batch_ndims(&self) -> usize {
        self.n
    }
    fn sum_rightmost(&self, t: Tensor) -> Result<Tensor> {
        if self.n == 0 {
            return Ok(t);
        }
        let nd = t.dim() as i64;
        let dims: Vec<i64> = (nd - self.n as i64..nd).collect();
        Ok(t.f_sum_dim_intlist(dims.as_slice(), false, None)?)
    }
}

impl Distribution for Independent {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        self.base.name()
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(self.base.support()), self.n)
    }
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        self.base.sample(s)
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        self.base.rsample(s)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        self.sum_rightmost(self.base.log_prob(value)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let mut full = batch_shape.to_vec();
        let b = self.base.batch_shape();
        full.extend_from_slice(&b[b.len() - self.n..]);
        Ok(Rc::new(Independent::new(self.base.expand(&full)?, self.n)?))
    }
    fn has_enumerate_support(&self) -> bool {
        self.n == 0 && self.base.has_enumerate_support()
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        if self.n > 0 {
            return Err(self.not_implemented("enumerate_support (of to_event)"));
        }
        self.base.enumerate_support(expand)
    }
    fn mean(&self) -> Result<Tensor> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Tensor> {
        self.base.variance()
    }
    fn entropy(&self) -> Result<Tensor> {
        self.sum_rightmost(self.base.entropy()?)
    }
}
