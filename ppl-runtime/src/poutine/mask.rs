//! `mask`: zeroes the log-density of sample sites where a boolean mask is false.

use tch::{Kind, Tensor};

use super::runtime::{Handler, Messenger, Msg};
use crate::error::Result;

/// Masks the log-density of the sites inside.
pub struct MaskMessenger {
    mask: Tensor,
}

impl Clone for MaskMessenger {
    fn clone(&self) -> Self {
        MaskMessenger {
            mask: self.mask.shallow_clone(),
        }
    }
}

impl MaskMessenger {
    /// Masks with `mask` (converted to bool; broadcast against each site's batch shape).
    pub fn new(mask: &Tensor) -> Result<Self> {
        Ok(MaskMessenger {
            mask: mask.f_to_kind(Kind::Bool)?,
        })
    }
}

impl Messenger for MaskMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        msg.mask = Some(match msg.mask.take() {
            None => self.mask.shallow_clone(),
            Some(m) => m.f_logical_and(&self.mask)?,
        });
        Ok(())
    }
}

/// Runs `f` with log-densities masked by `mask`.
pub fn mask<R>(mask: &Tensor, f: impl FnOnce() -> Result<R>) -> Result<R> {
    MaskMessenger::new(mask)?.run(f)
}
