//! `markov`: declares that a loop is a Markov chain of bounded memory (Pyro's `pyro.markov`).
//!
//! Each iteration of `for t in markov(0..T)` opens a step. A site sampled at step `t` may depend
//! on the sites of the last `history` steps (and on everything sampled outside the loop), and
//! on nothing older. The enum handler uses this to recycle enumeration dims: an HMM of length
//! `T` with `K` states then costs `O(T K²)` to sum out, not `K^T`. Outside enumeration `markov`
//! changes nothing.
//!
//! ```
//! use ppl::prelude::*;
//! use ppl::poutine::markov;
//!
//! #[model]
//! fn chain(ys: &[f64]) -> ppl::Result<()> {
//!     let mut x = Tensor::from(0i64);
//!     for t in markov(0..ys.len()) {
//!         let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8]).view([2, 2]);
//!         x = sample!(format!("x_{t}"), Categorical::new(&ppl::ops::vindex(&probs, &[Some(&x), None])?)?,
//!                     enumerate = parallel);
//!         sample!(format!("y_{t}"), Normal::new(&x.to_kind(Kind::Float), 1.0)?, obs = ys[t]);
//!     }
//!     Ok(())
//! }
//! # fn main() -> ppl::Result<()> {
//! // x_0 and x_2 share an enumeration dim; x_1 takes the next one.
//! let (_, tr) = poutine::trace(|| poutine::enum_(-1, || chain(&[0.1, 0.9, 1.2])))?;
//! assert_eq!(tr.value("x_0")?.size(), vec![2]);
//! assert_eq!(tr.value("x_1")?.size(), vec![2, 1]);
//! assert_eq!(tr.value("x_2")?.size(), vec![2]);
//! # Ok(()) }
//! ```

use super::runtime::{Handler, HandlerGuard, Messenger, Msg, SiteKind};
use crate::error::Result;

/// The handler of one markov chain: a window of the last `history + 1` steps' site names.
#[derive(Default)]
pub struct MarkovMessenger {
    history: usize,
    keep: bool,
    /// Site names sampled at each open step, oldest first.
    steps: Vec<Vec<String>>,
}

impl MarkovMessenger {
    /// A chain whose sites depend on the last `history` steps.
    pub fn new(history: usize) -> Self {
        MarkovMessenger {
            history,
            keep: false,
            steps: vec![Vec::new()],
        }
    }

    /// Keeps a step's sites in scope after it ends (Pyro's `keep=True`), for branching
    /// recursions whose later steps may depend on any earlier one within `history`.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    fn next_step(&mut self) {
        self.steps.push(Vec::new());
        if !self.keep && self.steps.len() > self.history + 1 {
            self.steps.remove(0);
        }
    }
}

impl Messenger for MarkovMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.infer.is_subsample {
            return Ok(());
        }
        let m = msg.infer.markov.get_or_insert_with(Default::default);
        m.depth += 1;
        let start = self.steps.len().saturating_sub(self.history + 1);
        for step in &self.steps[start..] {
            for name in step {
                *m.scope.entry(name.clone()).or_insert(0) += 1;
            }
        }
        if let Some(cur) = self.steps.last_mut() {
            cur.push(msg.name.clone());
        }
        Ok(())
    }
}

/// Iterates over `iter`, one markov step per item (Pyro's `for t in pyro.markov(range(T))`).
pub fn markov<I: IntoIterator>(iter: I) -> Markov<I::IntoIter> {
    Markov {
        iter: iter.into_iter(),
        history: 1,
        keep: false,
        guard: None,
    }
}

/// The iterator of [`markov`]; the chain's handler is on the stack while it yields.
pub struct Markov<I> {
    iter: I,
    history: usize,
    keep: bool,
    guard: Option<HandlerGuard<MarkovMessenger>>,
}

impl<I> Markov<I> {
    /// How many earlier steps a step may depend on (default 1).
    pub fn history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// Keeps every step's sites in scope (Pyro's `keep=True`).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }
}

impl<I: Iterator> Iterator for Markov<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let Some(item) = self.iter.next() else {
            drop(self.guard.take());
            return None;
        };
        match &self.guard {
            Some(g) => g.with(MarkovMessenger::next_step),
            None => self.guard = Some(MarkovMessenger::new(self.history).keep(self.keep).enter()),
        }
        Some(item)
    }
}

/// Runs `f` as one markov step of its own (Pyro's `with pyro.markov():`): sites inside see
/// each other and everything outside.
pub fn markov_step<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    MarkovMessenger::new(0).run(f)
}
