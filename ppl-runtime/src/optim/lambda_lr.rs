//! Learning rates from a function of the scheduler step (`torch.optim.lr_scheduler.LambdaLR`).

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_i64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// Sets a param's learning rate to its initial rate times `lambda(k)` at its `k`-th scheduler
/// step (torch's `LambdaLR`; Pyro's `pyro.optim.LambdaLR`). Each param counts its own scheduler
/// steps from when it first appeared, as Pyro's one scheduler per param does.
///
/// One difference: torch also applies `lambda(0)` when the scheduler is created, before the first
/// optimizer step; here a param runs at its initial rate until the first scheduler step. With
/// `lambda(0) == 1` (as for decays like `|k| 0.95f64.powi(k as i32)`) the two are the same.
pub struct LambdaLr<O, F> {
    optim: O,
    lambda: F,
    epochs: IndexMap<String, i64>,
}

impl<O: std::fmt::Debug, F> std::fmt::Debug for LambdaLr<O, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaLr")
            .field("optim", &self.optim)
            .field("epochs", &self.epochs)
            .finish_non_exhaustive()
    }
}

impl<O: LrScheduled, F: Fn(i64) -> f64> LambdaLr<O, F> {
    /// Scales the initial learning rates of `optim` by `lambda(k)` at scheduler step `k`.
    pub fn new(optim: O, lambda: F) -> Self {
        LambdaLr {
            optim,
            lambda,
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

impl<O: LrScheduled, F: Fn(i64) -> f64> LrScheduler for LambdaLr<O, F> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        // The initial rates first: `for_each_lr` holds the optimizer mutably.
        let mut names: Vec<String> = Vec::new();
        self.optim
            .for_each_lr(&mut |name, _| names.push(name.to_string()));
        let bases: Vec<Option<f64>> = names.iter().map(|n| self.optim.initial_lr(n)).collect();
        let (epochs, lambda) = (&mut self.epochs, &self.lambda);
        let mut i = 0;
        self.optim.for_each_lr(&mut |name, lr| {
            let base = bases.get(i).copied().flatten().unwrap_or(*lr);
            i += 1;
            let k = match epochs.get_index_of(name) {
                Some(j) => &mut epochs[j],
                None => epochs.entry(name.to_string()).or_insert(0),
            };
            *k += 1;
            *lr = base * lambda(*k);
        });
        Ok(())
    }
}

impl<O: LrScheduled, F> LrScheduled for LambdaLr<O, F> {
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

impl<O: Optimizer + LrScheduled, F> Optimizer for LambdaLr<O, F> {
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
        let (own, inner) = split_state("LambdaLr", state)?;
        let mut epochs = IndexMap::new();
        for (k, t) in own {
            match split_field("LambdaLr", &k)? {
                (name, "epoch") => {
                    epochs.insert(name.to_string(), read_i64(&t)?);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "LambdaLr state: unexpected entry `sched/{k}`"
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.epochs = epochs;
        Ok(())
    }
}
