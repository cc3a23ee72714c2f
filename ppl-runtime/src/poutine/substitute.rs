//! `substitute`: param sites take given values instead of the param store's.

use std::rc::Rc;

use super::condition::Data;
use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

/// Replaces the values of the param sites named in the data.
#[derive(Clone, Default)]
pub struct SubstituteMessenger {
    data: Rc<Data>,
}

impl SubstituteMessenger {
    /// Substitutes `data`.
    pub fn new(data: Rc<Data>) -> Self {
        SubstituteMessenger { data }
    }
}

impl Messenger for SubstituteMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind == SiteKind::Param {
            if let Some(v) = self.data.get(&msg.name) {
                msg.value = Some(v.shallow_clone());
                msg.done = true;
            }
        }
        Ok(())
    }
}

/// Runs `f` with the named params replaced by the given values.
pub fn substitute<R>(data: Rc<Data>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    SubstituteMessenger::new(data).run(f)
}
