//! `replay`: latent sample sites take their values (and `infer` settings) from a recorded trace,
//! typically the guide's; observed sites keep their observations.

use std::rc::Rc;

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use super::trace_struct::Trace;
use crate::error::{Error, Result};

/// Replays the values of a recorded trace at the sample sites of the same name.
#[derive(Clone, Default)]
pub struct ReplayMessenger {
    trace: Rc<Trace>,
}

impl ReplayMessenger {
    /// Replays `trace`.
    pub fn new(trace: impl Into<Rc<Trace>>) -> Self {
        ReplayMessenger {
            trace: trace.into(),
        }
    }
}

impl Messenger for ReplayMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample {
            return Ok(());
        }
        if msg.is_observed {
            return Ok(());
        }
        if let Some(site) = self.trace.get(&msg.name) {
            if site.kind != SiteKind::Sample || site.is_observed {
                return Err(Error::ModelGuideMismatch {
                    site: msg.name.clone(),
                    message: "is latent here but observed (or a param) in the replayed trace"
                        .into(),
                });
            }
            msg.value = Some(site.value.shallow_clone());
            // The guide's settings, but the model's own markov scope.
            let markov = msg.infer.markov.take();
            msg.infer = site.infer.clone();
            msg.infer.markov = markov;
            msg.done = true;
        }
        Ok(())
    }
}

/// Runs `f` with its sample sites replayed from `trace`.
pub fn replay<R>(trace: impl Into<Rc<Trace>>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ReplayMessenger::new(trace).run(f)
}
