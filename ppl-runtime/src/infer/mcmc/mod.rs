//! Markov chain Monte Carlo: HMC and NUTS with Stan's warmup adaptation, chains in parallel on OS
//! threads, diagnostics and exports.
//!
//! The pieces, one per file: [`potential`] turns a model into a potential energy on one flat
//! unconstrained vector; [`kernel`] holds what [`Hmc`] and [`Nuts`] share (leapfrog, step-size
//! search); [`mass_matrix`] and [`adaptation`] are the metric and its warmup; [`init`] picks
//! initial points; [`mcmc`](self::Mcmc) drives chains; [`diagnostics`] and [`export`] deal with
//! the draws.
//!
//! The sampler's state lives in plain `Vec<f64>`s: for the models MCMC is used on, a tensor op
//! costs far more than the arithmetic, so only the potential and its gradient go through libtorch.

pub mod adaptation;
pub mod diagnostics;
pub mod export;
mod hmc;
pub mod init;
pub mod kernel;
pub mod mass_matrix;
#[allow(clippy::module_inception)]
mod mcmc;
mod nuts;
pub mod potential;

pub use hmc::Hmc;
pub use init::InitStrategy;
pub use kernel::{Kernel, KernelOptions, TransitionStats};
pub use mass_matrix::InverseMassMatrix;
pub use mcmc::{ChainResult, Hook, Iteration, Mcmc, SiteDiagnostics, Stage};
pub use nuts::Nuts;
pub use potential::{ModelSpec, Potential, SiteSpec};
