//! `queue`: runs a program once per partial trace taken from a queue, extending the partial
//! traces at the first new discrete site. Exhaustive enumeration (`Search`) is built on it.

use std::collections::VecDeque;
use std::rc::Rc;

use super::escape::{EscapeMessenger, EscapedSite};
use super::replay::ReplayMessenger;
use super::runtime::{Handler, Msg, SiteKind};
use super::trace::TraceMessenger;
use super::trace_struct::{Site, Trace};
use crate::error::{Error, Result};
use crate::naming;

/// Whether `msg` is a new (not in `partial`) unobserved discrete sample site that can be
/// enumerated.
pub fn discrete_escape(partial: &Trace, msg: &Msg) -> bool {
    msg.kind == SiteKind::Sample
        && !msg.is_observed
        && !partial.contains(&msg.name)
        && msg.dist.as_ref().is_some_and(|d| d.has_enumerate_support())
}

/// One extension of `partial` per value in the support of the escaped site.
pub fn enum_extend(partial: &Trace, site: &EscapedSite) -> Result<Vec<Trace>> {
    let dist = site.dist.as_ref().ok_or_else(|| Error::Enumeration {
        site: site.name.clone(),
        message: "cannot enumerate a site without a distribution".into(),
    })?;
    let support = dist.enumerate_support(true)?;
    let n = support.size().first().copied().unwrap_or(0);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut tr = partial.clone();
        let mut s = Site {
            name: site.name.clone(),
            kind: SiteKind::Sample,
            dist: Some(dist.clone()),
            value: support.f_get(i)?,
            is_observed: false,
            scale: 1.0,
            mask: None,
            cond_indep_stack: site.cond_indep_stack.clone(),
            infer: Default::default(),
            log_prob: None,
            unscaled_log_prob: None,
        };
        s.infer.enumerate = Some(super::runtime::Enumerate::Sequential);
        tr.add(s)?;
        out.push(tr);
    }
    Ok(out)
}

/// Runs `f` under the next partial trace of `queue` until a run completes; every run that stops
/// at a new discrete site pushes that site's extensions to the back of the queue. Returns the
/// completed run's value and full trace.
pub fn queue<R>(
    mut f: impl FnMut() -> Result<R>,
    queue: &mut VecDeque<Trace>,
    max_tries: usize,
) -> Result<(R, Trace)> {
    for _ in 0..max_tries {
        let partial = Rc::new(queue.pop_front().ok_or_else(|| {
            Error::Internal("queue: the queue of partial traces is empty".into())
        })?);
        let _run = naming::new_run();
        let tg = TraceMessenger::new().enter();
        let p = partial.clone();
        let eg = EscapeMessenger::new(move |m| discrete_escape(&p, m)).enter();
        let rg = ReplayMessenger::new(partial.clone()).enter();
        match f() {
            Ok(r) => {
                drop(rg);
                drop(eg);
                return Ok((r, tg.exit()?.trace));
            }
            Err(Error::NonlocalExit(_)) => {
                drop(rg);
                let esc = eg.exit()?.escaped;
                drop(tg);
                let site = esc.ok_or_else(|| {
                    Error::Internal("queue: escaped without recording the site".into())
                })?;
                for tr in enum_extend(&partial, &site)? {
                    queue.push_back(tr);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Invalid(format!(
        "queue: no run completed within max_tries = {max_tries}"
    )))
}
