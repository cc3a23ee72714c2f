//! # ppl: Pyro for Rust
//!
//! A probabilistic programming language where a model is a plain Rust function marked
//! `#[model]`, random choices are `sample!`, learnable values are `param!` and conditional
//! independence is `plate!`; inference runs on libtorch through `tch`, on CPU or CUDA.
//!
//! ```
//! use ppl::prelude::*;
//!
//! #[model]
//! fn coin(flips: &Tensor) -> ppl::Result<()> {
//!     let fairness = sample!(Beta::new(10.0, 10.0)?);
//!     let _data = plate!("data", flips.size()[0]);
//!     sample!("obs", Bernoulli::new(&fairness)?, obs = flips);
//!     Ok(())
//! }
//!
//! #[guide]
//! fn coin_guide(_flips: &Tensor) -> ppl::Result<()> {
//!     let alpha_q = param!(Tensor::from(15.0f32), constraint = positive);
//!     let beta_q = param!(Tensor::from(15.0f32), constraint = positive);
//!     let fairness = sample!(Beta::new(&alpha_q, &beta_q)?);
//!     let _ = fairness;
//!     Ok(())
//! }
//!
//! # fn main() -> ppl::Result<()> {
//! set_rng_seed(0);
//! let flips = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
//! let adam = Adam::new(AdamConfig { lr: 0.01, ..Default::default() });
//! let mut svi = Svi::new(|| coin(&flips), || coin_guide(&flips), adam, TraceElbo::default());
//! for _ in 0..10 {
//!     let loss = svi.step()?;
//!     assert!(loss.is_finite());
//! }
//! assert!(get_param("alpha_q")?.double_value(&[]) > 0.0);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod constraints;
pub mod distributed;
pub mod distributions;
mod error;
pub mod infer;
pub mod jit;
pub mod naming;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod params;
pub mod plots;
pub mod poutine;
pub mod primitives;
pub mod transforms;

pub use error::{Error, Result, ResultExt};
/// The ordered map ppl returns sites in (draws by site, log-likelihoods by site), re-exported so
/// that users need no dependency of their own.
pub use indexmap::IndexMap;
pub use ppl_macros::{guide, model, param, plate, sample};
pub use primitives::{
    clear_param_store, deterministic, factor, get_rng_state, module, param, sample, sample_with,
    set_rng_seed, set_rng_state, with_rng, RngState, SampleOpts,
};
pub use tch;

/// Everything a model file usually needs.
pub mod prelude {
    pub use crate::constraints::{self, Constraint};
    pub use crate::distributions::*;
    pub use crate::infer::{
        AutoDelta, AutoDiagonalNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
        AutoMultivariateNormal, AutoNormal, Elbo, ElboConfig, EmpiricalMarginal, Importance,
        JitTraceElbo, Marginal, Mcmc, Nuts, Predictive, RenyiElbo, Search, Svi, TraceElbo,
        TraceEnumElbo, TraceGraphElbo, TraceMeanFieldElbo,
    };
    pub use crate::optim::{
        Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, ClipConfig, Clipped,
        ClippedAdam, ClippedAdamConfig, ExponentialLr, LrScheduled, LrScheduler, MultiStepLr,
        Optimizer, ReduceLrOnPlateau, RmsProp, RmsPropConfig, Sgd, SgdConfig, StepLr,
    };
    pub use crate::params::{get_param, with_param_store, ParamStore};
    pub use crate::poutine::{self, Handler, Plate, Trace};
    pub use crate::primitives::{
        clear_param_store, deterministic, factor, module, sample_with, set_rng_seed, SampleOpts,
    };
    pub use crate::{guide, model, param, plate, sample};
    pub use crate::{Error, Result};
    pub use tch::{self, Device, Kind, Tensor};
}

/// What the macros expand to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::constraints;
    pub use crate::naming::enter_model;
    pub use crate::poutine::{Enumerate, InferConfig, Plate};
    pub use crate::primitives::{param, sample, sample_with, SampleOpts};
    pub use crate::Result;
    use tch::Tensor;

    /// What `obs = ...` accepts.
    pub trait IntoObs {
        /// The observation, if any.
        fn into_obs(self) -> Option<Tensor>;
    }
    impl IntoObs for Tensor {
        fn into_obs(self) -> Option<Tensor> {
            Some(self)
        }
    }
    impl IntoObs for &Tensor {
        fn into_obs(self) -> Option<Tensor> {
            Some(self.shallow_clone())
        }
    }
    impl IntoObs for &&Tensor {
        fn into_obs(self) -> Option<Tensor> {
            Some(self.shallow_clone())
        }
    }
    impl IntoObs for f64 {
        fn into_obs(self) -> Option<Tensor> {
            Some(Tensor::from(self as f32))
        }
    }
    impl IntoObs for f32 {
        fn into_obs(self) -> Option<Tensor> {
            Some(Tensor::from(self))
        }
    }
    impl IntoObs for Option<Tensor> {
        fn into_obs(self) -> Option<Tensor> {
            self
        }
    }
    impl IntoObs for Option<&Tensor> {
        fn into_obs(self) -> Option<Tensor> {
            self.map(Tensor::shallow_clone)
        }
    }
    impl IntoObs for &Option<Tensor> {
        fn into_obs(self) -> Option<Tensor> {
            self.as_ref().map(Tensor::shallow_clone)
        }
    }

    /// What a `param!` initial value may be.
    pub trait IntoInit {
        /// The initial (constrained) value.
        fn into_init(self) -> Result<Tensor>;
    }
    impl IntoInit for Tensor {
        fn into_init(self) -> Result<Tensor> {
            Ok(self)
        }
    }
    impl IntoInit for &Tensor {
        fn into_init(self) -> Result<Tensor> {
            Ok(self.shallow_clone())
        }
    }
    impl IntoInit for f64 {
        fn into_init(self) -> Result<Tensor> {
            Ok(Tensor::from(self as f32))
        }
    }
    impl IntoInit for f32 {
        fn into_init(self) -> Result<Tensor> {
            Ok(Tensor::from(self))
        }
    }
    impl IntoInit for Result<Tensor> {
        fn into_init(self) -> Result<Tensor> {
            self
        }
    }

    /// `param!` with an initial value.
    pub fn param_init<V: IntoInit, F: FnOnce() -> V>(
        name: impl Into<String>,
        init: F,
        constraint: constraints::Constraint,
        event_dim: Option<usize>,
    ) -> Result<Tensor> {
        crate::primitives::param(
            name,
            Some(move || init().into_init()),
            constraint,
            event_dim,
        )
    }

    /// `param!` without an initial value (the param must exist).
    pub fn param_existing(
        name: impl Into<String>,
        constraint: constraints::Constraint,
        event_dim: Option<usize>,
    ) -> Result<Tensor> {
        crate::primitives::param::<fn() -> Result<Tensor>>(name, None, constraint, event_dim)
    }
}
