//! `do`: causal intervention. The intervened site is split in two: the original draw keeps its
//! name; the value downstream code sees is the intervention, recorded under `name__CF` and not
//! scored.

use std::rc::Rc;

use super::condition::Data;
use super::runtime::{apply_stack, Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

/// Intervenes on the sample sites named in the data.
#[derive(Clone, Default)]
pub struct DoMessenger {
    data: Rc<Data>,
}

impl DoMessenger {
    /// Intervenes with `data`.
    pub fn new(data: Rc<Data>) -> Self {
        DoMessenger { data }
    }
}

impl Messenger for DoMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.infer.do_not_score {
            return Ok(());
        }
        let Some(intervention) = self.data.get(&msg.name) else {
            return Ok(());
        };
        // The original node: sent through the whole stack again (this handler is busy and is
        // skipped), outside the plates it already entered.
        let mut original = Msg::sample(
            msg.name.clone(),
            msg.dist()?.clone(),
            msg.value.as_ref().map(|v| v.shallow_clone()),
        );
        original.is_observed = msg.is_observed;
        original.infer = msg.infer.clone();
        apply_stack(&mut original)?;
        msg.name.push_str("__CF");
        msg.value = Some(intervention.shallow_clone());
        msg.is_observed = false;
        msg.infer.do_not_score = true;
        Ok(())
    }
}

/// Runs `f` with the sites named in `data` set to the given values.
pub fn do_<R>(data: Rc<Data>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    DoMessenger::new(data).run(f)
}
