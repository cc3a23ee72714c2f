//! Learning-rate reduction when a metric stops improving
//! (`torch.optim.lr_scheduler.ReduceLROnPlateau`).

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_f64, read_i64, scalar_f64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// Whether smaller or larger values of the metric are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy, an ELBO).
    Max,
}

/// How `threshold` defines a significant improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better than `best * (1 ∓ threshold)`.
    Rel,
    /// Better than `best ∓ threshold`.
    Abs,
}

/// Settings of [`ReduceLrOnPlateau`]; the defaults are torch's.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateauConfig {
    /// Whether the metric should go down or up (default [`PlateauMode::Min`]).
    pub mode: PlateauMode,
    /// A reduction multiplies the learning rate by `factor` (default `0.1`; must be `< 1`).
    pub factor: f64,
    /// Number of scheduler steps without improvement tolerated; the rate is reduced at the next
    /// one (default `10`).
    pub patience: i64,
    /// Minimum change that counts as an improvement (default `1e-4`).
    pub threshold: f64,
    /// Relative or absolute `threshold` (default [`ThresholdMode::Rel`]).
    pub threshold_mode: ThresholdMode,
    /// Scheduler steps after a reduction during which bad steps are not counted (default `0`).
    pub cooldown: i64,
    /// Lower bound of the learning rate (default `0`).
    pub min_lr: f64,
    /// A reduction smaller than `eps` is skipped (default `1e-8`).
    pub eps: f64,
}

impl Default for ReduceLrOnPlateauConfig {
    fn default() -> Self {
        ReduceLrOnPlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// One param's plateau tracker (torch's `best`, `num_bad_epochs`, `cooldown_counter`).
#[derive(Clone, Debug)]
struct Tracker {
    best: f64,
    num_bad_epochs: i64,
    cooldown_counter: i64,
}

/// Reduces a param's learning rate by `factor` once the metric passed to
/// [`LrScheduler::scheduler_step`] has not improved for more than `patience` steps (torch's
/// `ReduceLROnPlateau`; Pyro's `pyro.optim.ReduceLROnPlateau`). As with Pyro's one scheduler per
/// param, each param tracks the metric from the first scheduler step after it appeared.
#[derive(Debug)]
pub struct ReduceLrOnPlateau<O> {
    optim: O,
    config: ReduceLrOnPlateauConfig,
    trackers: IndexMap<String, Tracker>,
}

impl<O: LrScheduled> ReduceLrOnPlateau<O> {
    /// Watches the metric for `optim`. Errors if `factor >= 1`.
    pub fn new(optim: O, config: ReduceLrOnPlateauConfig) -> Result<Self> {
        if config.factor >= 1.0 {
            return Err(Error::Config(format!(
                "ReduceLrOnPlateau: factor must be < 1, got {}",
                config.factor
            )));
        }
        Ok(ReduceLrOnPlateau {
            optim,
            config,
            trackers: IndexMap::new(),
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

    fn fresh(&self) -> Tracker {
        Tracker {
            best: match self.config.mode {
                PlateauMode::Min => f64::INFINITY,
                PlateauMode::Max => f64::NEG_INFINITY,
            },
            num_bad_epochs: 0,
            cooldown_counter: 0,
        }
    }
}

fn is_better(c: &ReduceLrOnPlateauConfig, a: f64, best: f64) -> bool {
    match (c.mode, c.threshold_mode) {
        (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - c.threshold),
        (PlateauMode::Min, ThresholdMode::Abs) => a < best - c.threshold,
        (PlateauMode::Max, ThresholdMode::Rel) => a > best * (c.threshold + 1.0),
        (PlateauMode::Max, ThresholdMode::Abs) => a > best + c.threshold,
    }
}

impl<O: LrScheduled> LrScheduler for ReduceLrOnPlateau<O> {
    fn scheduler_step(&mut self, metric: Option<f64>) -> Result<()> {
        let current = metric.ok_or_else(|| {
            Error::Config("ReduceLrOnPlateau::scheduler_step needs the metric".into())
        })?;
        let fresh = self.fresh();
        let c = &self.config;
        let trackers = &mut self.trackers;
        self.optim.for_each_lr(&mut |name, lr| {
            let t = match trackers.get_index_of(name) {
                Some(i) => &mut trackers[i],
                None => trackers.entry(name.to_string()).or_insert(fresh.clone()),
            };
            if is_better(c, current, t.best) {
                t.best = current;
                t.num_bad_epochs = 0;
            } else {
                t.num_bad_epochs += 1;
            }
            if t.cooldown_counter > 0 {
                t.cooldown_counter -= 1;
                t.num_bad_epochs = 0;
            }
            if t.num_bad_epochs > c.patience {
                let new_lr = (*lr * c.factor).max(c.min_lr);
                if *lr - new_lr > c.eps {
                    *lr = new_lr;
                }
                t.cooldown_counter = c.cooldown;
                t.num_bad_epochs = 0;
            }
        });
        Ok(())
    }
}

impl<O: LrScheduled> LrScheduled for ReduceLrOnPlateau<O> {
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

impl<O: Optimizer + LrScheduled> Optimizer for ReduceLrOnPlateau<O> {
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        self.optim.step(params)
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(3 * self.trackers.len());
        for (name, t) in &self.trackers {
            out.push((format!("sched/{name}/best"), scalar_f64(t.best)));
            out.push((
                format!("sched/{name}/num_bad_epochs"),
                scalar_i64(t.num_bad_epochs),
            ));
            out.push((
                format!("sched/{name}/cooldown_counter"),
                scalar_i64(t.cooldown_counter),
            ));
        }
        wrap_inner(self.optim.state()?, &mut out);
        Ok(out)
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let (own, inner) = split_state("ReduceLrOnPlateau", state)?;
        let mut trackers: IndexMap<String, Tracker> = IndexMap::new();
        for (k, t) in own {
            let (name, field) = split_field("ReduceLrOnPlateau", &k)?;
            let fresh = self.fresh();
            let tr = trackers.entry(name.to_string()).or_insert(fresh);
            match field {
                "best" => tr.best = read_f64(&t)?,
                "num_bad_epochs" => tr.num_bad_epochs = read_i64(&t)?,
                "cooldown_counter" => tr.cooldown_counter = read_i64(&t)?,
                _ => {
                    return Err(Error::Checkpoint(format!(
                        "ReduceLrOnPlateau state: unexpected entry `sched/{k}`"
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.trackers = trackers;
        Ok(())
    }
}
