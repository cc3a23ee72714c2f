//! `Search`: exact inference by exhaustive enumeration of a discrete model (the `Search` of
//! Pyro's RSA examples).
//!
//! Every unobserved site whose distribution can enumerate its support is extended over that
//! support through [`poutine::queue`](crate::poutine::queue), breadth first, until the queue of
//! partial traces is empty. Each complete run is one [`WeightedTrace`] whose log-weight is the
//! trace's `log_prob_sum` (scaled and masked, so `factor` and `poutine::scale` count).

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::poutine::{self, BlockMessenger, Handler, Trace};

/// One complete run of a model found by [`Search`].
#[derive(Debug, Clone)]
pub struct WeightedTrace<R> {
    /// The model's return value in this run.
    pub value: R,
    /// The run's trace.
    pub trace: Trace,
    /// The run's log-weight: the sum of the trace's (scaled, masked) log-densities.
    pub log_weight: f64,
}

/// Exhaustive enumeration of a discrete model.
///
/// The model must terminate on every path. Only sites whose distribution can enumerate its
/// support are enumerated; any other latent site is drawn at random, so the result is exact only
/// when every latent site is discrete. Runs under `poutine::block`, so a search inside another
/// model is invisible to that model's handlers.
pub struct Search<'a, R> {
    model: Box<dyn Fn() -> Result<R> + 'a>,
    max_tries: usize,
}

impl<'a, R> Search<'a, R> {
    /// Enumerates `model`.
    pub fn new(model: impl Fn() -> Result<R> + 'a) -> Self {
        Search {
            model: Box::new(model),
            max_tries: 1_000_000,
        }
    }

    /// The largest number of runs spent on finding one complete trace (default 1 000 000).
    pub fn max_tries(mut self, max_tries: usize) -> Self {
        self.max_tries = max_tries;
        self
    }

    /// All complete runs of the model with their log-weights, in breadth-first order.
    pub fn run(&self) -> Result<Vec<WeightedTrace<R>>> {
        BlockMessenger::hide_all().run(|| {
            let mut queue = VecDeque::from([Trace::new()]);
            let mut out = Vec::new();
            while !queue.is_empty() {
                let (value, mut trace) =
                    poutine::queue(|| (self.model)(), &mut queue, self.max_tries)?;
                let log_weight = trace.log_prob_sum()?.f_double_value(&[])?;
                if log_weight.is_nan() {
                    let names: Vec<&str> = trace.names().collect();
                    return Err(Error::NonFinite(format!(
                        "Search: a run's log-weight is NaN (sites {})",
                        names.join(", ")
                    )));
                }
                out.push(WeightedTrace {
                    value,
                    trace,
                    log_weight,
                });
            }
            Ok(out)
        })
    }
}
