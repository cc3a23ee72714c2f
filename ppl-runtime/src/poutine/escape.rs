//! `escape`: stops a run at the first site that satisfies a predicate.

use std::rc::Rc;

use super::runtime::{Handler, Messenger, Msg};
use crate::error::{Error, Result};

/// The predicate; it sees the message and may not change it.
pub type EscapeFn = Rc<dyn Fn(&Msg) -> bool>;

/// Ends the run with [`Error::NonlocalExit`] at the first site where the predicate holds; the site
/// (without a value) is kept in [`EscapeMessenger::escaped`].
#[derive(Clone)]
pub struct EscapeMessenger {
    escape_fn: EscapeFn,
    /// The site that ended the run.
    pub escaped: Option<EscapedSite>,
}

/// The site at which a run escaped.
#[derive(Clone, Debug)]
pub struct EscapedSite {
    /// Its name.
    pub name: String,
    /// Its distribution (sample sites).
    pub dist: Option<crate::distributions::DistRef>,
    /// Its plates.
    pub cond_indep_stack: Vec<super::runtime::CondIndepFrame>,
}

impl EscapeMessenger {
    /// Escapes where `f` holds.
    pub fn new(f: impl Fn(&Msg) -> bool + 'static) -> Self {
        EscapeMessenger {
            escape_fn: Rc::new(f),
            escaped: None,
        }
    }
}

impl Messenger for EscapeMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if (self.escape_fn)(msg) {
            msg.done = true;
            msg.stop = true;
            self.escaped = Some(EscapedSite {
                name: msg.name.clone(),
                dist: msg.dist.clone(),
                cond_indep_stack: msg.cond_indep_stack.clone(),
            });
            return Err(Error::NonlocalExit(msg.name.clone()));
        }
        Ok(())
    }
}

/// Runs `f`; `Ok(Err(site))` if it escaped at `site`.
pub fn escape<R>(
    escape_fn: impl Fn(&Msg) -> bool + 'static,
    f: impl FnOnce() -> Result<R>,
) -> Result<std::result::Result<R, EscapedSite>> {
    let g = EscapeMessenger::new(escape_fn).enter();
    match f() {
        Ok(r) => Ok(Ok(r)),
        Err(Error::NonlocalExit(_)) => {
            let h = g.exit()?;
            match h.escaped {
                Some(s) => Ok(Err(s)),
                None => Err(Error::Internal(
                    "escape: exit without an escaped site".into(),
                )),
            }
        }
        Err(e) => Err(e),
    }
}
