//! `reparam`: sample sites drawn another way (Pyro's `poutine.reparam`).
//!
//! A reparameterizer ([`Reparam`], see [`crate::infer::reparam`]) replaces a latent site `x` by
//! auxiliary sites it samples itself (`x_decentered`, `x_base`, a shared latent, ...) and a
//! deterministic function of them. The site `x` stays in the trace with that value, as an
//! observed [`Delta`] whose log-density is whatever the reparameterizer says is left of `x`'s
//! (zero for `LocScaleReparam`, the pulled-back density for `NeuTraReparam`), so the joint
//! density of the model is unchanged and every inference algorithm sees the auxiliary sites as
//! the latents.

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use tch::Tensor;

use super::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::distributions::{Delta, DistRef};
use crate::error::{Result, ResultExt};

/// What a reparameterizer sees of a site.
pub struct ReparamSite<'a> {
    /// The site's name.
    pub name: &'a str,
    /// Its distribution (after the plates it is in).
    pub dist: &'a DistRef,
}

/// Values a reparameterizer keeps between the sites of one run (the shared latent of
/// `NeuTraReparam`, unpacked per site). Fresh for every run.
pub type Scratch = IndexMap<String, Tensor>;

/// A reparameterizer: draws a site through auxiliary sites.
pub trait Reparam {
    /// Samples the auxiliary sites of `site` (with [`crate::primitives::sample`]) and returns
    /// the site's value and the log-density left at the site (summed over its event dims; `None`
    /// for zero).
    fn apply(
        &self,
        site: &ReparamSite<'_>,
        scratch: &mut Scratch,
    ) -> Result<(Tensor, Option<Tensor>)>;
}

/// Which reparameterizer each site gets.
#[derive(Clone, Default)]
pub struct ReparamConfig {
    sites: HashMap<String, Rc<dyn Reparam>>,
    all: Option<Rc<dyn Reparam>>,
}

impl ReparamConfig {
    /// No site reparameterized.
    pub fn new() -> ReparamConfig {
        ReparamConfig::default()
    }

    /// Site `name` drawn through `r`.
    pub fn site(mut self, name: impl Into<String>, r: impl Reparam + 'static) -> ReparamConfig {
        self.sites.insert(name.into(), Rc::new(r));
        self
    }

    /// Site `name` drawn through a shared `r`.
    pub fn site_rc(mut self, name: impl Into<String>, r: Rc<dyn Reparam>) -> ReparamConfig {
        self.sites.insert(name.into(), r);
        self
    }

    /// Every latent site not named otherwise drawn through `r` (Pyro's `config=lambda _: r`).
    pub fn all(mut self, r: impl Reparam + 'static) -> ReparamConfig {
        self.all = Some(Rc::new(r));
        self
    }

    fn get(&self, name: &str) -> Option<&Rc<dyn Reparam>> {
        self.sites.get(name).or(self.all.as_ref())
    }
}

/// Reparameterizes the latent sample sites named in its config.
pub struct ReparamMessenger {
    config: Rc<ReparamConfig>,
    scratch: Scratch,
}

impl ReparamMessenger {
    /// Reparameterizes by `config`.
    pub fn new(config: Rc<ReparamConfig>) -> ReparamMessenger {
        ReparamMessenger {
            config,
            scratch: Scratch::new(),
        }
    }
}

impl Messenger for ReparamMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample
            || msg.is_observed
            || msg.infer.is_auxiliary
            || msg.infer.is_subsample
            || msg.infer.enumerate.is_some()
        {
            return Ok(());
        }
        let Some(r) = self.config.get(&msg.name).cloned() else {
            return Ok(());
        };
        let dist = msg.dist()?.clone();
        let site = ReparamSite {
            name: &msg.name,
            dist: &dist,
        };
        let (value, log_density) = r.apply(&site, &mut self.scratch).at_site(&msg.name)?;
        let mut delta = Delta::new(&value, dist.event_dim()).at_site(&msg.name)?;
        if let Some(ld) = log_density {
            delta = delta.with_log_density(&ld).at_site(&msg.name)?;
        }
        msg.dist = Some(Rc::new(delta));
        msg.value = Some(value);
        msg.is_observed = true;
        Ok(())
    }
}

/// Runs `f` with the sites named in `config` reparameterized.
pub fn reparam<R>(config: Rc<ReparamConfig>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ReparamMessenger::new(config).run(f)
}
