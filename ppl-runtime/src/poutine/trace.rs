//! `trace`: records every site of a run into a [`Trace`].

use super::runtime::{Handler, Messenger, Msg};
use super::trace_struct::{Site, Trace};
use crate::error::Result;
use crate::naming;

/// Records every site that reaches it (Pyro's `TraceMessenger`).
#[derive(Default)]
pub struct TraceMessenger {
    /// The sites recorded so far.
    pub trace: Trace,
}

impl TraceMessenger {
    /// A handler with an empty trace.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Messenger for TraceMessenger {
    fn postprocess(&mut self, msg: &mut Msg) -> Result<()> {
        self.trace.add(Site::from_msg(msg)?)
    }
}

/// Runs `f` and records its sites. A trace starts a new naming run (see [`crate::naming`]).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let (x, tr) = poutine::trace(|| Ok(sample!("x", Normal::new(0.0, 1.0)?)))?;
/// assert!(tr.value("x")?.equal(&x));
/// # Ok(()) }
/// ```
pub fn trace<R>(f: impl FnOnce() -> Result<R>) -> Result<(R, Trace)> {
    let _run = naming::new_run();
    let (r, h) = TraceMessenger::new().run_with(f)?;
    Ok((r, h.trace))
}
