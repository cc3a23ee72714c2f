//! Automatic guides (Pyro's `pyro.infer.autoguide`): variational families built from the model.
//!
//! An autoguide is constructed from a model closure. On its first call it runs the model once
//! (hidden from every handler outside, under [`InitMessenger`]) to find the latent sample sites,
//! their shapes, supports, event dims and plates; it then creates its params in the param store
//! under Pyro's names (`AutoNormal.locs.<site>`, `AutoDiagonalNormal.loc`, ...) and, on every
//! call, samples each latent site under its own name. Latents with constrained supports are
//! drawn in unconstrained space and pushed through `biject_to(support)`; the site's
//! log-density is the unconstrained one minus `log |det J|`.
//!
//! | guide | family (unconstrained space) | local latents in subsampled plates |
//! |---|---|---|
//! | [`AutoDelta`] | point mass (MAP) | yes |
//! | [`AutoNormal`] | mean-field normal, one loc/scale per site | yes |
//! | [`AutoDiagonalNormal`] | diagonal normal over the flat latent vector | no |
//! | [`AutoMultivariateNormal`] | full-covariance normal over the flat vector | no |
//! | [`AutoLowRankMultivariateNormal`] | low-rank plus diagonal normal | no |
//! | [`AutoLaplaceApproximation`] | MAP, then a normal from the Hessian | no |
//! | [`AutoNormalizingFlow`] | a standard normal through learnable transforms (flows) | no |
//! | [`AutoIAFNormal`] | a standard normal through inverse autoregressive flows | no |
//! | [`AutoGuideList`] | autoguides over disjoint parts of the model, run together | per part |
//!
//! Every guide is used as the guide closure of [`crate::infer::Svi`]:
//! `Svi::new(|| model(&x), || guide.call(), adam, TraceElbo::default())`.

mod continuous;
mod delta;
mod init;
mod list;
mod normal;

pub use continuous::{
    AutoDiagonalNormal, AutoIAFNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
    AutoMultivariateNormal, AutoNormalizingFlow, FlowFactory, FlowGuide, FlowParts, FlowSite,
};
pub use delta::AutoDelta;
pub use init::{
    init_to_feasible, init_to_mean, init_to_median, init_to_median_samples, init_to_sample,
    init_to_uniform, init_to_uniform_radius, init_to_value, init_to_value_or, InitLocFn,
    InitMessenger,
};
pub use list::AutoGuideList;
pub use normal::AutoNormal;

use std::cell::RefCell;
use std::rc::Rc;

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use crate::constraints::Constraint;
use crate::error::{Error, Result, ResultExt};
use crate::poutine::{self, CondIndepFrame, Handler, HandlerGuard, Messenger, Msg, Plate};
use crate::transforms::{biject_to, TransformRef};

/// Values by site name, in the model's order.
pub type Samples = IndexMap<String, Tensor>;

/// What every autoguide offers.
pub trait AutoGuide {
    /// Runs the guide once: samples every latent site of the model and returns the values.
    fn call(&self) -> Result<Samples>;
    /// The posterior median of each latent site (constrained).
    fn median(&self) -> Result<Samples>;
    /// The posterior quantiles `qs` of each latent site (constrained), stacked in a new leading
    /// dimension of size `qs.len()`.
    fn quantiles(&self, qs: &[f64]) -> Result<Samples>;
}

/// The model closure an autoguide keeps (shared with guides derived from it).
pub(crate) type ModelFn<'a> = Rc<RefCell<dyn FnMut() -> Result<()> + 'a>>;

pub(crate) fn model_fn<'a, R>(mut model: impl FnMut() -> Result<R> + 'a) -> ModelFn<'a> {
    Rc::new(RefCell::new(move || model().map(|_| ())))
}

/// One latent site of the model, as the prototype run found it.
pub(crate) struct LatentSite {
    pub name: String,
    /// The initial constrained value (full plate sizes).
    pub value: Tensor,
    /// `biject_to(support)⁻¹(value)`, full plate sizes.
    pub unconstrained: Tensor,
    pub support: Constraint,
    pub transform: TransformRef,
    /// Event dims of the constrained value.
    pub event_dim: usize,
    /// Event dims of the unconstrained value.
    pub uevent_dim: usize,
    /// The vectorized plates the site is inside, outermost first.
    pub frames: Vec<CondIndepFrame>,
    /// Whether the support is the reals (no transform needed).
    pub is_real: bool,
}

impl LatentSite {
    /// Whether any of the site's plates subsamples.
    pub fn subsampled_frame(&self) -> Option<&CondIndepFrame> {
        self.frames.iter().find(|f| f.size != f.full_size)
    }

    /// The (nonnegative) tensor dim of plate `frame` in a value with `ndim` dims and
    /// `event_dim` event dims.
    pub fn plate_dim(frame: &CondIndepFrame, ndim: i64, event_dim: usize) -> Option<i64> {
        let d = frame.dim? - event_dim as i64;
        let pos = ndim + d;
        (pos >= 0).then_some(pos)
    }

    /// `transform(u)` and the log-density correction `-log |det J|` summed over the site's
    /// event dims (shape: the batch shape).
    pub fn forward_with_log_density(&self, u: &Tensor) -> Result<(Tensor, Tensor)> {
        if self.is_real {
            let batch = &u.size()[..u.dim() - self.uevent_dim];
            let z = Tensor::f_zeros(batch, (u.kind(), u.device()))?;
            return Ok((u.shallow_clone(), z));
        }
        let y = self.transform.forward(u).at_site(&self.name)?;
        let ladj = self
            .transform
            .log_abs_det_jacobian(u, &y)
            .at_site(&self.name)?;
        let extra = self
            .event_dim
            .saturating_sub(self.transform.codomain_event_dim());
        Ok((y, sum_rightmost(&ladj, extra)?.f_neg()?))
    }

    /// `transform(u)`.
    pub fn forward(&self, u: &Tensor) -> Result<Tensor> {
        if self.is_real {
            return Ok(u.shallow_clone());
        }
        self.transform.forward(u).at_site(&self.name)
    }
}

pub(crate) fn sum_rightmost(t: &Tensor, n: usize) -> Result<Tensor> {
    if n == 0 || t.dim() == 0 {
        return Ok(t.shallow_clone());
    }
    let nd = t.dim() as i64;
    let dims: Vec<i64> = (nd - n as i64..nd).collect();
    Ok(t.f_sum_dim_intlist(dims.as_slice(), false, None::<Kind>)?)
}

/// What the prototype run of the model found.
pub(crate) struct Prototype {
    pub sites: Vec<LatentSite>,
    /// The vectorized plates of the model, by name.
    pub plates: IndexMap<String, CondIndepFrame>,
    /// The device of each subsampling plate's indices, by plate name.
    pub index_devices: IndexMap<String, tch::Device>,
}

/// Repeats `t` periodically along `dim` up to `size` (Pyro's `periodic_repeat`).
fn periodic_repeat(t: &Tensor, size: i64, dim: i64) -> Result<Tensor> {
    let have = t.size()[dim as usize];
    if have == size {
        return Ok(t.shallow_clone());
    }
    let reps = (size + have - 1) / have.max(1);
    let mut r = vec![1i64; t.dim()];
    r[dim as usize] = reps;
    Ok(t.f_repeat(r.as_slice())?.f_narrow(dim, 0, size)?)
}

/// Runs the model once, hidden from outside handlers, with latents at their initial values.
pub(crate) fn setup_prototype(model: &ModelFn<'_>, init: &InitLocFn) -> Result<Prototype> {
    let mut m = model.try_borrow_mut().map_err(|_| {
        Error::Config("autoguide: the model is already running (recursive guide call?)".into())
    })?;
    let (_, tr) = tch::no_grad(|| {
        poutine::block(|| poutine::trace(|| InitMessenger::new(init.clone()).run(&mut *m)))
    })?;
    drop(m);
    let mut sites = Vec::new();
    let mut plates: IndexMap<String, CondIndepFrame> = IndexMap::new();
    let mut index_devices = IndexMap::new();
    for s in tr.iter() {
        if s.infer.is_subsample {
            index_devices.insert(s.name.clone(), s.value.device());
        }
        for f in s.cond_indep_stack.iter().filter(|f| f.vectorized()) {
            plates
                .entry(f.name.to_string())
                .or_insert_with(|| f.clone());
        }
        // Sites marked for enumeration are the loss's to sum out (TraceEnumElbo): the guide
        // leaves them alone, as Pyro's autoguides do.
        if !s.is_latent() || s.infer.enumerate.is_some() {
            continue;
        }
        let dist = s.dist()?;
        let support = dist.support();
        if support.is_discrete() {
            return Err(Error::Enumeration {
                site: s.name.clone(),
                message: format!(
                    "autoguides need continuous latents, but the support is `{support}`; to sum \
                     this discrete site out, mark it `enumerate = parallel` (or wrap the model in \
                     config_enumerate) and use TraceEnumElbo"
                ),
            });
        }
        let transform = biject_to(&support).at_site(&s.name)?;
        let value = s.value.f_detach()?;
        let value = if crate::distributions::is_float(value.kind()) {
            value
        } else {
            value.f_to_kind(Kind::Float)?
        };
        let is_real = matches!(support, Constraint::Real | Constraint::RealVector)
            || matches!(&support, Constraint::Independent(b, _)
                if matches!(**b, Constraint::Real | Constraint::RealVector));
        let mut unconstrained = if is_real {
            value.shallow_clone()
        } else {
            tch::no_grad(|| transform.inverse(&value)).at_site(&s.name)?
        };
        let event_dim = dist.event_dim();
        let uevent_dim = (event_dim + transform.domain_event_dim())
            .saturating_sub(transform.codomain_event_dim());
        let uevent_dim = if is_real { event_dim } else { uevent_dim };
        let frames: Vec<CondIndepFrame> = s
            .cond_indep_stack
            .iter()
            .filter(|f| f.vectorized())
            .cloned()
            .collect();
        // Params of local latents span the plate's full size.
        let mut value = value;
        for f in &frames {
            if f.size == f.full_size {
                continue;
            }
            if let Some(d) = LatentSite::plate_dim(f, unconstrained.dim() as i64, uevent_dim) {
                unconstrained = periodic_repeat(&unconstrained, f.full_size, d)?;
            }
            if let Some(d) = LatentSite::plate_dim(f, value.dim() as i64, event_dim) {
                value = periodic_repeat(&value, f.full_size, d)?;
            }
        }
        sites.push(LatentSite {
            name: s.name.clone(),
            value: value.f_contiguous()?,
            unconstrained: unconstrained.f_contiguous()?,
            support,
            transform,
            event_dim,
            uevent_dim,
            frames,
            is_real,
        });
    }
    Ok(Prototype {
        sites,
        plates,
        index_devices,
    })
}

/// Supplies already drawn subsample indices to a plate entered again, hidden from the handlers
/// outside (so the indices are recorded once per guide run).
struct FixedSubsample {
    name: String,
    indices: Tensor,
}

impl Messenger for FixedSubsample {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.infer.is_subsample && msg.name == self.name {
            msg.value = Some(self.indices.shallow_clone());
            msg.done = true;
            msg.stop = true;
        }
        Ok(())
    }
}

/// The plates of one guide run: subsample indices drawn once, plates entered per site.
pub(crate) struct PlateSet {
    indices: IndexMap<String, Tensor>,
}

/// Guards of the plates a site is sampled in; dropping them leaves the plates.
pub(crate) struct EnteredPlates {
    // Dropped in reverse order of entry (innermost plate first).
    guards: Vec<(poutine::PlateGuard, Option<HandlerGuard<FixedSubsample>>)>,
}

impl Drop for EnteredPlates {
    fn drop(&mut self) {
        while let Some((p, f)) = self.guards.pop() {
            drop(p);
            drop(f);
        }
    }
}

fn plate_of(f: &CondIndepFrame) -> Plate {
    let mut p = Plate::new(&*f.name, f.full_size);
    if let Some(d) = f.dim {
        p = p.dim(d);
    }
    if f.size != f.full_size {
        p = p.subsample_size(f.size);
    }
    p
}

impl PlateSet {
    /// Draws the subsample indices of every subsampling plate (through the plate's subsample
    /// site, which the model replays).
    pub fn draw(proto: &Prototype) -> Result<PlateSet> {
        let mut indices = IndexMap::new();
        for (name, f) in &proto.plates {
            if f.size == f.full_size {
                continue;
            }
            let device = proto
                .index_devices
                .get(name)
                .copied()
                .unwrap_or(tch::Device::Cpu);
            let g = plate_of(f).device(device).enter()?;
            indices.insert(name.clone(), g.indices().shallow_clone());
        }
        Ok(PlateSet { indices })
    }

    /// Enters the plates of `site`, outermost first.
    pub fn enter(&self, site: &LatentSite) -> Result<EnteredPlates> {
        let mut guards = Vec::with_capacity(site.frames.len());
        for f in &site.frames {
            let fixed = self.indices.get(&*f.name).map(|idx| {
                FixedSubsample {
                    name: f.name.to_string(),
                    indices: idx.shallow_clone(),
                }
                .enter()
            });
            let p = plate_of(f).device(site.value.device()).enter()?;
            guards.push((p, fixed));
        }
        Ok(EnteredPlates { guards })
    }

    /// `t` (a param of `site` with `event_dim` event dims, full plate sizes) restricted to the
    /// subsample of each subsampling plate of the site.
    pub fn subsample(&self, site: &LatentSite, t: &Tensor, event_dim: usize) -> Result<Tensor> {
        let mut t = t.shallow_clone();
        for f in &site.frames {
            let Some(idx) = self.indices.get(&*f.name) else {
                continue;
            };
            if let Some(d) = LatentSite::plate_dim(f, t.dim() as i64, event_dim) {
                if t.size()[d as usize] == f.full_size {
                    let idx = idx.f_to_device(t.device())?;
                    t = t.f_index_select(d, &idx).at_site(&site.name)?;
                }
            }
        }
        Ok(t)
    }
}

/// The error for a flat-vector guide on a model with subsampled local latents.
pub(crate) fn check_no_subsampling(guide: &str, proto: &Prototype) -> Result<()> {
    for s in &proto.sites {
        if let Some(f) = s.subsampled_frame() {
            return Err(Error::Unsupported(format!(
                "{guide} supports only global latents (or local latents in plates that do not \
                 subsample), but this site is in the subsampling plate `{}` (size {}, \
                 subsample_size {}); use AutoNormal or AutoDelta",
                f.name, f.full_size, f.size
            )))
            .at_site(&s.name);
        }
    }
    Ok(())
}

/// `qs` as a tensor of shape `[len, 1, ..., 1]` with `ndim` trailing ones.
pub(crate) fn quantile_tensor(qs: &[f64], ndim: usize, like: &Tensor) -> Result<Tensor> {
    for &q in qs {
        if !(q > 0.0 && q < 1.0) {
            return Err(Error::Config(format!(
                "quantiles must lie in (0, 1), got {q}"
            )));
        }
    }
    let mut shape = vec![qs.len() as i64];
    shape.extend(std::iter::repeat_n(1, ndim));
    Ok(Tensor::f_from_slice(qs)?
        .f_to_kind(like.kind())?
        .f_to_device(like.device())?
        .f_reshape(shape.as_slice())?)
}

/// A model and the prototype traced from it on first use (shared by the per-site guides).
pub(crate) struct LazyPrototype<'a> {
    model: ModelFn<'a>,
    /// How the prototype's values are initialized (settable until the first use).
    pub(crate) init_loc_fn: InitLocFn,
    proto: RefCell<Option<Rc<Prototype>>>,
}

impl<'a> LazyPrototype<'a> {
    pub(crate) fn new(model: ModelFn<'a>, init_loc_fn: InitLocFn) -> Self {
        LazyPrototype {
            model,
            init_loc_fn,
            proto: RefCell::new(None),
        }
    }

    /// The prototype, traced from the model the first time.
    pub(crate) fn get(&self) -> Result<Rc<Prototype>> {
        if let Some(p) = self.proto.borrow().as_ref() {
            return Ok(p.clone());
        }
        let p = Rc::new(setup_prototype(&self.model, &self.init_loc_fn)?);
        *self.proto.borrow_mut() = Some(p.clone());
        Ok(p)
    }

    /// The names of the latent sites, in the model's order.
    pub(crate) fn latent_sites(&self) -> Result<Vec<String>> {
        Ok(self.get()?.sites.iter().map(|s| s.name.clone()).collect())
    }
}
