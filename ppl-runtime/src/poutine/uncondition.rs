//! `uncondition`: observed sites are sampled instead.

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

/// Turns observed sample sites into latent ones: the observation is dropped and a value drawn.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnconditionMessenger;

impl Messenger for UnconditionMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind == SiteKind::Sample && msg.is_observed {
            msg.is_observed = false;
            msg.value = None;
            msg.done = false;
        }
        Ok(())
    }
}

/// Runs `f` with every observation dropped and drawn instead.
pub fn uncondition<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    UnconditionMessenger.run(f)
}
