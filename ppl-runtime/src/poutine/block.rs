//! `block`: hides sites from the handlers outside it.

use std::collections::HashSet;
use std::rc::Rc;

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

type HideFn = Rc<dyn Fn(&Msg) -> bool>;

/// Hides the sites it selects from the handlers outside it. With no selection it hides all.
#[derive(Clone)]
pub struct BlockMessenger {
    hide_fn: HideFn,
}

fn names(v: &[&str]) -> HashSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl BlockMessenger {
    /// Hides every site.
    pub fn hide_all() -> Self {
        BlockMessenger {
            hide_fn: Rc::new(|_| true),
        }
    }
    /// Hides the sites for which `f` is true.
    pub fn hide_fn(f: impl Fn(&Msg) -> bool + 'static) -> Self {
        BlockMessenger {
            hide_fn: Rc::new(f),
        }
    }
    /// Hides the named sites.
    pub fn hide(sites: &[&str]) -> Self {
        let s = names(sites);
        Self::hide_fn(move |m| s.contains(&m.name))
    }
    /// Hides every site except the named ones.
    pub fn expose(sites: &[&str]) -> Self {
        let s = names(sites);
        Self::hide_fn(move |m| !s.contains(&m.name))
    }
    /// Hides the sites of the given kinds.
    pub fn hide_types(kinds: &[SiteKind]) -> Self {
        let k = kinds.to_vec();
        Self::hide_fn(move |m| k.contains(&m.kind))
    }
    /// Hides every site except those of the given kinds.
    pub fn expose_types(kinds: &[SiteKind]) -> Self {
        let k = kinds.to_vec();
        Self::hide_fn(move |m| !k.contains(&m.kind))
    }
}

impl Messenger for BlockMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if (self.hide_fn)(msg) {
            msg.stop = true;
        }
        Ok(())
    }
}

/// Runs `f` with every site hidden from the handlers outside.
pub fn block<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    BlockMessenger::hide_all().run(f)
}
