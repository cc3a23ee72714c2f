//! The machinery every built-in optimizer shares: settings and state per param name.
//!
//! Pyro's `PyroOptim` creates one torch optimizer per param tensor, the first time the param is
//! seen, with the settings `optim_args` gives for its name. [`PerParam`] does the same without the
//! objects: one [`Slot`] per name holding that param's settings, its current learning rate (what
//! schedulers and ClippedAdam's decay change, torch's `param_group["lr"]`) and the update rule's
//! state, created at the first step where the param has a gradient (torch's `optimizer.state[p]`).

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::params::deep_copy;

/// An update rule: the arithmetic of one torch optimizer for one param.
pub(crate) trait Rule {
    /// The user-facing settings.
    type Config: Clone;
    /// What the rule keeps between steps for one param.
    type State;
    /// Short name used in error messages.
    const NAME: &'static str;

    /// The learning rate a param starts with.
    fn lr(config: &Self::Config) -> f64;

    /// Runs each time the param is passed to `step`, gradient or not, before the update
    /// (ClippedAdam decays its learning rate here).
    fn before_step(_config: &Self::Config, _lr: &mut f64) {}

    /// Fresh state for param `p`.
    fn init(config: &Self::Config, p: &Tensor) -> Result<Self::State>;

    /// One update of `p` from `grad` (the param's own `.grad()`, which the rule may change in place,
    /// as Pyro's ClippedAdam does), under `no_grad`.
    fn update(
        config: &Self::Config,
        lr: f64,
        state: &mut Self::State,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()>;

    /// The state as named tensors (shallow; the caller copies them).
    fn save(state: &Self::State) -> Result<Vec<(&'static str, Tensor)>>;

    /// Rebuilds state from the fields written by [`Rule::save`]; takes the fields it knows out of
    /// `fields` (anything left over is an error).
    fn load(config: &Self::Config, fields: &mut IndexMap<String, Tensor>) -> Result<Self::State>;
}

/// One param's settings, learning rate and state.
pub(crate) struct Slot<R: Rule> {
    pub(crate) config: R::Config,
    pub(crate) lr: f64,
    pub(crate) state: Option<R::State>,
}

/// Gives the settings of a param from its name.
pub(crate) type ConfigFn<C> = Box<dyn Fn(&str) -> C>;

/// Settings and state per param name, in the order the params were first seen.
pub(crate) struct PerParam<R: Rule> {
    config_fn: ConfigFn<R::Config>,
    slots: IndexMap<String, Slot<R>>,
}

/// Prefix of per-param state entries: `param/<name>/<field>`.
const PREFIX: &str = "param/";

impl<R: Rule> PerParam<R> {
    /// Settings from `config_fn(name)`, asked once per name.
    pub(crate) fn new(config_fn: ConfigFn<R::Config>) -> Self {
        PerParam {
            config_fn,
            slots: IndexMap::new(),
        }
    }

    /// One step over `params`.
    pub(crate) fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        let _ng = tch::no_grad_guard();
        for (name, p) in params {
            let slot = match self.slots.get_index_of(name.as_str()) {
                Some(i) => &mut self.slots[i],
                None => {
                    let config = (self.config_fn)(name);
                    let lr = R::lr(&config);
                    self.slots.entry(name.clone()).or_insert(Slot {
                        config,
                        lr,
                        state: None,
                    })
                }
            };
            R::before_step(&slot.config, &mut slot.lr);
            let grad = p.grad();
            if !grad.defined() {
                continue;
            }
            let state = match &mut slot.state {
                Some(s) => s,
                None => slot.state.insert(R::init(&slot.config, p)?),
            };
            let mut p = p.shallow_clone();
            R::update(&slot.config, slot.lr, state, &mut p, grad).map_err(|e| match e {
                Error::Torch(t) => Error::Torch(format!("{} step of param `{name}`: {t}", R::NAME)),
                e => e,
            })?;
        }
        Ok(())
    }

    /// Calls `f(name, &mut lr)` for every param seen so far.
    pub(crate) fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        for (name, slot) in self.slots.iter_mut() {
            f(name, &mut slot.lr);
        }
    }

    /// The settings of `name`.
    pub(crate) fn config(&self, name: &str) -> Option<&R::Config> {
        self.slots.get(name).map(|s| &s.config)
    }

    /// The learning rate `name` started with.
    pub(crate) fn initial_lr(&self, name: &str) -> Option<f64> {
        self.slots.get(name).map(|s| R::lr(&s.config))
    }

    /// The current learning rate of `name`.
    pub(crate) fn lr(&self, name: &str) -> Option<f64> {
        self.slots.get(name).map(|s| s.lr)
    }

    /// `param/<name>/lr` for every slot and `param/<name>/<field>` for its rule state (copies).
    pub(crate) fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            out.push((format!("{PREFIX}{name}/lr"), scalar_f64(slot.lr)));
            if let Some(st) = &slot.state {
                for (field, t) in R::save(st)? {
                    out.push((format!("{PREFIX}{name}/{field}"), deep_copy(&t)?));
                }
            }
        }
        Ok(out)
    }

    /// Replaces all state by `state` (as written by [`PerParam::state`]). Settings come from the
    /// config function, learning rates and rule state from `state`.
    pub(crate) fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let mut by_name: IndexMap<String, IndexMap<String, Tensor>> = IndexMap::new();
        for (key, t) in state {
            let parsed = key
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.rsplit_once('/'));
            let Some((name, field)) = parsed else {
                return Err(Error::Checkpoint(format!(
                    "{} state: unexpected entry `{key}`",
                    R::NAME
                )));
            };
            by_name
                .entry(name.to_string())
                .or_default()
                .insert(field.to_string(), t);
        }
        let mut slots = IndexMap::with_capacity(by_name.len());
        for (name, mut fields) in by_name {
            let config = (self.config_fn)(&name);
            let lr = match fields.shift_remove("lr") {
                Some(t) => read_f64(&t)?,
                None => {
                    return Err(Error::Checkpoint(format!(
                        "{} state of param `{name}`: no learning rate",
                        R::NAME
                    )))
                }
            };
            let state = if fields.is_empty() {
                None
            } else {
                let st = R::load(&config, &mut fields).map_err(|e| {
                    Error::Checkpoint(format!("{} state of param `{name}`: {e}", R::NAME))
                })?;
                if let Some(extra) = fields.keys().next() {
                    return Err(Error::Checkpoint(format!(
                        "{} state of param `{name}`: unexpected field `{extra}` (saved by another \
                         optimizer or other settings?)",
                        R::NAME
                    )));
                }
                Some(st)
            };
            slots.insert(name, Slot { config, lr, state });
        }
        self.slots = slots;
        Ok(())
    }
}

/// A 0-dim float64 tensor holding `x` exactly.
pub(crate) fn scalar_f64(x: f64) -> Tensor {
    Tensor::from(x)
}

/// A 0-dim int64 tensor holding `x`.
pub(crate) fn scalar_i64(x: i64) -> Tensor {
    Tensor::from(x)
}

/// The number in a one-element tensor, as f64.
pub(crate) fn read_f64(t: &Tensor) -> Result<f64> {
    if t.numel() != 1 {
        return Err(Error::Checkpoint(format!(
            "expected a scalar, found shape {:?}",
            t.size()
        )));
    }
    Ok(t.f_to_kind(Kind::Double)?.f_double_value(&[])?)
}

/// The number in a one-element integer tensor.
pub(crate) fn read_i64(t: &Tensor) -> Result<i64> {
    if t.numel() != 1 {
        return Err(Error::Checkpoint(format!(
            "expected a scalar, found shape {:?}",
            t.size()
        )));
    }
    Ok(t.f_to_kind(Kind::Int64)?.f_int64_value(&[])?)
}

/// Takes the field `name` out of `fields`, or says it is missing.
pub(crate) fn take(fields: &mut IndexMap<String, Tensor>, name: &str) -> Result<Tensor> {
    fields
        .shift_remove(name)
        .ok_or_else(|| Error::Checkpoint(format!("missing field `{name}`")))
}

/// Takes the step count `step` out of `fields`.
pub(crate) fn take_step(fields: &mut IndexMap<String, Tensor>) -> Result<i64> {
    read_i64(&take(fields, "step")?)
}

/// Defines a public optimizer type over a [`Rule`]: constructors with one config or a config per
/// param name, and the `Optimizer` / `LrScheduled` impls.
macro_rules! per_param_optimizer {
    ($(#[$meta:meta])* $name:ident, $rule:ty, $config:ty) => {
        $(#[$meta])*
        pub struct $name {
            inner: $crate::optim::per_param::PerParam<$rule>,
        }

        impl $name {
            /// The optimizer with the same settings for every param.
            pub fn new(config: $config) -> Self {
                Self::per_param(move |_: &str| config.clone())
            }

            /// The optimizer with settings per param: `f(name)` gives the settings of the param
            /// called `name`; it is asked once, when the optimizer first sees that param (Pyro's
            /// callable `optim_args`, e.g. a larger learning rate for baseline params).
            pub fn per_param(f: impl Fn(&str) -> $config + 'static) -> Self {
                $name {
                    inner: $crate::optim::per_param::PerParam::new(Box::new(f)),
                }
            }

            /// The settings of param `name`, once the optimizer has seen it (its learning rate
            /// as configured; the current one is [`LrScheduled::lr`](crate::optim::LrScheduled::lr)).
            pub fn config(&self, name: &str) -> Option<&$config> {
                self.inner.config(name)
            }
        }

        impl Default for $name {
            /// The optimizer with torch's default settings for every param.
            fn default() -> Self {
                Self::new(<$config>::default())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl $crate::optim::Optimizer for $name {
            fn step(&mut self, params: &[(String, tch::Tensor)]) -> $crate::Result<()> {
                self.inner.step(params)
            }

            fn state(&self) -> $crate::Result<Vec<(String, tch::Tensor)>> {
                self.inner.state()
            }

            fn load_state(&mut self, state: Vec<(String, tch::Tensor)>) -> $crate::Result<()> {
                self.inner.load_state(state)
            }
        }

        impl $crate::optim::LrScheduled for $name {
            fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
                self.inner.for_each_lr(f)
            }

            fn lr(&self, name: &str) -> Option<f64> {
                self.inner.lr(name)
            }

            fn initial_lr(&self, name: &str) -> Option<f64> {
                self.inner.initial_lr(name)
            }
        }
    };
}

pub(crate) use per_param_optimizer;
