//! `AutoNormal`: a mean-field normal guide, one loc and scale per latent site.

use std::rc::Rc;

use tch::Tensor;

use super::LazyPrototype;
use super::{
    init_to_feasible, model_fn, quantile_tensor, AutoGuide, InitLocFn, LatentSite, PlateSet,
    Prototype, Samples,
};
use crate::constraints::Constraint;
use crate::distributions::{Delta, Distribution, DistributionExt, Normal};
use crate::error::{Result, ResultExt};
use crate::poutine::InferConfig;
use crate::primitives::{param, sample, sample_with, SampleOpts};

/// A mean-field normal guide (Pyro's `AutoNormal`): each latent site `x` gets its own
/// `Normal(AutoNormal.locs.x, AutoNormal.scales.x)` in unconstrained space, pushed through
/// `biject_to(support)`.
///
/// Local latents (sites inside plates) get params with the plate's full size along the plate's
/// dim; when the plate subsamples, the guide enters the same plate (drawing the indices the
/// model then replays) and uses the rows of its params at those indices.
///
/// Sites with real support are sampled directly from the normal; constrained sites are drawn
/// at an auxiliary site `x_unconstrained` and recorded at `x` as a point mass whose
/// log-density is `-log |det J|` of the transform, so that the guide's density of `x` is the
/// pushed-forward one (as Pyro does).
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::AutoNormal;
///
/// fn model(data: &Tensor) -> ppl::Result<()> {
///     let mu = ppl::sample("mu", Normal::new(0.0, 10.0)?, None)?;
///     let sigma = ppl::sample("sigma", HalfNormal::new(1.0)?, None)?;
///     let _p = Plate::new("data", data.size()[0]).enter()?;
///     ppl::sample("obs", Normal::new(&mu, &sigma)?, Some(data.shallow_clone()))?;
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// set_rng_seed(0);
/// let data = Tensor::from_slice(&[1.0f32, 2.0, 1.5, 0.5]);
/// let guide = AutoNormal::new(|| model(&data));
/// let adam = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
/// let mut svi = Svi::new(|| model(&data), || guide.call(), adam, TraceElbo::default());
/// for _ in 0..20 {
///     svi.step()?;
/// }
/// let median = guide.median()?;
/// assert!(median["sigma"].double_value(&[]) > 0.0);
/// assert!(get_param("AutoNormal.locs.mu").is_ok());
/// # Ok(()) }
/// ```
pub struct AutoNormal<'a> {
    lazy: LazyPrototype<'a>,
    init_scale: f64,
    prefix: String,
}

impl<'a> AutoNormal<'a> {
    /// The guide of `model` (initialized with [`init_to_feasible`] and scale 0.1).
    pub fn new<R>(model: impl FnMut() -> Result<R> + 'a) -> Self {
        AutoNormal {
            lazy: LazyPrototype::new(model_fn(model), init_to_feasible()),
            init_scale: 0.1,
            prefix: "AutoNormal".into(),
        }
    }

    /// Uses `f` to initialize the locs (before the first call).
    pub fn init_loc_fn(mut self, f: InitLocFn) -> Self {
        self.lazy.init_loc_fn = f;
        self
    }

    /// The initial scale of every site (default 0.1).
    pub fn init_scale(mut self, scale: f64) -> Self {
        self.init_scale = scale;
        self
    }

    /// The prefix of the param names (default `AutoNormal`), e.g. to fit two guides at once.
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

    fn loc_and_scale(&self, site: &LatentSite) -> Result<(Tensor, Tensor)> {
        let ue = Some(site.uevent_dim);
        let init_loc = site.unconstrained.shallow_clone();
        let loc = param(
            format!("{}.locs.{}", self.prefix, site.name),
            Some(|| Ok(init_loc)),
            Constraint::Real,
            ue,
        )?;
        let init_scale = self.init_scale;
        let like = site.unconstrained.shallow_clone();
        let scale = param(
            format!("{}.scales.{}", self.prefix, site.name),
            Some(|| Ok(like.f_full_like(init_scale)?)),
            Constraint::Positive,
            ue,
        )?;
        Ok((loc, scale))
    }

    /// The unconstrained loc and scale of site `name` (full plate sizes).
    pub fn site_loc_and_scale(&self, name: &str) -> Result<(Tensor, Tensor)> {
        let proto = self.prototype()?;
        let site = find(&proto, name)?;
        self.loc_and_scale(site)
    }

    /// Runs the guide once: samples every latent site and returns the values.
    pub fn call(&self) -> Result<Samples> {
        let proto = self.prototype()?;
        let plates = PlateSet::draw(&proto)?;
        let mut out = Samples::new();
        for site in &proto.sites {
            let (loc, scale) = self.loc_and_scale(site)?;
            let _entered = plates.enter(site)?;
            let loc = plates.subsample(site, &loc, site.uevent_dim)?;
            let scale = plates.subsample(site, &scale, site.uevent_dim)?;
            let q = Normal::new(&loc, &scale)
                .at_site(&site.name)?
                .to_event(site.uevent_dim)
                .at_site(&site.name)?;
            let v = if site.is_real {
                sample(site.name.clone(), q, None)?
            } else {
                let u = sample_with(
                    format!("{}_unconstrained", site.name),
                    q,
                    SampleOpts {
                        infer: Some(InferConfig {
                            is_auxiliary: true,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )?;
                let (value, log_density) = site.forward_with_log_density(&u)?;
                let d = Delta::new(&value, site.event_dim)
                    .at_site(&site.name)?
                    .with_log_density(&log_density)
                    .at_site(&site.name)?;
                sample(site.name.clone(), d, None)?
            };
            out.insert(site.name.clone(), v);
        }
        Ok(out)
    }

    /// The posterior median of each latent site: `transform(loc)` (full plate sizes).
    pub fn median(&self) -> Result<Samples> {
        let _ng = tch::no_grad_guard();
        let proto = self.prototype()?;
        let mut out = Samples::new();
        for site in &proto.sites {
            let (loc, _) = self.loc_and_scale(site)?;
            out.insert(site.name.clone(), site.forward(&loc)?.f_detach()?);
        }
        Ok(out)
    }

    /// The posterior quantiles of each latent site, `[qs.len(), ...site shape]`.
    pub fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        let _ng = tch::no_grad_guard();
        let proto = self.prototype()?;
        let mut out = Samples::new();
        for site in &proto.sites {
            let (loc, scale) = self.loc_and_scale(site)?;
            let q = quantile_tensor(qs, loc.dim(), &loc)?;
            let u = Normal::new(&loc, &scale)
                .at_site(&site.name)?
                .icdf(&q)
                .at_site(&site.name)?;
            out.insert(site.name.clone(), site.forward(&u)?.f_detach()?);
        }
        Ok(out)
    }
}

pub(crate) fn find<'p>(proto: &'p Prototype, name: &str) -> Result<&'p LatentSite> {
    proto
        .sites
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| crate::Error::MissingSite {
            site: name.to_string(),
            message: "not a latent site of the autoguide's model".into(),
        })
}

impl AutoGuide for AutoNormal<'_> {
    fn call(&self) -> Result<Samples> {
        AutoNormal::call(self)
    }
    fn median(&self) -> Result<Samples> {
        AutoNormal::median(self)
    }
    fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        AutoNormal::quantiles(self, qs)
    }
}
