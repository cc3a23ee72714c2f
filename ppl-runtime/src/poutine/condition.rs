//! `condition`: sample sites named in the data become observations.

use std::collections::HashMap;
use std::rc::Rc;

use tch::Tensor;

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

/// Site name to value.
pub type Data = HashMap<String, Tensor>;

/// Builds [`Data`] from `(name, tensor)` pairs.
pub fn data<S: Into<String>>(pairs: impl IntoIterator<Item = (S, Tensor)>) -> Rc<Data> {
    Rc::new(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Observes the given values at the sample sites of the same name.
#[derive(Clone, Default)]
pub struct ConditionMessenger {
    data: Rc<Data>,
}

impl ConditionMessenger {
    /// Conditions on `data`.
    pub fn new(data: Rc<Data>) -> Self {
        ConditionMessenger { data }
    }
}

impl Messenger for ConditionMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind == SiteKind::Sample {
            if let Some(v) = self.data.get(&msg.name) {
                msg.value = Some(v.shallow_clone());
                msg.is_observed = true;
            }
        }
        Ok(())
    }
}

/// Runs `f` with the sites named in `data` observed at the given values.
pub fn condition<R>(data: Rc<Data>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ConditionMessenger::new(data).run(f)
}
