//! Learning-rate schedulers that count scheduler steps per param: one generic wrapper,
//! [`EpochScheduler`], and one rule per torch scheduler ([`StepLr`], [`MultiStepLr`],
//! [`ExponentialLr`], [`CosineAnnealingLr`], [`LambdaLr`]).
//!
//! Like Pyro's one scheduler per param, each param counts its own scheduler steps from when it
//! first appeared; at its `k`-th step the rule maps its current rate (and its initial rate) to
//! the new one.

use indexmap::IndexMap;
use tch::Tensor;

use super::lr::{split_field, split_state, wrap_inner, LrScheduled, LrScheduler};
use super::per_param::{read_i64, scalar_i64};
use super::Optimizer;
use crate::error::{Error, Result};

/// What a scheduler does to one param's learning rate at that param's `k`-th scheduler step.
pub trait EpochRule {
    /// The scheduler's name, for messages.
    const NAME: &'static str;
    /// Updates `lr` at scheduler step `k` (1-based); `initial` is the param's initial rate.
    fn apply(&self, k: i64, initial: f64, lr: &mut f64);
}

/// An optimizer whose per-param learning rates follow `R` at each
/// [`LrScheduler::scheduler_step`]. Use it through the aliases ([`StepLr`], ...).
#[derive(Debug)]
pub struct EpochScheduler<O, R> {
    optim: O,
    rule: R,
    epochs: IndexMap<String, i64>,
}

impl<O: LrScheduled, R: EpochRule> EpochScheduler<O, R> {
    /// Schedules the learning rates of `optim` with `rule`.
    pub fn with_rule(optim: O, rule: R) -> Self {
        EpochScheduler {
            optim,
            rule,
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

impl<O: LrScheduled, R: EpochRule> LrScheduler for EpochScheduler<O, R> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> Result<()> {
        // The initial rates first: `for_each_lr` holds the optimizer mutably.
        let mut names: Vec<String> = Vec::new();
        self.optim
            .for_each_lr(&mut |name, _| names.push(name.to_string()));
        let initial: Vec<Option<f64>> = names.iter().map(|n| self.optim.initial_lr(n)).collect();
        let (epochs, rule) = (&mut self.epochs, &self.rule);
        let mut i = 0;
        self.optim.for_each_lr(&mut |name, lr| {
            let base = initial.get(i).copied().flatten().unwrap_or(*lr);
            i += 1;
            let k = match epochs.get_index_of(name) {
                Some(j) => &mut epochs[j],
                None => epochs.entry(name.to_string()).or_insert(0),
            };
            *k += 1;
            rule.apply(*k, base, lr);
        });
        Ok(())
    }
}

impl<O: LrScheduled, R> LrScheduled for EpochScheduler<O, R> {
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

impl<O: Optimizer + LrScheduled, R: EpochRule> Optimizer for EpochScheduler<O, R> {
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
        let (own, inner) = split_state(R::NAME, state)?;
        let mut epochs = IndexMap::new();
        for (k, t) in own {
            match split_field(R::NAME, &k)? {
                (name, "epoch") => {
                    epochs.insert(name.to_string(), read_i64(&t)?);
                }
                _ => {
                    return Err(Error::Checkpoint(format!(
                        "{} state: unexpected entry `sched/{k}`",
                        R::NAME
                    )))
                }
            }
        }
        self.optim.load_state(inner)?;
        self.epochs = epochs;
        Ok(())
    }
}

/// The rule of [`StepLr`].
#[derive(Clone, Copy, Debug)]
pub struct StepRule {
    step_size: i64,
    gamma: f64,
}

impl EpochRule for StepRule {
    const NAME: &'static str = "StepLr";
    fn apply(&self, k: i64, _initial: f64, lr: &mut f64) {
        if k % self.step_size == 0 {
            *lr *= self.gamma;
        }
    }
}

/// Multiplies a param's learning rate by `gamma` every `step_size` scheduler steps (torch's
/// `StepLR`; Pyro's `pyro.optim.StepLR`).
pub type StepLr<O> = EpochScheduler<O, StepRule>;

impl<O: LrScheduled> EpochScheduler<O, StepRule> {
    /// Decays the learning rates of `optim` by `gamma` every `step_size` scheduler steps
    /// (torch's default `gamma` is `0.1`). Errors if `step_size < 1`.
    pub fn new(optim: O, step_size: i64, gamma: f64) -> Result<Self> {
        if step_size < 1 {
            return Err(Error::Config(format!(
                "StepLr: step_size must be at least 1, got {step_size}"
            )));
        }
        Ok(Self::with_rule(optim, StepRule { step_size, gamma }))
    }
}

/// The rule of [`MultiStepLr`].
#[derive(Clone, Debug)]
pub struct MultiStepRule {
    milestones: Vec<i64>,
    gamma: f64,
}

impl EpochRule for MultiStepRule {
    const NAME: &'static str = "MultiStepLr";
    fn apply(&self, k: i64, _initial: f64, lr: &mut f64) {
        let hits = self.milestones.iter().filter(|&&m| m == k).count();
        if hits > 0 {
            *lr *= self.gamma.powf(hits as f64);
        }
    }
}

/// Multiplies a param's learning rate by `gamma` when its scheduler-step count reaches each of
/// `milestones` (by `gamma^k` for a milestone listed `k` times), as torch's `MultiStepLR`
/// (Pyro's `pyro.optim.MultiStepLR`).
pub type MultiStepLr<O> = EpochScheduler<O, MultiStepRule>;

impl<O: LrScheduled> EpochScheduler<O, MultiStepRule> {
    /// Decays the learning rates of `optim` by `gamma` at each of `milestones` (torch's default
    /// `gamma` is `0.1`).
    pub fn new(optim: O, milestones: &[i64], gamma: f64) -> Self {
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Self::with_rule(optim, MultiStepRule { milestones, gamma })
    }
}

/// The rule of [`ExponentialLr`].
#[derive(Clone, Copy, Debug)]
pub struct ExponentialRule {
    gamma: f64,
}

impl EpochRule for ExponentialRule {
    const NAME: &'static str = "ExponentialLr";
    fn apply(&self, _k: i64, _initial: f64, lr: &mut f64) {
        *lr *= self.gamma;
    }
}

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
pub type ExponentialLr<O> = EpochScheduler<O, ExponentialRule>;

impl<O: LrScheduled> EpochScheduler<O, ExponentialRule> {
    /// Decays the learning rates of `optim` by `gamma` per scheduler step.
    pub fn new(optim: O, gamma: f64) -> Self {
        Self::with_rule(optim, ExponentialRule { gamma })
    }
}

/// The rule of [`CosineAnnealingLr`].
#[derive(Clone, Copy, Debug)]
pub struct CosineRule {
    t_max: i64,
    eta_min: f64,
}

impl EpochRule for CosineRule {
    const NAME: &'static str = "CosineAnnealingLr";
    fn apply(&self, k: i64, initial: f64, lr: &mut f64) {
        let (t_max, eta_min) = (self.t_max, self.eta_min);
        let (e, t, pi) = (k as f64, t_max as f64, std::f64::consts::PI);
        *lr = if (k - 1 - t_max).rem_euclid(2 * t_max) == 0 {
            *lr + (initial - eta_min) * (1.0 - (pi / t).cos()) / 2.0
        } else {
            (1.0 + (pi * e / t).cos()) / (1.0 + (pi * (e - 1.0) / t).cos()) * (*lr - eta_min)
                + eta_min
        };
    }
}

/// Anneals a param's learning rate from its initial value down to `eta_min` along half a cosine
/// over `t_max` scheduler steps, then back up over the next `t_max`, and so on (torch's
/// `CosineAnnealingLR` with its recursive arithmetic; Pyro's `pyro.optim.CosineAnnealingLR`).
pub type CosineAnnealingLr<O> = EpochScheduler<O, CosineRule>;

impl<O: LrScheduled> EpochScheduler<O, CosineRule> {
    /// Anneals the learning rates of `optim` with period `2 * t_max` scheduler steps down to
    /// `eta_min` (torch's default is `0`). Errors if `t_max < 1`.
    pub fn new(optim: O, t_max: i64, eta_min: f64) -> Result<Self> {
        if t_max < 1 {
            return Err(Error::Config(format!(
                "CosineAnnealingLr: t_max must be at least 1, got {t_max}"
            )));
        }
        Ok(Self::with_rule(optim, CosineRule { t_max, eta_min }))
    }
}

/// The rule of [`LambdaLr`].
pub struct LambdaRule<F>(F);

impl<F> std::fmt::Debug for LambdaRule<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LambdaRule(..)")
    }
}

impl<F: Fn(i64) -> f64> EpochRule for LambdaRule<F> {
    const NAME: &'static str = "LambdaLr";
    fn apply(&self, k: i64, initial: f64, lr: &mut f64) {
        *lr = initial * (self.0)(k);
    }
}

/// Sets a param's learning rate to its initial rate times `lambda(k)` at its `k`-th scheduler
/// step (torch's `LambdaLR`; Pyro's `pyro.optim.LambdaLR`).
///
/// One difference: torch also applies `lambda(0)` when the scheduler is created, before the first
/// optimizer step; here a param runs at its initial rate until the first scheduler step. With
/// `lambda(0) == 1` (as for decays like `|k| 0.95f64.powi(k as i32)`) the two are the same.
pub type LambdaLr<O, F> = EpochScheduler<O, LambdaRule<F>>;

impl<O: LrScheduled, F: Fn(i64) -> f64> EpochScheduler<O, LambdaRule<F>> {
    /// Scales the initial learning rates of `optim` by `lambda(k)` at scheduler step `k`.
    pub fn new(optim: O, lambda: F) -> Self {
        Self::with_rule(optim, LambdaRule(lambda))
    }
}
