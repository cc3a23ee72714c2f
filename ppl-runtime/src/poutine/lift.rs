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
            msg.kind = SiteKind::Sample;
            msg.dist = Some(prior.clone());
            msg.param = None;
            msg.is_observed = false;
            msg.infer = Default::default();
        }
        Ok(())
    }
}

/// Runs `f` with the named params drawn from their priors.
pub fn lift<R>(priors: Priors, f: impl FnOnce() -> Result<R>) -> Result<R> {
    LiftMessenger::new(priors).run(f)
}
