//! `infer_config`: sets per-site inference settings from a function of the message.

use std::rc::Rc;

use super::runtime::{Handler, InferConfig, Messenger, Msg, SiteKind};
use crate::error::Result;

type ConfigFn = Rc<dyn Fn(&Msg) -> Option<InferConfig>>;

/// Merges the config returned by a function into each sample site's `infer`.
#[derive(Clone)]
pub struct InferConfigMessenger {
    config_fn: ConfigFn,
}

impl InferConfigMessenger {
    /// Uses `f` to configure sites; `None` leaves a site alone.
    pub fn new(f: impl Fn(&Msg) -> Option<InferConfig> + 'static) -> Self {
        InferConfigMessenger {
            config_fn: Rc::new(f),
        }
    }
}

impl Messenger for InferConfigMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind == SiteKind::Sample {
            if let Some(cfg) = (self.config_fn)(msg) {
                msg.infer.update(&cfg);
            }
        }
        Ok(())
    }
}

/// Runs `f` with sites configured by `config_fn`.
pub fn infer_config<R>(
    config_fn: impl Fn(&Msg) -> Option<InferConfig> + 'static,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    InferConfigMessenger::new(config_fn).run(f)
}
