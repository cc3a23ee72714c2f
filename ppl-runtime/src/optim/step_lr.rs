//! Step learning-rate decay (`torch.optim.lr_scheduler.StepLR`).

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_i64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// Multiplies a param's learning rate by `gamma` every `step_size` scheduler steps (torch's
/// `StepLR`; Pyro's `pyro.optim.StepLR`). Each param counts its own scheduler steps from when it
/// first appeared, as Pyro's one scheduler per param does.
#[derive(Debug)]
pub struct StepLr<O> {
    optim: O,
    step_size: i64,
    gamma: f64,
    epochs: IndexMap<String, i64>,
}

impl<O: LrScheduled> StepLr<O> {
    /// Decays the learning rates of `optim` by `gamma` every `step_size` scheduler steps
    /// (torch's default `gamma` is `0.1`). Errors if `step_size < 1`.
    pub fn new(optim: O, step_size: i64, gamma: f64) -> Result<Self> {
        if step_size < 1 {
            return Err(Error::Invalid(format!(
                "StepLr: step_size must be at least 1, got {step_size}"
            )));
        }
        Ok(StepLr {
            optim,
            step_size,
            gamma,
            epochs: IndexMap::new(),
        })
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

impl<O: LrScheduled> LrScheduler for StepLr<O> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        let (step_size, gamma) = (self.step_size, self.gamma);
        let epochs = &mut self.epochs;
        self.optim.for_each_lr(&mut |name, lr| {
            let e = match epochs.get_index_of(name) {
                Some(i) => &mut epochs[i],
                None => epochs.entry(name.to_string()).or_insert(0),
            };
            *e += 1;
            if *e % step_size == 0 {
                *lr *= gamma;
            }
        });
        Ok(())
    }
}

impl<O: LrScheduled> LrScheduled for StepLr<O> {
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

impl<O: Optimizer + LrScheduled> Optimizer for StepLr<O> {
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        self.optim.step(params)
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out: Vec<(String, Tensor)> = self
            .epochs
            .iter()
            .map(|(name, e)| (format!("sched/{name}/epoch"), scalar_i64(*e)))
            .collect();
        wrap_inner(self.optim.state()?, &mut out);
        Ok(out)
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let (own, inner) = split_state("StepLr", state)?;
        let mut epochs = IndexMap::new();
        for (k, t) in own {
            match split_field("StepLr", &k)? {
                (name, "epoch") => {
                    epochs.insert(name.to_string(), read_i64(&t)?);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "StepLr state: unexpected entry `sched/{k}`"
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.epochs = epochs;
        Ok(())
    }
}
