//! Markov chain Monte Carlo: HMC and NUTS with Stan's warmup adaptation, chains in parallel on OS
//! threads, diagnostics and exports.
//!
//! The pieces, one per file: [`model_spec`] finds a model's latent sites and lays them out in one
//! flat unconstrained vector; [`potential`] is the potential energy on that vector, evaluated by
//! libtorch, and [`compiled_potential`] the same as a compiled host program (`jit_compile`), both
//! behind [`kernel::PotentialFn`]; [`kernel`] holds what [`Hmc`] and [`Nuts`] share (leapfrog, step-size
//! search); [`mass_matrix`] and [`adaptation`] are the metric and its warmup; [`init`] picks
//! initial points; [`mcmc`](self::Mcmc) drives chains; [`results`] holds what they leave (samples,
//! diagnostics, the summary), [`diagnostics`] the statistics and [`export`] the files.
//!
//! The sampler's state lives in plain `Vec<f64>`s: for the models MCMC is used on, a tensor op
//! costs far more than the arithmetic, so only the potential and its gradient go through libtorch.

pub mod adaptation;
pub mod compiled_potential;
pub mod diagnostics;
pub mod export;
mod hmc;
pub mod init;
pub mod kernel;
pub mod mass_matrix;
#[allow(clippy::module_inception)]
pub(crate) mod mcmc;
pub mod model_spec;
mod nuts;
pub mod potential;
pub mod results;
pub(crate) mod state;

pub use compiled_potential::CompiledPotential;
pub use hmc::Hmc;
pub use init::InitStrategy;
pub use kernel::PotentialFn;
pub use kernel::{Kernel, KernelOptions, TransitionStats};
pub use mass_matrix::InverseMassMatrix;
pub use mcmc::{Hook, Iteration, Mcmc, Stage};
pub use model_spec::{coordinate_names, ModelSpec, SiteSpec};
pub use nuts::Nuts;
pub use potential::Potential;
pub use results::{ChainResult, SiteDiagnostics};
pub use state::{ChainState, McmcState};

/// A chain's random stream: ppl's generator (rand's `StdRng` stream), whose state can be saved
/// ([`McmcState`]).
pub type ChainRng = crate::primitives::PplRng;
