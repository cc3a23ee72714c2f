//! Inference algorithms.

mod args;
pub mod autoguide;
pub mod criticism;
mod discrete;
mod elbo;
pub(crate) mod enumerate;
mod importance;
mod marginal;
pub mod mcmc;
mod predictive;
pub mod reparam;
pub mod sbc;
mod search;
mod svi;
pub(crate) mod threads;

pub use args::{arg_tensors, bind, ModelArgs, ModelFn};
pub use autoguide::{
    AutoDelta, AutoDiagonalNormal, AutoGuide, AutoGuideList, AutoIAFNormal,
    AutoLaplaceApproximation, AutoLowRankMultivariateNormal, AutoMultivariateNormal, AutoNormal,
    AutoNormalizingFlow,
};
pub use discrete::infer_discrete;
pub use elbo::{
    get_traces, Elbo, ElboConfig, ElboOutput, JitTraceElbo, LossAndGrads, RenyiElbo, TraceElbo,
    TraceEnumElbo, TraceGraphElbo, TraceMeanFieldElbo, VECTORIZED_PARTICLES_PLATE,
};
pub use importance::{EmpiricalMarginal, Importance, ImportancePosterior, IMPORTANCE_PLATE};
pub use marginal::{sample_value, Marginal, MarginalValue, Memoized, ValueIndex};
pub use mcmc::{Hmc, Mcmc, Nuts};
pub use predictive::{Predictive, PREDICTIVE_PLATE};
pub use sbc::{sbc, SbcRanks};
pub use search::{Search, WeightedTrace};
pub use svi::{step as svi_step, Svi};
