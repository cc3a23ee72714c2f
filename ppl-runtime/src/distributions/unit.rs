use std::rc::Rc;

use tch::Tensor;

use super::{expand_param, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The trivial distribution over the empty value, carrying a log-factor (what `factor` samples).
/// A value has shape `batch_shape + [0]`; its log-density is the log-factor.
#[derive(Debug)]
pub struct Unit {
    log_factor: Tensor,
    batch_shape: Vec<i64>,
}

impl Unit {
    /// A unit distribution with the given log-factor.
    pub fn new(log_factor: &Tensor) -> Result<Unit> {
        Ok(Unit {
            batch_shape: log_factor.size(),
            log_factor: log_factor.shallow_clone(),
        })
    }
}

impl Distribution for Unit {
    fn name(&self) -> &'static str {
        "Unit"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[0]
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(&self.batch_shape);
        shape.push(0);
        Ok(Tensor::f_empty(
            shape.as_slice(),
            (self.log_factor.kind(), self.log_factor.device()),
        )?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let mut shape = value.size();
        shape.pop();
        if shape == self.batch_shape {
            return Ok(self.log_factor.shallow_clone());
        }
        Ok(self.log_factor.f_expand(shape.as_slice(), false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Unit {
            log_factor: expand_param(&self.log_factor, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
}
