//! Unique site names within one run.
//!
//! **The rule.** Within one run of a program, the first execution of a sample site keeps its
//! name; the k-th repeat (k = 1, 2, ...) of the same name is called `name__k`. A run starts at
//! `poutine::trace` (every inference algorithm traces the programs it runs) or, for a model
//! called outside any trace, at the outermost `#[model]`/`#[guide]` function. Nested model calls
//! (recursion, helper models) share their caller's run, so recursion yields `x`, `x__1`, `x__2`,
//! ...; model and guide each start at zero, so replay pairs their sites by the same rule.
//! Param names are never changed: the same name means the same parameter.

use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static SCOPES: RefCell<Vec<HashMap<String, u32>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `base` unique within the current run (see the module docs for the rule).
pub fn unique_name(base: String) -> String {
    SCOPES.with(|s| {
        let mut s = s.borrow_mut();
        let Some(scope) = s.last_mut() else {
            return base;
        };
        match scope.get_mut(&base) {
            None => {
                scope.insert(base.clone(), 0);
                base
            }
            Some(k) => {
                *k += 1;
                let name = format!("{base}__{k}");
                // A later explicit site may use the generated name itself; reserve it.
                scope.entry(name.clone()).or_insert(0);
                name
            }
        }
    })
}

/// Guard of a naming run; dropping it ends the run.
#[must_use]
pub struct RunScope {
    pushed: Option<usize>,
}

impl Drop for RunScope {
    fn drop(&mut self) {
        if let Some(depth) = self.pushed {
            SCOPES.with(|s| s.borrow_mut().truncate(depth));
        }
    }
}

/// Starts a new run (used by `trace`).
pub fn new_run() -> RunScope {
    SCOPES.with(|s| {
        let mut s = s.borrow_mut();
        let depth = s.len();
        s.push(HashMap::new());
        RunScope {
            pushed: Some(depth),
        }
    })
}

/// Starts a run only if none is active (used at the entry of `#[model]` functions).
pub fn enter_model() -> RunScope {
    let active = SCOPES.with(|s| !s.borrow().is_empty());
    if active {
        RunScope { pushed: None }
    } else {
        new_run()
    }
}
