//! Exponential learning-rate decay (`torch.optim.lr_scheduler.ExponentialLR`).

use tch::Tensor;

use super::lr::{split_state, wrap_inner, LrScheduled, LrScheduler};
use super::Optimizer;
use crate::error::{Error, Result};

/// Multiplies every param's learning rate by `gamma` at each [`LrScheduler::scheduler_step`]
/// (torch's `ExponentialLR`; Pyro's `pyro.optim.ExponentialLR`). After `n` scheduler steps a
/// param's rate is its initial rate times `gamma^n` (counted from when the param first appeared).
///
/// ```
/// use ppl::optim::{ExponentialLr, LrScheduled, LrScheduler, Optimizer, Sgd, SgdConfig};
/// use ppl::tch::{Kind, Tensor};
///
/// # fn main() -> ppl::Result<()> {
/// let mut optim = ExponentialLr::new(Sgd::new(SgdConfig { lr: 0.1, ..Default::default() }), 0.5);
/// let x = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
/// x.sum(Kind::Float).backward();
/// optim.step(&[("x".to_string(), x.shallow_clone())])?;
/// optim.scheduler_step(None)?;
/// assert_eq!(optim.lr("x"), Some(0.05));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExponentialLr<O> {
    optim: O,
    gamma: f64,
}

impl<O: LrScheduled> ExponentialLr<O> {
    /// Decays the learning rates of `optim` by `gamma` per scheduler step.
    pub fn new(optim: O, gamma: f64) -> Self {
        ExponentialLr { optim, gamma }
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.optim
    }

    /// The wrapped optimizer, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.optim
    }

    /// Unwraps the optimizer.
    pub fn into_inner(self) -> O {
        self.optim
    }
}

impl<O: LrScheduled> LrScheduler for ExponentialLr<O> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        let gamma = self.gamma;
        self.optim.for_each_lr(&mut |_, lr| *lr *= gamma);
        Ok(())
    }
}

impl<O: LrScheduled> LrScheduled for ExponentialLr<O> {
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        self.optim.for_each_lr(f)
    }

    fn lr(&self, name: &str) -> Option<f64> {
        self.optim.lr(name)
    }

    fn initial_lr(&self, name: &str) -> Option<f64> {
        self.optim.initial_lr(name)
    }
}

impl<O: Optimizer + LrScheduled> Optimizer for ExponentialLr<O> {
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        self.optim.step(params)
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        wrap_inner(self.optim.state()?, &mut out);
        Ok(out)
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let (own, inner) = split_state("ExponentialLr", state)?;
        if let Some((k, _)) = own.first() {
            return Err(Error::Invalid(format!(
                "ExponentialLr state: unexpected entry `sched/{k}`"
            )));
        }
        self.optim.load_state(inner)
    }
}
