//! `scale`: multiplies the log-density of every sample site by a factor.

use super::runtime::{Handler, Messenger, Msg};
use crate::error::{Error, Result};

/// Multiplies the log-density of the sites inside by `scale`.
#[derive(Clone, Copy, Debug)]
pub struct ScaleMessenger {
    scale: f64,
}

impl ScaleMessenger {
    /// Scales by `scale`, which must be positive and finite.
    pub fn new(scale: f64) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidParameter {
                dist: "poutine::scale",
                param: "scale",
                expected: format!("a positive finite number, got {scale}"),
            });
        }
        Ok(ScaleMessenger { scale })
    }
}

impl Messenger for ScaleMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        msg.scale *= self.scale;
        Ok(())
    }
}

/// Runs `f` with log-densities multiplied by `scale`.
pub fn scale<R>(scale: f64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ScaleMessenger::new(scale)?.run(f)
}
