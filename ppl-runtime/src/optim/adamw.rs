//! AdamW, with the arithmetic of `torch.optim.AdamW` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::adam::{adam_update, AdamConfig, AdamState};
use super::per_param::{per_param_optimizer, Rule};
use crate::error::Result;

/// Settings of [`AdamW`]; the defaults are torch's (as Adam's, but `weight_decay = 1e-2`).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (default `1e-8`).
    pub eps: f64,
    /// Decoupled weight decay: each step first multiplies the param by `1 - lr * weight_decay`
    /// (default `1e-2`).
    pub weight_decay: f64,
    /// Use the maximum of all second-moment estimates so far (AMSGrad; default `false`).
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
        }
    }
}

impl AdamWConfig {
    fn as_adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
        }
    }
}

pub(crate) struct AdamWRule;

impl Rule for AdamWRule {
    type Config = AdamWConfig;
    type State = AdamState;
    const NAME: &'static str = "AdamW";

    fn lr(config: &AdamWConfig) -> f64 {
        config.lr
    }

    fn init(config: &AdamWConfig, p: &Tensor) -> Result<AdamState> {
        AdamState::new(p, config.amsgrad)
    }

    fn update(
        config: &AdamWConfig,
        lr: f64,
        state: &mut AdamState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        adam_update(&config.as_adam(), true, lr, state, p, grad)
    }

    fn save(state: &AdamState) -> Result<Vec<(&'static str, Tensor)>> {
        state.save()
    }

    fn load(config: &AdamWConfig, fields: &mut IndexMap<String, Tensor>) -> Result<AdamState> {
        AdamState::load(fields, config.amsgrad)
    }
}

per_param_optimizer!(
    /// AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, with the arithmetic
    /// of `torch.optim.AdamW`; one state per param name.
    AdamW,
    AdamWRule,
    AdamWConfig
);
