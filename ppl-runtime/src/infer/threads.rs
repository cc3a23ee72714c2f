//! torch's intra-op threads while inference runs.
//!
//! libtorch's intra-op pool helps large tensors and hurts small ones: a model of a few hundred
//! numbers per op pays for waking threads on every op, and when another process keeps a core
//! busy each wake-up waits for it (the coin example went from 0.37 to 1.4 ms per eager SVI step
//! with one core busy). libtorch splits an op across threads only above `GRAIN_SIZE` elements,
//! so inference on smaller tensors runs torch single-threaded, as MCMC always has.

/// libtorch's `at::internal::GRAIN_SIZE`: ops on fewer elements do not use the pool.
pub(crate) const GRAIN_SIZE: usize = 32768;

/// Sets torch's intra-op threads and restores them when dropped.
pub(crate) struct ThreadsGuard(Option<i32>);

impl ThreadsGuard {
    pub(crate) fn set(n: Option<usize>) -> ThreadsGuard {
        match n {
            Some(n) => {
                let prev = tch::get_num_threads();
                tch::set_num_threads(n.max(1) as i32);
                ThreadsGuard(Some(prev))
            }
            None => ThreadsGuard(None),
        }
    }
}

impl Drop for ThreadsGuard {
    fn drop(&mut self) {
        if let Some(n) = self.0 {
            tch::set_num_threads(n);
        }
    }
}

/// Picks torch's intra-op threads by the work of the first run, for algorithms that run a model
/// many times (`Predictive`, `Importance`): one thread when every site value of the first run has
/// fewer elements than libtorch splits across threads, torch's setting otherwise. The choice
/// holds until this is dropped, which restores the previous setting.
#[derive(Default)]
pub(crate) struct ByWork {
    guard: Option<ThreadsGuard>,
}

impl ByWork {
    /// Decides, once, from a run's trace.
    pub(crate) fn observe(&mut self, trace: &crate::poutine::Trace) {
        if self.guard.is_none() {
            let largest = trace.iter().map(|s| s.value.numel()).max().unwrap_or(0);
            self.guard = Some(ThreadsGuard::set((largest < GRAIN_SIZE).then_some(1)));
        }
    }
}
