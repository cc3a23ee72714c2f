//! Inference algorithms.

mod elbo;
mod importance;
mod marginal;
mod search;
mod svi;

pub use elbo::{
    get_traces, Elbo, ElboConfig, ElboOutput, RenyiElbo, TraceElbo, TraceGraphElbo,
    TraceMeanFieldElbo, PARTICLES_PLATE,
};
pub use importance::{EmpiricalMarginal, Importance, ImportancePosterior, PARTICLE_PLATE};
pub use marginal::{sample_value, Marginal, MarginalValue, Memoized, ValueIndex};
pub use search::{Search, WeightedTrace};
pub use svi::Svi;
