//! Reparameterizers (Pyro's `pyro.infer.reparam`), used through
//! [`poutine::reparam`](crate::poutine::reparam::reparam) with a
//! [`ReparamConfig`](crate::poutine::reparam::ReparamConfig):
//!
//! - [`LocScaleReparam`]: a location-scale site drawn partially or fully decentered (the
//!   non-centered parameterization of hierarchical models), with a learnable centeredness.
//! - [`TransformReparam`]: a site of a `TransformedDistribution` drawn from its base, then
//!   transformed.
//! - [`NeuTraReparam`]: every latent site drawn from the base space of a trained flow guide, so
//!   that HMC runs where the posterior looks like a standard normal (Hoffman et al. 2019).

use std::rc::Rc;

use tch::{Kind, Tensor};

use crate::constraints::Constraint;
use crate::distributions::{
    Cauchy, DistRef, Distribution, DistributionExt, Independent, Laplace, Normal,
    TransformedDistribution,
};
use crate::error::{Error, Result};
use crate::infer::autoguide::FlowParts;
use crate::poutine::reparam::{Reparam, ReparamSite, Scratch};
use crate::primitives::{factor, param, sample};

/// Strips `to_event` wrappers: the base distribution and the event dims they added.
fn unwrap_independent(d: &DistRef) -> (DistRef, usize) {
    let mut d = d.clone();
    let mut n = 0;
    loop {
        let inner = d
            .as_any()
            .and_then(|a| a.downcast_ref::<Independent>())
            .map(|i| (i.base().clone(), i.reinterpreted_batch_ndims()));
        match inner {
            Some((base, k)) => {
                d = base;
                n += k;
            }
            None => return (d, n),
        }
    }
}

/// The same location-scale family with other parameters.
#[derive(Clone, Copy, Debug)]
enum LocScaleFamily {
    Normal,
    Laplace,
    Cauchy,
}

impl LocScaleFamily {
    fn of(d: &DistRef) -> Option<(LocScaleFamily, Tensor, Tensor)> {
        let any = d.as_any()?;
        if let Some(n) = any.downcast_ref::<Normal>() {
            return Some((
                LocScaleFamily::Normal,
                n.loc().shallow_clone(),
                n.scale().shallow_clone(),
            ));
        }
        if let Some(n) = any.downcast_ref::<Laplace>() {
            return Some((
                LocScaleFamily::Laplace,
                n.loc().shallow_clone(),
                n.scale().shallow_clone(),
            ));
        }
        if let Some(n) = any.downcast_ref::<Cauchy>() {
            return Some((
                LocScaleFamily::Cauchy,
                n.loc().shallow_clone(),
                n.scale().shallow_clone(),
            ));
        }
        None
    }

    fn make(self, loc: &Tensor, scale: &Tensor) -> Result<DistRef> {
        Ok(match self {
            LocScaleFamily::Normal => Normal::new(loc, scale)?.boxed(),
            LocScaleFamily::Laplace => Laplace::new(loc, scale)?.boxed(),
            LocScaleFamily::Cauchy => Cauchy::new(loc, scale)?.boxed(),
        })
    }
}

/// Draws a location-scale site (`Normal`, `Laplace`, `Cauchy`, also under `to_event`) partially
/// decentered (Pyro's `LocScaleReparam`): with centeredness `c`,
/// `x_decentered ~ Family(c · loc, scale^c)` and `x = loc + scale^(1-c) (x_decentered - c · loc)`,
/// which has the site's distribution. `c = 0` is the non-centered parameterization, `c = 1` the
/// centered one. With `centered = None`, `c` is a param `{site}_centered` in `[0, 1]`
/// (initially 0.5, one per event element) that SVI learns.
#[derive(Clone, Copy, Debug)]
pub struct LocScaleReparam {
    centered: Option<f64>,
}

impl LocScaleReparam {
    /// Centeredness `Some(c)` with `c` in `[0, 1]`, or `None` to learn it.
    pub fn new(centered: Option<f64>) -> Result<LocScaleReparam> {
        if let Some(c) = centered {
            if !(0.0..=1.0).contains(&c) {
                return Err(Error::Config(format!(
                    "LocScaleReparam: centered must lie in [0, 1], got {c}"
                )));
            }
        }
        Ok(LocScaleReparam { centered })
    }
}

impl Reparam for LocScaleReparam {
    fn apply(
        &self,
        site: &ReparamSite<'_>,
        _scratch: &mut Scratch,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let event_shape = site.dist.event_shape().to_vec();
        let (base, event_dim) = unwrap_independent(site.dist);
        let (family, loc, scale) = LocScaleFamily::of(&base).ok_or_else(|| {
            Error::Unsupported(format!(
                "LocScaleReparam needs a Normal, Laplace or Cauchy site, not {}",
                base.name()
            ))
        })?;
        let c = match self.centered {
            Some(c) => Tensor::f_full([] as [i64; 0], c, (loc.kind(), loc.device()))?,
            None => {
                let opts = (loc.kind(), loc.device());
                param(
                    format!("{}_centered", site.name),
                    Some(|| Ok(Tensor::f_full(event_shape.as_slice(), 0.5, opts)?)),
                    Constraint::UnitInterval,
                    Some(event_shape.len()),
                )?
            }
        };
        let dec = family.make(&loc.f_mul(&c)?, &scale.f_pow(&c)?)?;
        let dec = if event_dim > 0 {
            dec.to_event(event_dim)?.boxed()
        } else {
            dec
        };
        let x_dec = sample(format!("{}_decentered", site.name), dec, None)?;
        let one_minus = c.f_neg()?.f_add_scalar(1.0)?;
        let value = loc.f_add(
            &scale
                .f_pow(&one_minus)?
                .f_mul(&x_dec.f_sub(&loc.f_mul(&c)?)?)?,
        )?;
        Ok((value, None))
    }
}

/// Draws a site of a [`TransformedDistribution`] (also under `to_event`) from its base
/// distribution at `{site}_base` and pushes the draw through the transforms (Pyro's
/// `TransformReparam`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TransformReparam;

impl Reparam for TransformReparam {
    fn apply(
        &self,
        site: &ReparamSite<'_>,
        _scratch: &mut Scratch,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (inner, _) = unwrap_independent(site.dist);
        let td = inner
            .as_any()
            .and_then(|a| a.downcast_ref::<TransformedDistribution>())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "TransformReparam needs a TransformedDistribution site, not {}",
                    inner.name()
                ))
            })?;
        // The base with as many event dims as the site has, less what the transforms add.
        let mut base_event = site.dist.event_dim();
        for t in td.transforms().iter().rev() {
            base_event = (base_event + t.domain_event_dim()).saturating_sub(t.codomain_event_dim());
        }
        let base = td.base_dist().clone();
        let extra = base_event.saturating_sub(base.event_dim());
        let base: DistRef = if extra > 0 {
            Rc::new(Independent::new(base, extra)?)
        } else {
            base
        };
        let mut x = sample(format!("{}_base", site.name), base, None)?;
        for t in td.transforms() {
            x = t.forward(&x)?;
        }
        Ok((x, None))
    }
}

/// Draws every latent site of a model from the base space of a trained flow guide (Pyro's
/// `NeuTraReparam`, Hoffman et al. 2019, "NeuTra-lizing bad geometry in HMC"): one shared site
/// `_{guide}_shared_latent` of `latent_dim` reals, pushed through the guide's flow into the flat
/// unconstrained latent vector, unpacked into the sites and mapped onto their supports. The
/// shared site carries no density of its own; each site keeps its density times its support's
/// Jacobian, and a factor `_{guide}_shared_latent_log_det` adds the flow's, so the model's joint
/// density pulled back to the base space is what HMC samples. Where the
/// flow fits the posterior, that density is close to a standard normal, and HMC's fixed step
/// size suits it everywhere (the funnel's neck included).
///
/// Build it from a trained [`AutoIAFNormal`](crate::infer::AutoIAFNormal) or
/// [`AutoNormalizingFlow`](crate::infer::AutoNormalizingFlow) (`NeuTraReparam::new(&guide)`),
/// reparameterize the model with `ReparamConfig::new().all(neutra)`, run MCMC on it, and map
/// the draws of the shared site back with [`NeuTraReparam::transform_samples`].
#[derive(Clone)]
pub struct NeuTraReparam {
    parts: Rc<FlowParts>,
}

impl NeuTraReparam {
    /// The reparameterizer of a trained flow guide (its params are read now, and fixed).
    pub fn new(guide: &impl crate::infer::autoguide::FlowGuide) -> Result<NeuTraReparam> {
        Ok(NeuTraReparam {
            parts: Rc::new(guide.flow_parts()?),
        })
    }

    /// The shared site's name.
    pub fn shared_site(&self) -> String {
        format!("_{}_shared_latent", self.parts.prefix)
    }

    /// `(flow(z), log |det J_flow(z)|)` for base values `z` (`[..., latent_dim]`).
    fn push(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut x = z.shallow_clone();
        let mut ladj: Option<Tensor> = None;
        for t in &self.parts.transforms {
            let y = t.forward(&x)?;
            let mut l = t.log_abs_det_jacobian(&x, &y)?;
            if t.domain_event_dim() == 0 {
                l = l.f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?;
            }
            ladj = Some(match ladj {
                None => l,
                Some(s) => s.f_add(&l)?,
            });
            x = y;
        }
        let ladj = match ladj {
            Some(l) => l,
            None => z
                .f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?
                .f_zeros_like()?,
        };
        Ok((x, ladj))
    }

    /// The sites' constrained values for draws `z` of the shared site (`[n, latent_dim]`, as
    /// MCMC returns them): one `[n, ...site shape]` tensor per latent site of the model.
    pub fn transform_samples(&self, z: &Tensor) -> Result<crate::infer::autoguide::Samples> {
        let _ng = tch::no_grad_guard();
        let (x, _) = self.push(z)?;
        let mut out = crate::infer::autoguide::Samples::new();
        for s in &self.parts.sites {
            let mut shape = x.size();
            shape.pop();
            shape.extend_from_slice(&s.shape);
            let u = x
                .f_narrow(-1, s.offset, s.numel)?
                .f_reshape(shape.as_slice())?;
            let v = if s.is_real {
                u
            } else {
                s.transform.forward(&u)?
            };
            out.insert(s.name.clone(), v);
        }
        Ok(out)
    }
}

impl Reparam for NeuTraReparam {
    fn apply(
        &self,
        site: &ReparamSite<'_>,
        scratch: &mut Scratch,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let Some(s) = self.parts.sites.iter().find(|s| s.name == site.name) else {
            return Err(Error::Invalid(format!(
                "NeuTraReparam: the guide has no latent site of this name (its sites: {})",
                self.parts
                    .sites
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let key = format!("{}\u{0}x", self.shared_site());
        if !scratch.contains_key(&key) {
            // The first site of the run: draw the shared latent, push it through the flow.
            let opts = (self.parts.kind, self.parts.device);
            let zeros = Tensor::f_zeros([self.parts.latent_dim], opts)?;
            let base = Normal::new(&zeros, &zeros.f_ones_like()?)?
                .to_event(1)?
                .mask(&Tensor::from(false))?;
            let z = sample(self.shared_site(), base.boxed(), None)?;
            let (x, ladj) = self.push(&z)?;
            // The flow's Jacobian, once per run (a factor, so no site's batch multiplies it).
            factor(format!("{}_log_det", self.shared_site()), &ladj)?;
            scratch.insert(key.clone(), x);
        }
        let x = scratch[&key].shallow_clone();
        let mut shape = x.size();
        shape.pop();
        shape.extend_from_slice(&s.shape);
        let u = x
            .f_narrow(-1, s.offset, s.numel)?
            .f_reshape(shape.as_slice())?;
        let (value, log_det) = if s.is_real {
            (u.shallow_clone(), None)
        } else {
            let v = s.transform.forward(&u)?;
            let l = s.transform.log_abs_det_jacobian(&u, &v)?;
            let extra = l.dim().saturating_sub(v.dim() - site.dist.event_dim());
            (v, Some(crate::infer::autoguide::sum_rightmost(&l, extra)?))
        };
        let mut ld = site.dist.log_prob(&value)?;
        if let Some(l) = log_det {
            ld = ld.f_add(&l)?;
        }
        Ok((value, Some(ld)))
    }
}
