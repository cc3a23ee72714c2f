use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{expand_param, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The point mass at `v` (Pyro's `Delta`), with an optional `log_density` added to its log-mass.
/// The rightmost `event_dim` dims of `v` form one event.
///
/// `log_prob(x) = log_density` where `x == v` (over the whole event), `-inf` elsewhere.
/// Reparameterized: a draw is `v` itself, so gradients flow to `v`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Delta::new(&Tensor::from(2.0f32), 0)?;
/// assert_eq!(d.log_prob(&Tensor::from(2.0f32))?.double_value(&[]), 0.0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Delta {
    v: Tensor,
    log_density: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl Delta {
    /// The point mass at `v` with `event_dim` event dims.
    pub fn new(v: &Tensor, event_dim: usize) -> Result<Delta> {
        let size = v.size();
        if event_dim > size.len() {
            return Err(Error::InvalidParameter {
                dist: "Delta",
                param: "event_dim",
                expected: format!("at most v.dim() = {}, got {event_dim}", size.len()),
            });
        }
        let split = size.len() - event_dim;
        let batch_shape = size[..split].to_vec();
        let kind = if crate::distributions::is_float(v.kind()) {
            v.kind()
        } else {
            Kind::Float
        };
        let log_density = Tensor::f_zeros(batch_shape.as_slice(), (kind, v.device()))?;
        Ok(Delta {
            v: v.shallow_clone(),
            log_density,
            batch_shape,
            event_shape: size[split..].to_vec(),
        })
    }
    /// Adds `log_density` (broadcast to the batch shape) to the log-mass.
    pub fn with_log_density(mut self, log_density: &Tensor) -> Result<Delta> {
        self.log_density = expand_param(log_density, &self.batch_shape, &[])?;
        Ok(self)
    }
    /// The point.
    pub fn v(&self) -> &Tensor {
        &self.v
    }
}

impl Distribution for Delta {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "Delta"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
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
        if sample_shape.is_empty() {
            return Ok(self.v.shallow_clone());
        }
        let mut shape = sample_shape.to_vec();
        shape.extend(self.v.size());
        Ok(self.v.f_expand(shape.as_slice(), false)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let eq = value.f_eq_tensor(&self.v)?;
        let nd = eq.dim() as i64;
        let k = self.event_shape.len() as i64;
        let eq = if k > 0 {
            let dims: Vec<i64> = (nd - k..nd).collect();
            eq.f_to_kind(Kind::Int64)?
                .f_amin(dims.as_slice(), false)?
                .f_to_kind(Kind::Bool)?
        } else {
            eq
        };
        let zero = eq.f_zeros_like()?.f_to_kind(self.log_density.kind())?;
        let lp = zero.f_masked_fill(&eq.f_logical_not()?, f64::NEG_INFINITY)?;
        Ok(lp.f_add(&self.log_density)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Delta {
            v: expand_param(&self.v, batch_shape, &self.event_shape)?,
            log_density: expand_param(&self.log_density, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.v.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.v.f_zeros_like()?)
    }
}
