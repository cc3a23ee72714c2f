use std::rc::Rc;

use tch::{Device, Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;
use crate::transforms::biject_to;

/// Pyro's `ImproperUniform`: a flat "density" (`log_prob` 0) over a constrained set, for latent
/// sites whose density comes from elsewhere (a `factor`, or observations further down). It is
/// not a distribution: [`Distribution::sample`] returns a point in the support (uniform in
/// `(-2, 2)` in unconstrained space, pushed through `biject_to(support)`, as the
/// `init_to_uniform` strategy does) so that traces and MCMC initialization can run, not a draw.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = ImproperUniform::new(constraints::positive(), &[3], &[])?;
/// let x = d.sample(&[])?;
/// assert!(bool::try_from(x.gt(0.0).all())?);
/// assert_eq!(d.log_prob(&x)?.size(), vec![3]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ImproperUniform {
    support: Constraint,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
    options: (Kind, Device),
}

impl ImproperUniform {
    /// Flat over `support`, with these shapes (points in float32 on the CPU unless
    /// [`ImproperUniform::options`] says otherwise).
    pub fn new(support: Constraint, batch_shape: &[i64], event_shape: &[i64]) -> Result<Self> {
        Ok(ImproperUniform {
            support,
            batch_shape: batch_shape.to_vec(),
            event_shape: event_shape.to_vec(),
            options: (Kind::Float, Device::Cpu),
        })
    }
    /// The dtype and device of the points `sample` returns.
    pub fn options(mut self, kind: Kind, device: Device) -> Self {
        self.options = (kind, device);
        self
    }
}

impl Distribution for ImproperUniform {
    fn name(&self) -> &'static str {
        "ImproperUniform"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        self.support.clone()
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let t = biject_to(&self.support)?;
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(&self.batch_shape);
        shape.extend_from_slice(&self.event_shape);
        let u = Tensor::f_rand(t.inverse_shape(&shape).as_slice(), self.options)?
            .f_mul_scalar(4.0)?
            .f_sub_scalar(2.0)?;
        tch::no_grad(|| t.forward(&u))
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let s = value.size();
        let keep = s.len().saturating_sub(self.event_shape.len());
        let kind = if crate::distributions::is_float(value.kind()) {
            value.kind()
        } else {
            Kind::Float
        };
        Ok(Tensor::f_zeros(&s[..keep], (kind, value.device()))?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(ImproperUniform {
            support: self.support.clone(),
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
            options: self.options,
        }))
    }
}
