use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// A distribution whose log-density is zero where a boolean mask (broadcast against its batch
/// shape) is false (Pyro's `.mask(mask)`).
#[derive(Debug)]
pub struct Masked {
    base: DistRef,
    mask: Tensor,
}

impl Masked {
    /// Masks `base` with `mask`.
    pub fn new(base: DistRef, mask: &Tensor) -> Result<Masked> {
        Ok(Masked {
            base,
            mask: mask.f_to_kind(Kind::Bool)?,
        })
    }
}

impl Distribution for Masked {
    fn name(&self) -> &'static str {
        self.base.name()
    }
    fn batch_shape(&self) -> &[i64] {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        self.base.event_shape()
    }
    fn support(&self) -> Constraint {
        self.base.support()
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
        let lp = self.base.log_prob(value)?;
        let zero = lp.f_zeros_like()?;
        Ok(lp.f_where_self(&self.mask, &zero)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Masked {
            base: self.base.expand(batch_shape)?,
            mask: self.mask.shallow_clone(),
        }))
    }
    fn has_enumerate_support(&self) -> bool {
        self.base.has_enumerate_support()
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        self.base.enumerate_support(expand)
    }
    fn mean(&self) -> Result<Tensor> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Tensor> {
        self.base.variance()
    }
}
