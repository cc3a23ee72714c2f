//! The interface between optimizers and learning-rate schedulers.

use tch::Tensor;

use crate::error::{Error, Result};

/// An optimizer whose per-param learning rates a scheduler can read and change (torch's
/// `param_group["lr"]`; each param has its own, as with Pyro's one optimizer per param).
///
/// A param's rate starts at the `lr` of its settings when the optimizer first sees it; params
/// seen later start fresh, unaffected by earlier scheduler steps, as in Pyro.
pub trait LrScheduled {
    /// Calls `f(name, &mut lr)` for the current learning rate of every param seen so far, in the
    /// order they were first seen.
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64));

    /// The current learning rate of param `name`, if the optimizer has seen it.
    fn lr(&self, name: &str) -> Option<f64>;

    /// The learning rate param `name` started with (torch's `initial_lr`, what schedulers such as
    /// [`CosineAnnealingLr`](super::CosineAnnealingLr) call `base_lr`), if the optimizer has seen
    /// it.
    fn initial_lr(&self, name: &str) -> Option<f64>;
}

/// A learning-rate scheduler (Pyro's `PyroLRScheduler`).
pub trait LrScheduler {
    /// One scheduler step, usually once per epoch (Pyro's `scheduler.step()`). `metric` is the
    /// quantity [`ReduceLrOnPlateau`](super::ReduceLrOnPlateau) watches (e.g. the epoch's loss);
    /// the other schedulers ignore it.
    fn scheduler_step(&mut self, metric: Option<f64>) -> Result<()>;
}

impl<O: LrScheduled + ?Sized> LrScheduled for Box<O> {
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        (**self).for_each_lr(f)
    }

    fn lr(&self, name: &str) -> Option<f64> {
        (**self).lr(name)
    }

    fn initial_lr(&self, name: &str) -> Option<f64> {
        (**self).initial_lr(name)
    }
}

impl<O: LrScheduler + ?Sized> LrScheduler for Box<O> {
    fn scheduler_step(&mut self, metric: Option<f64>) -> Result<()> {
        (**self).scheduler_step(metric)
    }
}

impl<O: LrScheduled + ?Sized> LrScheduled for &mut O {
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        (**self).for_each_lr(f)
    }

    fn lr(&self, name: &str) -> Option<f64> {
        (**self).lr(name)
    }

    fn initial_lr(&self, name: &str) -> Option<f64> {
        (**self).initial_lr(name)
    }
}

impl<O: LrScheduler + ?Sized> LrScheduler for &mut O {
    fn scheduler_step(&mut self, metric: Option<f64>) -> Result<()> {
        (**self).scheduler_step(metric)
    }
}

/// Prefix of a wrapper's own state entries.
pub(crate) const OWN: &str = "sched/";
/// Prefix of the wrapped optimizer's state entries.
pub(crate) const INNER: &str = "inner/";

/// Prefixes the inner optimizer's entries with `inner/`.
pub(crate) fn wrap_inner(inner: Vec<(String, Tensor)>, out: &mut Vec<(String, Tensor)>) {
    out.extend(inner.into_iter().map(|(k, t)| (format!("{INNER}{k}"), t)));
}

/// Splits a wrapper's state into its own entries (prefix `sched/` removed) and its inner
/// optimizer's (prefix `inner/` removed).
#[allow(clippy::type_complexity)]
pub(crate) fn split_state(
    what: &str,
    state: Vec<(String, Tensor)>,
) -> Result<(Vec<(String, Tensor)>, Vec<(String, Tensor)>)> {
    let mut own = Vec::new();
    let mut inner = Vec::new();
    for (k, t) in state {
        if let Some(rest) = k.strip_prefix(OWN) {
            own.push((rest.to_string(), t));
        } else if let Some(rest) = k.strip_prefix(INNER) {
            inner.push((rest.to_string(), t));
        } else {
            return Err(Error::Checkpoint(format!(
                "{what} state: unexpected entry `{k}` (saved from an optimizer without {what}?)"
            )));
        }
    }
    Ok((own, inner))
}

/// Splits `<param name>/<field>`.
pub(crate) fn split_field<'a>(what: &str, key: &'a str) -> Result<(&'a str, &'a str)> {
    key.rsplit_once('/')
        .ok_or_else(|| Error::Checkpoint(format!("{what} state: unexpected entry `sched/{key}`")))
}
