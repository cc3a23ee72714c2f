//! Tensor operations for inference (Pyro's `pyro.ops`): the plated sum-product contraction that
//! enumeration runs on, and indexing that broadcasts enumeration dims.

pub(crate) mod contract;
mod indexing;

pub use indexing::vindex;
