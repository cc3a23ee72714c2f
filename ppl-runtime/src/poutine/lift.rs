//! `lift`: param sites become sample sites drawn from a prior.

use std::collections::HashMap;
use std::rc::Rc;

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::distributions::DistRef;
use crate::error::Result;

/// Priors by param name.
pub type Priors = HashMap<String, DistRef>;

/// Turns the named param sites into sample sites with the given priors.
#[derive(Clone, Default)]
pub struct LiftMessenger {
    priors: Rc<Priors>,
    all: Option<DistRef>,
}

impl LiftMessenger {
    /// Lifts the params named in `priors`.
    pub fn new(priors: Priors) -> Self {
        LiftMessenger {
            priors: Rc::new(priors),
            all: None,
        }
    }
    /// Lifts every param with the same prior (expanded to each param's shape by the caller).
    pub fn all(prior: DistRef) -> Self {
        LiftMessenger {
            priors: Rc::default(),
            all: Some(prior),
        }
    }
}

impl Messenger for LiftMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Param {
            return Ok(());
        }
        let prior = self.priors.get(&msg.name).or(self.all.as_ref());
        if let Some(prior) = prior {
            let prior = fit_to_param(prior, msg)?;
            msg.kind = SiteKind::Sample;
            msg.dist = Some(prior);
            msg.param = None;
            msg.is_observed = false;
            msg.infer = Default::default();
        }
        Ok(())
    }
}

/// A prior of one value (no batch or event dims) expanded to the param's shape, every dim an
/// event dim (so a `Normal(0, 1)` prior lifts a `[50, 1]` weight as one site of that shape);
/// other priors as they are.
fn fit_to_param(prior: &DistRef, msg: &Msg) -> Result<DistRef> {
    if !prior.batch_shape().is_empty() || !prior.event_shape().is_empty() {
        return Ok(prior.clone());
    }
    let shape = match msg.param.as_ref().and_then(|p| p.init.as_ref()) {
        Some(init) => Some(init.size()),
        None => crate::params::with_param_store(|ps| ps.get(&msg.name).ok().map(|t| t.size())),
    };
    match shape {
        Some(shape) if !shape.is_empty() => Ok(Rc::new(crate::distributions::Independent::new(
            prior.expand(&shape)?,
            shape.len(),
        )?)),
        _ => Ok(prior.clone()),
    }
}

/// Runs `f` with the named params drawn from their priors.
pub fn lift<R>(priors: Priors, f: impl FnOnce() -> Result<R>) -> Result<R> {
    LiftMessenger::new(priors).run(f)
}
