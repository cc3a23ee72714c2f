//! Learning-rate decay at given scheduler steps (`torch.optim.lr_scheduler.MultiStepLR`).

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_i64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// Multiplies a param's learning rate by `gamma` when its scheduler-step count reaches each of
/// `milestones` (by `gamma^k` for a milestone listed `k` times), as torch's `MultiStepLR`
/// (Pyro's `pyro.optim.MultiStepLR`). Each param counts its own steps from when it first
/// appeared, as Pyro's one scheduler per param does.
#[derive(Debug)]
pub struct MultiStepLr<O> {
    optim: O,
    milestones: Vec<i64>,
    gamma: f64,
    epochs: IndexMap<String, i64>,
}

impl<O: LrScheduled> MultiStepLr<O> {
    /// Decays the learning rates of `optim` by `gamma` at each of `milestones` (torch's default
    /// `gamma` is `0.1`).
    pub fn new(optim: O, milestones: &[i64], gamma: f64) -> Self {
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        MultiStepLr {
            optim,
            milestones,
            gamma,
            epochs: IndexMap::new(),
        }
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

impl<O: LrScheduled> LrScheduler for MultiStepLr<O> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        let (milestones, gamma) = (&self.milestones, self.gamma);
        let epochs = &mut self.epochs;
        self.optim.for_each_lr(&mut |name, lr| {
            let e = match epochs.get_index_of(name) {
                Some(i) => &mut epochs[i],
                None => epochs.entry(name.to_string()).or_insert(0),
            };
            *e += 1;
            let hits = milestones.iter().filter(|&&m| m == *e).count();
            if hits > 0 {
                *lr *= gamma.powf(hits as f64);
            }
        });
        Ok(())
    }
}

impl<O: LrScheduled> LrScheduled for MultiStepLr<O> {
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

impl<O: Optimizer + LrScheduled> Optimizer for MultiStepLr<O> {
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
        let (own, inner) = split_state("MultiStepLr", state)?;
        let mut epochs = IndexMap::new();
        for (k, t) in own {
            match split_field("MultiStepLr", &k)? {
                (name, "epoch") => {
                    epochs.insert(name.to_string(), read_i64(&t)?);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "MultiStepLr state: unexpected entry `sched/{k}`"
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.epochs = epochs;
        Ok(())
    }
}
