//! `config_enumerate`: marks every discrete site for enumeration (Pyro's `config_enumerate`).

use super::runtime::{Enumerate, Handler, Messenger, Msg, SiteKind};
use crate::error::Result;

/// Marks each unobserved sample site whose distribution has finite support, and that has no
/// `enumerate` setting of its own, with `default` (and `expand`).
#[derive(Clone, Copy, Debug)]
pub struct ConfigEnumerateMessenger {
    default: Enumerate,
    expand: bool,
}

impl ConfigEnumerateMessenger {
    /// Marks discrete sites with `default`.
    pub fn new(default: Enumerate) -> Self {
        ConfigEnumerateMessenger {
            default,
            expand: false,
        }
    }

    /// Also asks for full-shape (expanded) enumerated values.
    pub fn expand(mut self, expand: bool) -> Self {
        self.expand = expand;
        self
    }
}

impl Messenger for ConfigEnumerateMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample
            || msg.is_observed
            || msg.infer.is_subsample
            || msg.infer.enumerate.is_some()
        {
            return Ok(());
        }
        if msg.dist.as_ref().is_some_and(|d| d.has_enumerate_support()) {
            msg.infer.enumerate = Some(self.default);
            msg.infer.expand |= self.expand;
        }
        Ok(())
    }
}

/// Runs `f` with every discrete site of finite support marked for enumeration with `default`,
/// unless the site says otherwise.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::poutine::{config_enumerate, Enumerate};
///
/// #[model]
/// fn model() -> ppl::Result<()> {
///     let z = sample!(Bernoulli::new(0.3)?);
///     sample!("x", Normal::new(&z, 1.0)?, obs = 0.5);
///     Ok(())
/// }
/// # fn main() -> ppl::Result<()> {
/// let (_, tr) = poutine::trace(|| config_enumerate(Enumerate::Parallel, model))?;
/// assert_eq!(tr.site("z")?.infer.enumerate, Some(Enumerate::Parallel));
/// # Ok(()) }
/// ```
pub fn config_enumerate<R>(default: Enumerate, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ConfigEnumerateMessenger::new(default).run(f)
}
