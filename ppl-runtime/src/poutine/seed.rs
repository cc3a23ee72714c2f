//! `seed`: seeds the random streams for the run inside, and restores them afterwards.

use super::runtime::{Handler, Messenger};
use crate::error::Result;
use crate::primitives::{get_rng_state, set_rng_seed, set_rng_state, RngState};

/// Seeds torch (CPU and CUDA) and `rand` when entered, and puts torch's CPU generator and `rand`
/// back to where they were when it leaves the stack, as Pyro's `seed` does: the draws outside
/// the block are those of a run without it. (CUDA generators are seeded but not restored.)
#[derive(Clone, Debug)]
pub struct SeedMessenger {
    seed: u64,
    saved: Option<RngState>,
}

impl SeedMessenger {
    /// Seeds with `seed`.
    pub fn new(seed: u64) -> Self {
        SeedMessenger { seed, saved: None }
    }
}

impl Messenger for SeedMessenger {
    fn on_enter(&mut self) {
        // Without a state to restore (the shim failed), the block still runs seeded.
        self.saved = get_rng_state().ok();
        set_rng_seed(self.seed);
    }
}

impl Drop for SeedMessenger {
    fn drop(&mut self) {
        if let Some(state) = self.saved.take() {
            // A restore that fails leaves the seeded streams running, which is what an
            // unrestored seed did before; nothing else is affected.
            let _ = set_rng_state(&state);
        }
    }
}

/// Runs `f` with the random streams seeded by `seed`, and restores them afterwards.
pub fn seed<R>(seed: u64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    SeedMessenger::new(seed).run(f)
}
