//! Initialization strategies for autoguides (Pyro's `pyro.infer.autoguide.initialization`).
//!
//! An init strategy maps a latent sample site (its name and distribution) to an initial
//! *constrained* value. Autoguides run the model once under [`InitMessenger`], so that each
//! latent takes its initial value and later sites see it (a child's `init_to_median` is the
//! median given its parents' initial values).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use tch::{Kind, Tensor};

use crate::distributions::Distribution;
use crate::error::{Error, Result, ResultExt};
use crate::poutine::{Messenger, Msg, SiteKind};
use crate::transforms::biject_to;

type InitFn = dyn Fn(&str, &dyn Distribution) -> Result<Tensor>;

/// An init strategy: `(site name, site distribution) -> initial constrained value`.
///
/// Build one with [`init_to_median`], [`init_to_mean`], [`init_to_sample`], [`init_to_uniform`],
/// [`init_to_feasible`], [`init_to_value`], or [`InitLocFn::new`] for a custom rule.
#[derive(Clone)]
pub struct InitLocFn(Rc<InitFn>);

impl fmt::Debug for InitLocFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitLocFn(..)")
    }
}

impl InitLocFn {
    /// A custom strategy.
    pub fn new(f: impl Fn(&str, &dyn Distribution) -> Result<Tensor> + 'static) -> Self {
        InitLocFn(Rc::new(f))
    }

    /// The initial value of site `name` with distribution `dist`.
    pub fn init(&self, name: &str, dist: &dyn Distribution) -> Result<Tensor> {
        let v = (self.0)(name, dist).at_site(name)?;
        Ok(v.f_detach()?)
    }
}

/// The shape of one draw of `dist`.
fn draw_shape(dist: &dyn Distribution) -> Vec<i64> {
    let mut s = dist.batch_shape().to_vec();
    s.extend_from_slice(dist.event_shape());
    s
}

/// The point `biject_to(support)(u)` for `u` uniform in `(-radius, radius)` (unconstrained).
fn unconstrained_uniform(dist: &dyn Distribution, radius: f64) -> Result<Tensor> {
    let t = biject_to(&dist.support())?;
    let shape = t.inverse_shape(&draw_shape(dist));
    let proto = tch::no_grad(|| dist.sample(&[]))?;
    let kind = if crate::distributions::is_float(proto.kind()) {
        proto.kind()
    } else {
        Kind::Float
    };
    let u = Tensor::f_rand(shape.as_slice(), (kind, proto.device()))?
        .f_mul_scalar(2.0 * radius)?
        .f_sub_scalar(radius)?;
    t.forward(&u)
}

/// Initializes at the point `biject_to(support)(0)` of unconstrained space (Pyro's
/// `init_to_feasible`; the default of [`super::AutoNormal`]).
pub fn init_to_feasible() -> InitLocFn {
    InitLocFn::new(|_, d| unconstrained_uniform(d, 0.0))
}

/// Initializes uniformly in `(-2, 2)` in unconstrained space (Pyro's `init_to_uniform`).
pub fn init_to_uniform() -> InitLocFn {
    init_to_uniform_radius(2.0)
}

/// Initializes uniformly in `(-radius, radius)` in unconstrained space.
pub fn init_to_uniform_radius(radius: f64) -> InitLocFn {
    InitLocFn::new(move |_, d| unconstrained_uniform(d, radius))
}

/// Initializes at a draw from the prior (Pyro's `init_to_sample`).
pub fn init_to_sample() -> InitLocFn {
    InitLocFn::new(|_, d| tch::no_grad(|| d.sample(&[])))
}

/// Initializes at the prior median, estimated from 15 draws (Pyro's `init_to_median`; the
/// default of [`super::AutoDelta`] and the flat-vector guides). Falls back to
/// [`init_to_feasible`] where sampling fails or the estimate is not finite.
pub fn init_to_median() -> InitLocFn {
    init_to_median_samples(15)
}

/// [`init_to_median`] with `num_samples` draws.
pub fn init_to_median_samples(num_samples: i64) -> InitLocFn {
    InitLocFn::new(move |_, d| {
        let median = || -> Result<Tensor> {
            let s = tch::no_grad(|| d.sample(&[num_samples.max(1)]))?;
            let s = if crate::distributions::is_float(s.kind()) {
                s
            } else {
                s.f_to_kind(Kind::Float)?
            };
            Ok(s.f_median_dim(0, false)?.0)
        };
        match median() {
            Ok(m) if finite(&m)? && in_support(d, &m)? => Ok(m),
            _ => unconstrained_uniform(d, 0.0),
        }
    })
}

/// Initializes at the prior mean (Pyro's `init_to_mean`); falls back to [`init_to_median`]
/// where the mean is not implemented or not finite.
pub fn init_to_mean() -> InitLocFn {
    let fallback = init_to_median();
    InitLocFn::new(move |name, d| match d.mean() {
        Ok(m) if finite(&m)? && m.size() == draw_shape(d) && in_support(d, &m)? => Ok(m),
        _ => fallback.init(name, d),
    })
}

/// Initializes the named sites at the given constrained values and the others with
/// [`init_to_uniform`] (Pyro's `init_to_value`).
pub fn init_to_value(values: HashMap<String, Tensor>) -> InitLocFn {
    init_to_value_or(values, init_to_uniform())
}

/// [`init_to_value`] with another fallback for the sites not named.
pub fn init_to_value_or(values: HashMap<String, Tensor>, fallback: InitLocFn) -> InitLocFn {
    InitLocFn::new(move |name, d| match values.get(name) {
        Some(v) => {
            let want = draw_shape(d);
            if v.size() == want {
                Ok(v.shallow_clone())
            } else {
                Ok(v.f_expand(want.as_slice(), false)?.f_contiguous()?)
            }
        }
        None => fallback.init(name, d),
    })
}

fn finite(t: &Tensor) -> Result<bool> {
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0)
}

fn in_support(d: &dyn Distribution, v: &Tensor) -> Result<bool> {
    Ok(d.support().check(v)?.f_all()?.f_int64_value(&[])? != 0)
}

/// Sets every latent sample site that reaches it to its initial value (Pyro's
/// `InitMessenger`); observed, subsample and deterministic sites are left alone.
pub struct InitMessenger {
    init: InitLocFn,
}

impl InitMessenger {
    /// A handler initializing latents with `init`.
    pub fn new(init: InitLocFn) -> Self {
        InitMessenger { init }
    }
}

impl Messenger for InitMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample
            || msg.is_observed
            || msg.value.is_some()
            || msg.done
            || msg.infer.is_subsample
            || msg.infer.is_deterministic
        {
            return Ok(());
        }
        let dist = msg.dist()?.clone();
        // Discrete sites (enumerated ones, which autoguides leave to the loss) keep their
        // default draw: init strategies are for continuous values.
        if dist.support().is_discrete() {
            return Ok(());
        }
        let v = self.init.init(&msg.name, &*dist)?;
        let want = draw_shape(&*dist);
        if v.size() != want {
            return Err(Error::Shape(format!(
                "init value of shape {:?}, but the site's draws have shape {want:?}",
                v.size()
            )))
            .at_site(&msg.name);
        }
        msg.value = Some(v);
        msg.done = true;
        Ok(())
    }
}
