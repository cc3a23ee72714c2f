//! `AutoDelta`: a point-mass guide; SVI with it finds the MAP estimate.

use std::rc::Rc;

use tch::Tensor;

use super::normal::find;
use super::LazyPrototype;
use super::{
    init_to_median, model_fn, AutoGuide, InitLocFn, LatentSite, PlateSet, Prototype, Samples,
};
use crate::distributions::Delta;
use crate::error::{Result, ResultExt};
use crate::primitives::{param, sample};

/// A point-mass guide (Pyro's `AutoDelta`): each latent site `x` is `Delta(AutoDelta.x)`, a
/// param constrained to the site's support. Maximizing the ELBO with it maximizes the joint
/// density: the MAP estimate (in constrained space).
///
/// Local latents in subsampling plates are handled as in [`super::AutoNormal`].
pub struct AutoDelta<'a> {
    lazy: LazyPrototype<'a>,
    prefix: String,
}

impl<'a> AutoDelta<'a> {
    /// The guide of `model` (initialized with [`init_to_median`]).
    pub fn new<R>(model: impl FnMut() -> Result<R> + 'a) -> Self {
        AutoDelta {
            lazy: LazyPrototype::new(model_fn(model), init_to_median()),
            prefix: "AutoDelta".into(),
        }
    }

    /// Uses `f` to initialize the points (before the first call).
    pub fn init_loc_fn(mut self, f: InitLocFn) -> Self {
        self.lazy.init_loc_fn = f;
        self
    }

    /// The prefix of the param names (default `AutoDelta`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn prototype(&self) -> Result<Rc<Prototype>> {
        self.lazy.get()
    }

    /// The names of the latent sites the guide covers, in the model's order.
    pub fn latent_sites(&self) -> Result<Vec<String>> {
        self.lazy.latent_sites()
    }

    fn point(&self, site: &LatentSite) -> Result<Tensor> {
        let init = site.value.shallow_clone();
        param(
            format!("{}.{}", self.prefix, site.name),
            Some(|| Ok(init)),
            site.support.clone(),
            Some(site.event_dim),
        )
    }

    /// The point of site `name` (constrained, full plate sizes).
    pub fn site_value(&self, name: &str) -> Result<Tensor> {
        let proto = self.prototype()?;
        self.point(find(&proto, name)?)
    }

    /// Runs the guide once: samples every latent site and returns the values.
    pub fn call(&self) -> Result<Samples> {
        let proto = self.prototype()?;
        let plates = PlateSet::draw(&proto)?;
        let mut out = Samples::new();
        for site in &proto.sites {
            let v = self.point(site)?;
            let _entered = plates.enter(site)?;
            let v = plates.subsample(site, &v, site.event_dim)?;
            let d = Delta::new(&v, site.event_dim).at_site(&site.name)?;
            out.insert(site.name.clone(), sample(site.name.clone(), d, None)?);
        }
        Ok(out)
    }

    /// The points (a point mass is its own median).
    pub fn median(&self) -> Result<Samples> {
        let _ng = tch::no_grad_guard();
        let proto = self.prototype()?;
        let mut out = Samples::new();
        for site in &proto.sites {
            out.insert(site.name.clone(), self.point(site)?.f_detach()?);
        }
        Ok(out)
    }

    /// Every quantile of a point mass is the point: `[qs.len(), ...site shape]`.
    pub fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        let med = self.median()?;
        let mut out = Samples::new();
        for (k, v) in med {
            let mut shape = vec![qs.len() as i64];
            shape.extend(v.size());
            out.insert(k, v.f_unsqueeze(0)?.f_expand(shape.as_slice(), false)?);
        }
        Ok(out)
    }
}

impl AutoGuide for AutoDelta<'_> {
    fn call(&self) -> Result<Samples> {
        AutoDelta::call(self)
    }
    fn median(&self) -> Result<Samples> {
        AutoDelta::median(self)
    }
    fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        AutoDelta::quantiles(self, qs)
    }
}
