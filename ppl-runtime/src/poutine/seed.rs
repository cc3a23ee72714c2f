//! `seed`: seeds the random streams for the run inside.

use super::runtime::{Handler, Messenger};
use crate::error::Result;
use crate::primitives::set_rng_seed;

/// Seeds torch (CPU and CUDA) and `rand` when entered. libtorch does not expose the generator
/// state through tch, so the previous state is not restored on exit (Pyro restores it).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedMessenger {
    seed: u64,
}

impl SeedMessenger {
    /// Seeds with `seed`.
    pub fn new(seed: u64) -> Self {
        SeedMessenger { seed }
    }
}

impl Messenger for SeedMessenger {
    fn on_enter(&mut self) {
        set_rng_seed(self.seed);
    }
}

/// Runs `f` with the random streams seeded by `seed`.
pub fn seed<R>(seed: u64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    SeedMessenger::new(seed).run(f)
}
