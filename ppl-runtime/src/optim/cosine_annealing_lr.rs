//! Cosine annealing of the learning rate (`torch.optim.lr_scheduler.CosineAnnealingLR`).

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_i64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// Anneals a param's learning rate from its initial value down to `eta_min` along half a cosine
/// over `t_max` scheduler steps, then back up over the next `t_max`, and so on (torch's
/// `CosineAnnealingLR` with its recursive arithmetic; Pyro's `pyro.optim.CosineAnnealingLR`).
/// Each param counts its own scheduler steps from when it first appeared, as Pyro's one
/// scheduler per param does.
#[derive(Debug)]
pub struct CosineAnnealingLr<O> {
    optim: O,
    t_max: i64,
    eta_min: f64,
    epochs: IndexMap<String, i64>,
}

impl<O: LrScheduled> CosineAnnealingLr<O> {
    /// Anneals the learning rates of `optim` with period `2 * t_max` scheduler steps down to
    /// `eta_min` (torch's default is `0`). Errors if `t_max < 1`.
    pub fn new(optim: O, t_max: i64, eta_min: f64) -> Result<Self> {
        if t_max < 1 {
            return Err(Error::Invalid(format!(
                "CosineAnnealingLr: t_max must be at least 1, got {t_max}"
            )));
        }
        Ok(CosineAnnealingLr {
            optim,
            t_max,
            eta_min,
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

impl<O: LrScheduled> LrScheduler for CosineAnnealingLr<O> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        let (t_max, eta_min) = (self.t_max, self.eta_min);
        // The initial rates first: `for_each_lr` holds the optimizer mutably.
        let mut names: Vec<String> = Vec::new();
        self.optim
            .for_each_lr(&mut |name, _| names.push(name.to_string()));
        let bases: Vec<Option<f64>> = names.iter().map(|n| self.optim.initial_lr(n)).collect();
        let epochs = &mut self.epochs;
        let mut i = 0;
        self.optim.for_each_lr(&mut |name, lr| {
            let base = bases.get(i).copied().flatten().unwrap_or(*lr);
            i += 1;
            let k = match epochs.get_index_of(name) {
                Some(j) => &mut epochs[j],
                None => epochs.entry(name.to_string()).or_insert(0),
            };
            *k += 1;
            let (e, t, pi) = (*k as f64, t_max as f64, std::f64::consts::PI);
            *lr = if (*k - 1 - t_max).rem_euclid(2 * t_max) == 0 {
                *lr + (base - eta_min) * (1.0 - (pi / t).cos()) / 2.0
            } else {
                (1.0 + (pi * e / t).cos()) / (1.0 + (pi * (e - 1.0) / t).cos()) * (*lr - eta_min)
                    + eta_min
            };
        });
        Ok(())
    }
}

impl<O: LrScheduled> LrScheduled for CosineAnnealingLr<O> {
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

impl<O: Optimizer + LrScheduled> Optimizer for CosineAnnealingLr<O> {
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
        let (own, inner) = split_state("CosineAnnealingLr", state)?;
        let mut epochs = IndexMap::new();
        for (k, t) in own {
            match split_field("CosineAnnealingLr", &k)? {
                (name, "epoch") => {
                    epochs.insert(name.to_string(), read_i64(&t)?);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "CosineAnnealingLr state: unexpected entry `sched/{k}`"
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.epochs = epochs;
        Ok(())
    }
}
