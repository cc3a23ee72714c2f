use std::rc::Rc;

use tch::{Device, Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Uniform random subsets of `subsample_size` of the indices `0..size`, without replacement, in
/// random order (what a subsampling plate draws; its log-density is zero).
#[derive(Debug)]
pub struct Subsample {
    size: i64,
    subsample_size: i64,
    device: Device,
    event_shape: [i64; 1],
}

impl Subsample {
    /// Subsets of `subsample_size` of `0..size`, as int64 on `device`.
    pub fn new(size: i64, subsample_size: i64, device: Device) -> Result<Subsample> {
        if subsample_size > size || subsample_size < 0 {
            return Err(Error::InvalidParameter {
                dist: "Subsample",
                param: "subsample_size",
                expected: format!("in 0..={size}, got {subsample_size}"),
            });
        }
        Ok(Subsample {
            size,
            subsample_size,
            device,
            event_shape: [subsample_size],
        })
    }
}

impl Distribution for Subsample {
    fn name(&self) -> &'static str {
        "Subsample"
    }
    fn batch_shape(&self) -> &[i64] {
        &[]
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn support(&self) -> Constraint {
        Constraint::IntegerInterval(0, self.size - 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        if !sample_shape.is_empty() {
            return Err(self.not_implemented("sample with a sample shape"));
        }
        let perm = Tensor::f_randperm(self.size, (Kind::Int64, self.device))?;
        Ok(perm.f_narrow(0, 0, self.subsample_size)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let mut shape = value.size();
        shape.pop();
        Ok(Tensor::f_zeros(
            shape.as_slice(),
            (Kind::Float, value.device()),
        )?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        if batch_shape.is_empty() {
            return Ok(Rc::new(Subsample::new(
                self.size,
                self.subsample_size,
                self.device,
            )?));
        }
        Err(self.not_implemented("expand"))
    }
}
