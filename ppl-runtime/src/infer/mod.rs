//! Inference algorithms.

mod elbo;
mod svi;

pub use elbo::{Elbo, ElboOutput, TraceElbo};
pub use svi::Svi;
