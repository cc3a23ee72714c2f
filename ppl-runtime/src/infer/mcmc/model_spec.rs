//! Model discovery for HMC and NUTS: one traced run of the model finds its latent sample sites,
//! their shapes and supports, and lays their unconstrained values out in one flat vector (see
//! [`super::potential`] for the potential energy over that vector).

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use crate::constraints::Constraint;
use crate::error::{Error, Result, ResultExt};
use crate::poutine::{trace, Trace};
use crate::transforms::biject_to;

/// The description of one latent site: what the sampler needs to know about it. Plain data, so it
/// can be sent to the thread of each chain.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSpec {
    /// The site's name.
    pub name: String,
    /// The shape of its (constrained) value.
    pub shape: Vec<i64>,
    /// The shape of its unconstrained value.
    pub unconstrained_shape: Vec<i64>,
    /// The support of its distribution.
    pub support: Constraint,
    /// Where its unconstrained values start in the flat vector.
    pub offset: usize,
    /// How many unconstrained values it has.
    pub numel: usize,
}

/// The latent sites of a model and the dtype and device of its values.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Latent sites in execution order.
    pub sites: Vec<SiteSpec>,
    /// The total number of unconstrained values.
    pub dim: usize,
    /// The dtype of the latent values.
    pub kind: Kind,
    /// The device of the latent values.
    pub device: Device,
    /// Discrete latent sites of finite support, summed out of the potential by enumeration
    /// (not sampled by HMC/NUTS).
    pub enumerated: Vec<String>,
    /// How many plates the model nests at most: enumeration dims go left of them.
    pub max_plate_nesting: usize,
}

pub(super) fn numel(shape: &[i64]) -> usize {
    shape.iter().product::<i64>().max(0) as usize
}

/// Whether the bijection onto `c` is the identity (no transform or Jacobian needed).
pub(super) fn is_identity(c: &Constraint) -> bool {
    match c {
        Constraint::Real | Constraint::RealVector => true,
        Constraint::Independent(b, _) => is_identity(b),
        _ => false,
    }
}

impl ModelSpec {
    /// Traces `model` once (latent sites draw from their priors) and describes its latent sites.
    ///
    /// Discrete latent sites of finite support (Bernoulli, Categorical, ...) are summed out of
    /// the potential by parallel enumeration, as Pyro and NumPyro do; other discrete latent
    /// sites (a Poisson latent) are an error naming the site.
    pub fn discover<R>(model: &dyn Fn() -> Result<R>) -> Result<ModelSpec> {
        let (_, tr) = trace(model)?;
        ModelSpec::from_trace(&tr)
    }

    /// Describes the latent sites of a trace.
    pub fn from_trace(tr: &Trace) -> Result<ModelSpec> {
        // HMC needs the exact potential: a subsampling plate would make it random.
        for s in tr.iter().filter(|s| s.is_scored()) {
            if let Some(f) = s.cond_indep_stack.iter().find(|f| f.size != f.full_size) {
                return Err(Error::AtSite {
                    site: s.name.clone(),
                    source: Box::new(Error::Plate {
                        plate: f.name.to_string(),
                        message: format!(
                            "subsamples {} of {}: HMC and NUTS need the log density of all the \
                             data; drop subsample_size for MCMC",
                            f.size, f.full_size
                        ),
                    }),
                });
            }
        }
        // Missing data written as NaN makes every potential NaN: say so now, not after 100 tries
        // at an initial point.
        for s in tr.iter().filter(|s| s.is_observed) {
            let v = &s.value;
            if crate::distributions::is_float(v.kind()) && bool::try_from(v.f_isnan()?.f_any()?)? {
                return Err(Error::AtSite {
                    site: s.name.clone(),
                    source: Box::new(Error::NonFinite(
                        "the observed value holds NaN: HMC and NUTS need finite data; drop the \
                         missing entries, or mark them with obs_mask"
                            .into(),
                    )),
                });
            }
        }
        let mut sites = Vec::new();
        let mut enumerated = Vec::new();
        let mut offset = 0;
        let mut kind_device = None;
        for s in tr.stochastic_nodes() {
            let d = s.dist()?;
            let support = d.support();
            if support.is_discrete() || s.infer.enumerate.is_some() {
                if d.has_enumerate_support() {
                    enumerated.push(s.name.clone());
                    continue;
                }
                return Err(Error::Enumeration {
                    site: s.name.clone(),
                    message: format!(
                        "a latent site with the discrete distribution {} (support {support}), \
                         which has no finite support to enumerate: HMC and NUTS sample \
                         continuous sites and sum out discrete ones of finite support only; \
                         observe it, or marginalize it out of the model by hand",
                        d.name()
                    ),
                });
            }
            let t = biject_to(&support).at_site(&s.name)?;
            let shape = s.value.size();
            let unconstrained_shape = t.inverse_shape(&shape);
            let n = numel(&unconstrained_shape);
            if kind_device.is_none() {
                kind_device = Some((s.value.kind(), s.value.device()));
            }
            sites.push(SiteSpec {
                name: s.name.clone(),
                shape,
                unconstrained_shape,
                support,
                offset,
                numel: n,
            });
            offset += n;
        }
        let Some((kind, device)) = kind_device else {
            return Err(Error::Invalid(
                "the model has no latent sample sites: there is nothing for MCMC to sample".into(),
            ));
        };
        let kind = if crate::distributions::is_float(kind) {
            kind
        } else {
            Kind::Float
        };
        Ok(ModelSpec {
            sites,
            dim: offset,
            kind,
            device,
            enumerated,
            max_plate_nesting: tr.plate_nesting(),
        })
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<&SiteSpec> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The constrained values of a batch of unconstrained vectors (`n` rows of `dim` values, row
    /// after row): one tensor per site, of shape `[n] + site shape`, in float64 on the CPU.
    pub fn constrain_batch(&self, z: &[f64], n: usize) -> Result<Vec<(String, Tensor)>> {
        let dim = self.dim;
        if z.len() != n * dim {
            return Err(Error::Shape(format!(
                "{} values are not {n} rows of {dim}",
                z.len()
            )));
        }
        tch::no_grad(|| {
            let all = Tensor::f_from_slice(z)?.f_reshape([n as i64, dim as i64])?;
            let mut out = Vec::with_capacity(self.sites.len());
            for s in &self.sites {
                let mut shape = vec![n as i64];
                shape.extend_from_slice(&s.unconstrained_shape);
                let u = all
                    .f_narrow(1, s.offset as i64, s.numel as i64)?
                    .f_reshape(shape.as_slice())?;
                let x = if is_identity(&s.support) {
                    u
                } else {
                    biject_to(&s.support)
                        .at_site(&s.name)?
                        .forward(&u)
                        .at_site(&s.name)?
                };
                out.push((s.name.clone(), x));
            }
            Ok(out)
        })
    }

    /// The unconstrained vector of the given constrained values, one per latent site.
    pub fn unconstrain(&self, values: &HashMap<String, Tensor>) -> Result<Vec<f64>> {
        let mut z = vec![0.0; self.dim];
        tch::no_grad(|| {
            for s in &self.sites {
                let v = values.get(&s.name).ok_or_else(|| Error::MissingSite {
                    site: s.name.clone(),
                    message: "no value for this latent site".into(),
                })?;
                let v = v.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
                let u = if is_identity(&s.support) {
                    v.shallow_clone()
                } else {
                    biject_to(&s.support)
                        .at_site(&s.name)?
                        .inverse(&v)
                        .at_site(&s.name)?
                };
                let u = u.f_reshape([-1])?.f_contiguous()?;
                if u.size()[0] as usize != s.numel {
                    return Err(Error::AtSite {
                        site: s.name.clone(),
                        source: Box::new(Error::Shape(format!(
                            "a value of shape {:?} for a site of shape {:?}",
                            v.size(),
                            s.shape
                        ))),
                    });
                }
                u.f_copy_data(&mut z[s.offset..s.offset + s.numel], s.numel)?;
            }
            Ok::<(), Error>(())
        })?;
        Ok(z)
    }
}

/// Names of the flat coordinates: `mu`, `theta[0]`, `theta[1]`, ... (unconstrained indices).
pub fn coordinate_names(spec: &ModelSpec) -> Vec<String> {
    let mut out = Vec::with_capacity(spec.dim);
    for s in &spec.sites {
        if s.numel == 1 && s.unconstrained_shape.iter().all(|&d| d == 1) {
            out.push(s.name.clone());
        } else {
            for i in 0..s.numel {
                out.push(format!("{}[{i}]", s.name));
            }
        }
    }
    out
}
