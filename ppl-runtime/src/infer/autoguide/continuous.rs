//! The flat-vector guides (Pyro's `AutoContinuous` family): every latent site is mapped to
//! unconstrained space, flattened and concatenated into one vector of `latent_dim` reals, whose
//! distribution is a diagonal, full-rank or low-rank normal (or a point mass, for the Laplace
//! approximation).
//!
//! A guide run samples the whole vector at an auxiliary site `_<Guide>_latent`, then records
//! each latent site as a point mass at its slice pushed through `biject_to(support)`, with
//! log-density `-log |det J|`.
//!
//! The flow guides ([`AutoNormalizingFlow`], [`AutoIAFNormal`]) push a standard normal over the
//! flat vector through learnable transforms ([`crate::transforms::TransformModule`]).

use std::cell::RefCell;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{
    check_no_subsampling, init_to_median, model_fn, quantile_tensor, setup_prototype, AutoGuide,
    InitLocFn, ModelFn, PlateSet, Prototype, Samples,
};
use crate::constraints::Constraint;
use crate::distributions::{
    Delta, DistRef, Distribution, DistributionExt, LowRankMultivariateNormal, MultivariateNormal,
    Normal, TransformedDistribution,
};
use crate::error::{Error, Result, ResultExt};
use crate::params::with_param_store;
use crate::poutine::{self, Handler, InferConfig};
use crate::primitives::{param, sample, sample_with, SampleOpts};
use crate::transforms::{AffineAutoregressive, TransformModuleRef};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    Diagonal,
    Mvn,
    LowRank(Option<i64>),
    Delta,
    /// A standard normal pushed through the transforms of [`Continuous::flow`].
    Flow,
}

/// Detaches the values of param sites (a flow bound for sampling with fixed weights).
struct DetachParams;

impl poutine::Messenger for DetachParams {
    fn postprocess(&mut self, msg: &mut poutine::Msg) -> Result<()> {
        if msg.kind == poutine::SiteKind::Param {
            if let Some(v) = &msg.value {
                msg.value = Some(v.f_detach()?);
            }
        }
        Ok(())
    }
}

/// What [`NeuTraReparam`](crate::infer::reparam::NeuTraReparam) needs of a trained flow guide.
pub struct FlowParts {
    /// The guide's prefix.
    pub prefix: String,
    /// The length of the flat unconstrained latent vector.
    pub latent_dim: i64,
    /// Its dtype.
    pub kind: Kind,
    /// Its device.
    pub device: tch::Device,
    /// The flow, bound at the params' current values ([`TransformModule::bind_exact`]), first
    /// applied first.
    ///
    /// [`TransformModule::bind_exact`]: crate::transforms::TransformModule::bind_exact
    pub transforms: Vec<crate::transforms::TransformRef>,
    /// The latent sites' slices of the flat vector.
    pub sites: Vec<FlowSite>,
}

/// A latent site's slice of a flow guide's flat vector.
pub struct FlowSite {
    /// The site.
    pub name: String,
    /// Where its unconstrained values start.
    pub offset: i64,
    /// How many there are.
    pub numel: i64,
    /// Their shape.
    pub shape: Vec<i64>,
    /// `biject_to(support)`.
    pub transform: crate::transforms::TransformRef,
    /// Whether the support is the reals.
    pub is_real: bool,
}

/// A flow guide ([`AutoNormalizingFlow`], [`AutoIAFNormal`]).
pub trait FlowGuide {
    /// The flow at the params' current values and the sites' slices.
    fn flow_parts(&self) -> Result<FlowParts>;
}

/// Makes the transforms of a flow guide from its prefix and the latent dimension.
pub type FlowFactory = Rc<dyn Fn(&str, i64) -> Result<Vec<TransformModuleRef>>>;

/// The prototype with each site's slice of the flat vector.
struct Flat {
    proto: Prototype,
    /// `(offset, numel, unconstrained shape)` per site.
    slices: Vec<(i64, i64, Vec<i64>)>,
    latent_dim: i64,
    init_loc: Tensor,
}

struct Continuous<'a> {
    model: ModelFn<'a>,
    init_loc_fn: InitLocFn,
    init_scale: f64,
    prefix: String,
    family: Family,
    flat: RefCell<Option<Rc<Flat>>>,
    /// The transforms' maker (flow guides).
    flow: Option<FlowFactory>,
    /// The transforms, made at the first call.
    modules: RefCell<Option<Rc<Vec<TransformModuleRef>>>>,
}

impl<'a> Continuous<'a> {
    fn new(model: ModelFn<'a>, prefix: &str, family: Family) -> Self {
        Continuous {
            model,
            init_loc_fn: init_to_median(),
            init_scale: 0.1,
            prefix: prefix.into(),
            family,
            flat: RefCell::new(None),
            flow: None,
            modules: RefCell::new(None),
        }
    }

    /// The flow's transforms (made on first use).
    fn modules(&self, flat: &Flat) -> Result<Rc<Vec<TransformModuleRef>>> {
        if let Some(m) = self.modules.borrow().as_ref() {
            return Ok(m.clone());
        }
        let make = self.flow.as_ref().ok_or_else(|| {
            Error::Internal(format!("{}: a flow guide without transforms", self.prefix))
        })?;
        let m = Rc::new(make(&self.prefix, flat.latent_dim)?);
        *self.modules.borrow_mut() = Some(m.clone());
        Ok(m)
    }

    fn flow_parts(&self) -> Result<FlowParts> {
        let flat = self.flat()?;
        let opts = (flat.init_loc.kind(), flat.init_loc.device());
        // Fixed weights (detached), so a compiled potential may hold them as constants.
        let modules = self.modules(&flat)?;
        let transforms = DetachParams.run(|| {
            modules
                .iter()
                .map(|m| m.bind_exact(opts))
                .collect::<Result<Vec<_>>>()
        })?;
        let sites = flat
            .proto
            .sites
            .iter()
            .zip(&flat.slices)
            .map(|(s, (offset, numel, shape))| FlowSite {
                name: s.name.clone(),
                offset: *offset,
                numel: *numel,
                shape: shape.clone(),
                transform: s.transform.clone(),
                is_real: s.is_real,
            })
            .collect();
        Ok(FlowParts {
            prefix: self.prefix.clone(),
            latent_dim: flat.latent_dim,
            kind: opts.0,
            device: opts.1,
            transforms,
            sites,
        })
    }

    fn no_closed_form(&self, what: &str) -> Error {
        Error::Unsupported(format!(
            "{}: a normalizing flow has no closed-form {what}; draw from the guide (Predictive) \
             and summarize the draws",
            self.prefix
        ))
    }

    fn flat(&self) -> Result<Rc<Flat>> {
        if let Some(f) = self.flat.borrow().as_ref() {
            return Ok(f.clone());
        }
        let proto = setup_prototype(&self.model, &self.init_loc_fn)?;
        check_no_subsampling(&self.prefix, &proto)?;
        let mut slices = Vec::with_capacity(proto.sites.len());
        let mut parts = Vec::with_capacity(proto.sites.len());
        let mut off = 0;
        for s in &proto.sites {
            let n = s.unconstrained.numel() as i64;
            slices.push((off, n, s.unconstrained.size()));
            parts.push(s.unconstrained.f_reshape([-1])?.f_to_kind(Kind::Float)?);
            off += n;
        }
        if parts.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the model has no latent sample sites",
                self.prefix
            )));
        }
        let init_loc = Tensor::f_cat(&parts, 0)?;
        let f = Rc::new(Flat {
            proto,
            slices,
            latent_dim: off,
            init_loc,
        });
        *self.flat.borrow_mut() = Some(f.clone());
        Ok(f)
    }

    fn name(&self, p: &str) -> String {
        format!("{}.{p}", self.prefix)
    }

    fn loc(&self, flat: &Flat) -> Result<Tensor> {
        let init = flat.init_loc.shallow_clone();
        param(
            self.name("loc"),
            Some(|| Ok(init)),
            Constraint::Real,
            Some(1),
        )
    }

    fn scale(&self, flat: &Flat, init: f64) -> Result<Tensor> {
        let like = flat.init_loc.shallow_clone();
        param(
            self.name("scale"),
            Some(|| Ok(like.f_full_like(init)?)),
            Constraint::Positive,
            Some(1),
        )
    }

    fn rank(&self, flat: &Flat, rank: Option<i64>) -> i64 {
        rank.unwrap_or_else(|| ((flat.latent_dim as f64).sqrt().round() as i64).max(1))
    }

    /// `(loc, scale_tril)` of the full-rank family.
    fn scale_tril(&self, flat: &Flat) -> Result<Tensor> {
        let scale = self.scale(flat, self.init_scale)?;
        let d = flat.latent_dim;
        let opts = (flat.init_loc.kind(), flat.init_loc.device());
        let unit = param(
            self.name("scale_tril"),
            Some(|| Ok(Tensor::f_eye(d, opts)?)),
            Constraint::Real,
            Some(2),
        )?;
        let unit = unit.f_tril(-1)?.f_add(&Tensor::f_eye(d, opts)?)?;
        Ok(scale.f_unsqueeze(-1)?.f_mul(&unit)?)
    }

    fn cov_factor_and_diag(&self, flat: &Flat, rank: Option<i64>) -> Result<(Tensor, Tensor)> {
        let scale = self.scale(flat, 0.5f64.sqrt() * self.init_scale)?;
        let r = self.rank(flat, rank);
        let d = flat.latent_dim;
        let opts = (flat.init_loc.kind(), flat.init_loc.device());
        let w = param(
            self.name("cov_factor"),
            Some(|| Ok(Tensor::f_randn([d, r], opts)?.f_div_scalar((r as f64).sqrt())?)),
            Constraint::Real,
            Some(2),
        )?;
        Ok((w.f_mul(&scale.f_unsqueeze(-1)?)?, scale.f_mul(&scale)?))
    }

    fn posterior(&self) -> Result<DistRef> {
        let flat = self.flat()?;
        if self.family == Family::Flow {
            let opts = (flat.init_loc.kind(), flat.init_loc.device());
            let zeros = Tensor::f_zeros([flat.latent_dim], opts)?;
            let base = Normal::new(&zeros, &zeros.f_ones_like()?)?
                .to_event(1)?
                .boxed();
            let transforms = self
                .modules(&flat)?
                .iter()
                .map(|m| m.bind(opts))
                .collect::<Result<Vec<_>>>()?;
            return Ok(TransformedDistribution::new(base, transforms)?.boxed());
        }
        let loc = self.loc(&flat)?;
        Ok(match self.family {
            Family::Diagonal => {
                let scale = self.scale(&flat, self.init_scale)?;
                Normal::new(&loc, &scale)?.to_event(1)?.boxed()
            }
            Family::Mvn => {
                MultivariateNormal::from_scale_tril(&loc, &self.scale_tril(&flat)?)?.boxed()
            }
            Family::LowRank(rank) => {
                let (w, d) = self.cov_factor_and_diag(&flat, rank)?;
                LowRankMultivariateNormal::new(&loc, &w, &d)?.boxed()
            }
            Family::Delta => Delta::new(&loc, 1)?.boxed(),
            Family::Flow => unreachable!("handled above"),
        })
    }

    /// The marginal standard deviations of the flat vector.
    fn marginal_scale(&self, flat: &Flat) -> Result<Tensor> {
        Ok(match self.family {
            Family::Diagonal => self.scale(flat, self.init_scale)?,
            Family::Mvn => self
                .scale_tril(flat)?
                .f_square()?
                .f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?
                .f_sqrt()?,
            Family::LowRank(rank) => {
                let (w, d) = self.cov_factor_and_diag(flat, rank)?;
                w.f_square()?
                    .f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?
                    .f_add(&d)?
                    .f_sqrt()?
            }
            Family::Delta => flat.init_loc.f_zeros_like()?,
            Family::Flow => return Err(self.no_closed_form("marginal scale")),
        })
    }

    /// Splits a flat vector (any leading batch dims) into per-site unconstrained values.
    ///
    /// Leading batch dims come from plates outside the guide (vectorized particles, at dims
    /// left of the model's plates); their trailing size-1 dims stand for the model's plate dims
    /// and are dropped where the site has batch dims of its own.
    fn unpack(&self, flat: &Flat, latent: &Tensor) -> Result<Vec<Tensor>> {
        let batch = &latent.size()[..latent.dim() - 1];
        let ones = batch.iter().rev().take_while(|&&b| b == 1).count();
        flat.slices
            .iter()
            .zip(&flat.proto.sites)
            .map(|((off, n, shape), site)| {
                let own = shape.len().saturating_sub(site.uevent_dim).min(ones);
                let mut s = batch[..batch.len() - own].to_vec();
                s.extend_from_slice(shape);
                Ok(latent.f_narrow(-1, *off, *n)?.f_reshape(s.as_slice())?)
            })
            .collect()
    }

    fn call(&self) -> Result<Samples> {
        let flat = self.flat()?;
        let q = self.posterior()?;
        let latent = sample_with(
            format!("_{}_latent", self.prefix),
            q,
            SampleOpts {
                infer: Some(InferConfig {
                    is_auxiliary: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?;
        let plates = PlateSet::draw(&flat.proto)?;
        let mut out = Samples::new();
        for (site, u) in flat.proto.sites.iter().zip(self.unpack(&flat, &latent)?) {
            let (value, log_density) = site.forward_with_log_density(&u)?;
            let _entered = plates.enter(site)?;
            let d = Delta::new(&value, site.event_dim)
                .at_site(&site.name)?
                .with_log_density(&log_density)
                .at_site(&site.name)?;
            out.insert(site.name.clone(), sample(site.name.clone(), d, None)?);
        }
        Ok(out)
    }

    fn median(&self) -> Result<Samples> {
        if self.family == Family::Flow {
            return Err(self.no_closed_form("median"));
        }
        let _ng = tch::no_grad_guard();
        let flat = self.flat()?;
        let loc = self.loc(&flat)?;
        let mut out = Samples::new();
        for (site, u) in flat.proto.sites.iter().zip(self.unpack(&flat, &loc)?) {
            out.insert(site.name.clone(), site.forward(&u)?.f_detach()?);
        }
        Ok(out)
    }

    fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        if self.family == Family::Flow {
            return Err(self.no_closed_form("quantiles"));
        }
        let _ng = tch::no_grad_guard();
        let flat = self.flat()?;
        let loc = self.loc(&flat)?;
        let scale = self.marginal_scale(&flat)?;
        let q = quantile_tensor(qs, 1, &loc)?;
        let u = if self.family == Family::Delta {
            loc.f_unsqueeze(0)?
                .f_expand([qs.len() as i64, flat.latent_dim].as_slice(), false)?
        } else {
            Normal::new(&loc, &scale)?.icdf(&q)?
        };
        let mut out = Samples::new();
        for (site, u) in flat.proto.sites.iter().zip(self.unpack(&flat, &u)?) {
            out.insert(site.name.clone(), site.forward(&u)?.f_detach()?);
        }
        Ok(out)
    }
}

macro_rules! flat_guide {
    ($(#[$doc:meta])* $name:ident, $family:expr) => {
        $(#[$doc])*
        pub struct $name<'a>(Continuous<'a>);

        impl<'a> $name<'a> {
            /// The guide of `model` (initialized with [`init_to_median`], scale 0.1).
            pub fn new<R>(model: impl FnMut() -> Result<R> + 'a) -> Self {
                $name(Continuous::new(model_fn(model), stringify!($name), $family))
            }

            /// The initial scale (default 0.1). (The flow guides have none: they start from
            /// their transforms' initialization.)
            pub fn init_scale(mut self, scale: f64) -> Self {
                self.0.init_scale = scale;
                self
            }
        }

        flat_guide_methods!($name);
    };
}

macro_rules! flat_guide_methods {
    ($name:ident) => {
        impl<'a> $name<'a> {
            /// Uses `f` to initialize the loc (before the first call). For the flow guides, which
            /// have no loc, it only gives the values the model runs with while the guide finds its
            /// latent sites (as in Pyro).
            pub fn init_loc_fn(mut self, f: InitLocFn) -> Self {
                self.0.init_loc_fn = f;
                self
            }

            /// The prefix of the param and latent-site names (default: the type's name).
            pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
                self.0.prefix = prefix.into();
                self
            }

            /// Runs the guide once: samples every latent site and returns the values.
            pub fn call(&self) -> Result<Samples> {
                self.0.call()
            }

            /// The posterior median of each latent site (the transformed loc).
            pub fn median(&self) -> Result<Samples> {
                self.0.median()
            }

            /// Marginal posterior quantiles of each latent site, `[qs.len(), ...site shape]`.
            pub fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
                self.0.quantiles(qs)
            }

            /// The distribution of the flat unconstrained latent vector.
            pub fn get_posterior(&self) -> Result<DistRef> {
                self.0.posterior()
            }

            /// The length of the flat unconstrained latent vector.
            pub fn latent_dim(&self) -> Result<i64> {
                Ok(self.0.flat()?.latent_dim)
            }

            /// The latent sites with their slices of the flat vector:
            /// `(name, offset, length)`, in the model's order.
            pub fn latent_slices(&self) -> Result<Vec<(String, i64, i64)>> {
                let f = self.0.flat()?;
                Ok(f.proto
                    .sites
                    .iter()
                    .zip(&f.slices)
                    .map(|(s, (o, n, _))| (s.name.clone(), *o, *n))
                    .collect())
            }
        }

        impl AutoGuide for $name<'_> {
            fn call(&self) -> Result<Samples> {
                self.0.call()
            }
            fn median(&self) -> Result<Samples> {
                self.0.median()
            }
            fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
                self.0.quantiles(qs)
            }
        }
    };
}

flat_guide!(
    /// A diagonal normal over the flat unconstrained latent vector (Pyro's
    /// `AutoDiagonalNormal`); params `AutoDiagonalNormal.loc` and `AutoDiagonalNormal.scale`.
    /// Only global latents, or local latents in plates that do not subsample.
    AutoDiagonalNormal,
    Family::Diagonal
);

flat_guide!(
    /// A full-covariance normal over the flat unconstrained latent vector (Pyro's
    /// `AutoMultivariateNormal`): `scale_tril = diag(scale) · (I + strictly_lower(scale_tril))`
    /// with params `AutoMultivariateNormal.loc`, `.scale` and `.scale_tril`. Only global
    /// latents, or local latents in plates that do not subsample.
    AutoMultivariateNormal,
    Family::Mvn
);

flat_guide!(
    /// A low-rank plus diagonal normal over the flat unconstrained latent vector (Pyro's
    /// `AutoLowRankMultivariateNormal`): covariance `W Wᵀ + diag(scale²)` with
    /// `W = cov_factor · diag(scale)` (params `.loc`, `.scale`, `.cov_factor`); the rank
    /// defaults to `round(sqrt(latent_dim))`. Only global latents, or local latents in plates
    /// that do not subsample.
    AutoLowRankMultivariateNormal,
    Family::LowRank(None)
);

flat_guide!(
    /// The Laplace approximation (Pyro's `AutoLaplaceApproximation`): fit it like an
    /// [`super::AutoDelta`] (a point mass at `AutoLaplaceApproximation.loc`, the MAP in
    /// unconstrained space), then call
    /// [`laplace_approximation`](AutoLaplaceApproximation::laplace_approximation) for an
    /// [`AutoMultivariateNormal`] centred there with the inverse Hessian of the negative log
    /// joint as covariance. Only global latents, or local latents in plates that do not
    /// subsample.
    AutoLaplaceApproximation,
    Family::Delta
);

/// A normalizing-flow guide (Pyro's `AutoNormalizingFlow`): a standard normal over the flat
/// unconstrained latent vector pushed through learnable transforms
/// ([`TransformModule`](crate::transforms::TransformModule)s, applied in order), which
/// `init_transform_fn(prefix, latent_dim)` makes at the first call. Only global latents, or local
/// latents in plates that do not subsample. `median` and `quantiles` have no closed form and are
/// errors; draw from the guide instead.
///
/// ```
/// use std::rc::Rc;
/// use ppl::prelude::*;
/// use ppl::infer::AutoNormalizingFlow;
/// use ppl::transforms::{Spline, TransformModuleRef};
///
/// #[model]
/// fn model() -> ppl::Result<()> {
///     sample!("x", Normal::new(1.0, 0.5)?);
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// clear_param_store();
/// let guide = AutoNormalizingFlow::new(model, |prefix: &str, dim: i64| {
///     let spline: TransformModuleRef = Rc::new(Spline::new(format!("{prefix}.0"), dim));
///     Ok(vec![spline])
/// });
/// let adam = Adam::new(AdamConfig { lr: 0.01, ..Default::default() });
/// let mut svi = Svi::new(model, || guide.call(), adam, TraceElbo::default());
/// svi.run(10)?;
/// # Ok(()) }
/// ```
pub struct AutoNormalizingFlow<'a>(Continuous<'a>);

impl<'a> AutoNormalizingFlow<'a> {
    /// The flow guide of `model` with the transforms `init_transform_fn(prefix, latent_dim)`
    /// makes (name their params under `prefix`, the guide's, `AutoNormalizingFlow` by default).
    pub fn new<R>(
        model: impl FnMut() -> Result<R> + 'a,
        init_transform_fn: impl Fn(&str, i64) -> Result<Vec<TransformModuleRef>> + 'static,
    ) -> Self {
        let mut c = Continuous::new(model_fn(model), "AutoNormalizingFlow", Family::Flow);
        c.flow = Some(Rc::new(init_transform_fn));
        AutoNormalizingFlow(c)
    }
}

flat_guide_methods!(AutoNormalizingFlow);

impl FlowGuide for AutoNormalizingFlow<'_> {
    fn flow_parts(&self) -> Result<FlowParts> {
        self.0.flow_parts()
    }
}

/// An inverse-autoregressive-flow guide (Pyro's `AutoIAFNormal`): a standard normal over the flat
/// unconstrained latent vector pushed through `num_transforms` (default 1)
/// [`AffineAutoregressive`] flows with one hidden layer of `hidden_dim` units (default
/// `3 · latent_dim + 1`, as Pyro), each with its own random order. Params
/// `AutoIAFNormal.transforms.{i}.arn.layers.{j}.{weight,bias}`. Only global latents, or local
/// latents in plates that do not subsample.
pub struct AutoIAFNormal<'a>(Continuous<'a>, IafConfig);

/// The settings of [`AutoIAFNormal`]'s flows.
#[derive(Clone, Debug, Default)]
struct IafConfig {
    hidden_dims: Option<Vec<i64>>,
    num_transforms: usize,
}

impl IafConfig {
    fn factory(&self) -> FlowFactory {
        let config = self.clone();
        Rc::new(move |prefix: &str, d: i64| {
            let hidden = config
                .hidden_dims
                .clone()
                .unwrap_or_else(|| vec![3 * d + 1]);
            (0..config.num_transforms.max(1))
                .map(|i| {
                    let name = format!("{prefix}.transforms.{i}");
                    let f = AffineAutoregressive::new(&name, d, &hidden)?;
                    Ok(Rc::new(f) as TransformModuleRef)
                })
                .collect()
        })
    }
}

impl<'a> AutoIAFNormal<'a> {
    /// The IAF guide of `model`.
    pub fn new<R>(model: impl FnMut() -> Result<R> + 'a) -> Self {
        let config = IafConfig {
            hidden_dims: None,
            num_transforms: 1,
        };
        let mut c = Continuous::new(model_fn(model), "AutoIAFNormal", Family::Flow);
        c.flow = Some(config.factory());
        AutoIAFNormal(c, config)
    }

    /// The hidden layer sizes of each flow's network (before the first call).
    pub fn hidden_dims(mut self, dims: &[i64]) -> Self {
        self.1.hidden_dims = Some(dims.to_vec());
        self.0.flow = Some(self.1.factory());
        self
    }

    /// The number of stacked flows (before the first call).
    pub fn num_transforms(mut self, n: usize) -> Self {
        self.1.num_transforms = n.max(1);
        self.0.flow = Some(self.1.factory());
        self
    }
}

flat_guide_methods!(AutoIAFNormal);

impl FlowGuide for AutoIAFNormal<'_> {
    fn flow_parts(&self) -> Result<FlowParts> {
        self.0.flow_parts()
    }
}

impl AutoLowRankMultivariateNormal<'_> {
    /// The rank of the covariance factor (before the first call).
    pub fn rank(mut self, rank: i64) -> Self {
        self.0.family = Family::LowRank(Some(rank.max(1)));
        self
    }
}

impl AutoMultivariateNormal<'_> {
    /// The lower Cholesky factor of the covariance of the flat latent vector.
    pub fn scale_tril(&self) -> Result<Tensor> {
        let flat = self.0.flat()?;
        self.0.scale_tril(&flat)
    }

    /// The covariance of the flat latent vector.
    pub fn covariance(&self) -> Result<Tensor> {
        let l = self.scale_tril()?;
        Ok(l.f_matmul(&l.f_transpose(-2, -1)?)?)
    }

    /// The loc of the flat latent vector.
    pub fn loc(&self) -> Result<Tensor> {
        let flat = self.0.flat()?;
        self.0.loc(&flat)
    }
}

impl<'a> AutoLaplaceApproximation<'a> {
    /// The Hessian of the negative log joint density (in unconstrained space, including the
    /// transforms' log-Jacobians) at the current loc.
    pub fn hessian(&self) -> Result<Tensor> {
        let flat = self.0.flat()?;
        let loc = tch::no_grad(|| self.0.loc(&flat))?;
        let x = (&loc.f_detach()? * 1.0).set_requires_grad(true);
        let data = poutine::data([(self.0.name("loc"), x.shallow_clone())]);
        let (_, mut gtr) = poutine::trace(|| poutine::substitute(data, || self.0.call()))?;
        let guide_lp = gtr.log_prob_sum()?;
        let gtr = Rc::new(gtr);
        let mut model = self.0.model.try_borrow_mut().map_err(|_| {
            Error::Config("laplace_approximation: the model is already running".into())
        })?;
        let (_, mut mtr) = poutine::trace(|| poutine::replay(gtr.clone(), &mut *model))?;
        drop(model);
        let loss = guide_lp.f_sub(&mtr.log_prob_sum()?)?;
        let grads = Tensor::f_run_backward(&[&loss], &[&x], true, true)?;
        let g = grads
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("laplace_approximation: no gradient".into()))?;
        let d = flat.latent_dim;
        let mut rows = Vec::with_capacity(d as usize);
        for i in 0..d {
            let gi = g.f_select(0, i)?;
            let row = if gi.requires_grad() {
                Tensor::f_run_backward(&[&gi], &[&x], true, false)
                    .map_err(|e| {
                        Error::Invalid(format!(
                            "laplace_approximation: row {i} of the Hessian: {e}"
                        ))
                    })?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Internal("laplace_approximation: no Hessian".into()))?
            } else {
                x.f_zeros_like()?
            };
            rows.push(row.f_detach()?);
        }
        let h = Tensor::f_stack(&rows, 0)?;
        Ok(h.f_add(&h.f_transpose(0, 1)?)?.f_mul_scalar(0.5)?)
    }

    /// An [`AutoMultivariateNormal`] of the same model centred at the current loc (the MAP after
    /// fitting) with covariance the inverse Hessian of the negative log joint there. Its params
    /// are written to the store under the `AutoMultivariateNormal` names.
    pub fn laplace_approximation(&self) -> Result<AutoMultivariateNormal<'a>> {
        let flat = self.0.flat()?;
        let h = self.hessian()?;
        let cov = h.f_inverse()?;
        let l = cov.f_linalg_cholesky(false).map_err(|e| {
            Error::Invalid(format!(
                "laplace_approximation: the Hessian at the loc is not positive definite (is the \
                 loc a local maximum of the joint density?): {e}"
            ))
        })?;
        let loc = tch::no_grad(|| self.0.loc(&flat))?.f_detach()?;
        let guide = AutoMultivariateNormal(Continuous {
            model: self.0.model.clone(),
            init_loc_fn: self.0.init_loc_fn.clone(),
            init_scale: self.0.init_scale,
            prefix: "AutoMultivariateNormal".into(),
            family: Family::Mvn,
            flat: RefCell::new(None),
            flow: None,
            modules: RefCell::new(None),
        });
        let share = Flat {
            proto: super::Prototype {
                sites: flat
                    .proto
                    .sites
                    .iter()
                    .map(|s| super::LatentSite {
                        name: s.name.clone(),
                        value: s.value.shallow_clone(),
                        unconstrained: s.unconstrained.shallow_clone(),
                        support: s.support.clone(),
                        transform: s.transform.clone(),
                        event_dim: s.event_dim,
                        uevent_dim: s.uevent_dim,
                        frames: s.frames.clone(),
                        is_real: s.is_real,
                    })
                    .collect(),
                plates: flat.proto.plates.clone(),
                index_devices: flat.proto.index_devices.clone(),
            },
            slices: flat.slices.clone(),
            latent_dim: flat.latent_dim,
            init_loc: loc.shallow_clone(),
        };
        *guide.0.flat.borrow_mut() = Some(Rc::new(share));
        let scale = l.f_diagonal(0, 0, 1)?;
        let unit = l.f_div(&scale.f_unsqueeze(-1)?)?;
        with_param_store(|ps| -> Result<()> {
            ps.set(&guide.0.name("loc"), &loc, Constraint::Real, Some(1))?;
            ps.set(
                &guide.0.name("scale"),
                &scale,
                Constraint::Positive,
                Some(1),
            )?;
            ps.set(
                &guide.0.name("scale_tril"),
                &unit,
                Constraint::Real,
                Some(2),
            )?;
            Ok(())
        })?;
        Ok(guide)
    }

    /// The current loc (the MAP in unconstrained space after fitting).
    pub fn loc(&self) -> Result<Tensor> {
        let flat = self.0.flat()?;
        self.0.loc(&flat)
    }
}
