//! Optimizers over named params.

mod adam;

pub use adam::{Adam, AdamConfig};

use tch::Tensor;

use crate::error::Result;

/// An optimizer: updates named leaf tensors in place from their `.grad()`.
pub trait Optimizer {
    /// One update of `params` (name, unconstrained leaf); params without a gradient are skipped.
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()>;
}
