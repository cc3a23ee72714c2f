//! The potential energy of a model: minus its log joint density as a function of one flat vector
//! of unconstrained latent values.
//!
//! The model is traced once ([`ModelSpec::discover`]) to find its latent sample sites, their shapes
//! and supports. Each site is mapped to unconstrained space with [`biject_to`] of its support, and
//! the flat vector `z` is the concatenation of the unconstrained values, in execution order. Then
//!
//! ```text
//! U(z) = -( log p(x(z), data) + Σ_sites log |det ∂x/∂z| )
//! ```
//!
//! where `log p` is the model's log joint density with every latent site given its constrained
//! value `x(z)` (observed sites, plates, `scale`, `mask` and `factor` count as in any trace) and the
//! gradient comes from torch's autograd. The sampler itself works on `Vec<f64>`; each evaluation
//! builds one leaf tensor per latent site from `z`, in the model's dtype and on its device.
//!
//! Cost model: for the small models MCMC is mostly used on, an evaluation costs about one
//! microsecond per tensor op forwards and several per autograd node backwards (libtorch's engine
//! sets up thread-local state for every node), and next to nothing per value. So this module
//! adds as few graph nodes as it can: no slicing of a flat leaf, no node to add the log-density
//! terms up (they are separate roots of one backward pass).

use std::collections::HashMap;
use std::rc::Rc;

use tch::{Device, Kind, Tensor};

use super::kernel::PotentialFn;
use super::model_spec::{is_identity, ModelSpec, SiteSpec};
use crate::error::{Error, Result, ResultExt};
use crate::naming;
use crate::poutine::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::poutine::trace_struct::scale_and_mask;
use crate::poutine::{trace, EnumMessenger};
use crate::transforms::{biject_to, TransformRef};

fn is_scored(msg: &Msg) -> bool {
    msg.kind == SiteKind::Sample
        && !msg.infer.is_subsample
        && !msg.infer.is_deterministic
        && !msg.infer.do_not_score
}

/// Gives the latent sites their values and sums the log-densities of all scored sites.
struct PotentialMessenger {
    values: Rc<HashMap<String, Tensor>>,
    terms: Vec<Tensor>,
    seen: usize,
    /// Sites summed out by enumeration: left to the enum handler, and no terms collected (the
    /// contraction of the trace gives the log density).
    enumerated: Rc<Vec<String>>,
}

impl Messenger for PotentialMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind == SiteKind::Sample && !msg.is_observed && is_scored(msg) {
            if self.enumerated.contains(&msg.name) {
                msg.infer.enumerate = Some(crate::poutine::Enumerate::Parallel);
                return Ok(());
            }
            match self.values.get(&msg.name) {
                Some(v) => {
                    msg.value = Some(v.shallow_clone());
                    self.seen += 1;
                }
                None => {
                    return Err(Error::MissingSite {
                        site: msg.name.clone(),
                        message: "a latent site that the model did not have when it was first \
                                  traced: HMC and NUTS need the same latent sites in every run"
                            .into(),
                    })
                }
            }
        }
        Ok(())
    }

    fn postprocess(&mut self, msg: &mut Msg) -> Result<()> {
        if !is_scored(msg) || !self.enumerated.is_empty() {
            return Ok(());
        }
        let (Some(d), Some(v)) = (msg.dist.as_ref(), msg.value.as_ref()) else {
            return Ok(());
        };
        let lp = d.log_prob(v).at_site(&msg.name)?;
        let lp = if msg.scale != 1.0 || msg.mask.is_some() {
            scale_and_mask(&lp, msg.scale, msg.mask.as_ref()).at_site(&msg.name)?
        } else {
            lp
        };
        let lp = if lp.dim() == 0 {
            lp
        } else {
            lp.f_sum(None::<Kind>).at_site(&msg.name)?
        };
        self.terms.push(lp);
        Ok(())
    }
}

/// A site's transform, resolved once.
struct SiteMap {
    spec: SiteSpec,
    /// `None` for the identity.
    transform: Option<TransformRef>,
}

/// Minus the log joint density of a model in unconstrained space, and its gradient.
pub struct Potential<'a, R> {
    model: &'a dyn Fn() -> Result<R>,
    spec: ModelSpec,
    enumerated: Rc<Vec<String>>,
    maps: Vec<SiteMap>,
    /// Number of gradient evaluations so far.
    num_grad_evals: usize,
}

impl<'a, R> Potential<'a, R> {
    /// The potential of `model` with the latent sites described by `spec`.
    pub fn new(model: &'a dyn Fn() -> Result<R>, spec: ModelSpec) -> Result<Self> {
        let mut maps = Vec::with_capacity(spec.sites.len());
        for s in &spec.sites {
            let transform = if is_identity(&s.support) {
                None
            } else {
                Some(biject_to(&s.support).at_site(&s.name)?)
            };
            maps.push(SiteMap {
                spec: s.clone(),
                transform,
            });
        }
        Ok(Potential {
            model,
            enumerated: Rc::new(spec.enumerated.clone()),
            spec,
            maps,
            num_grad_evals: 0,
        })
    }

    /// The latent sites.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The number of unconstrained values.
    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    fn input(&self, z: &[f64], requires_grad: bool) -> Result<Tensor> {
        if z.len() != self.spec.dim {
            return Err(Error::Shape(format!(
                "the unconstrained vector has {} values, the model's latent sites {}",
                z.len(),
                self.spec.dim
            )));
        }
        let t = match self.spec.kind {
            Kind::Double => Tensor::f_from_slice(z)?,
            _ => {
                let v: Vec<f32> = z.iter().map(|&x| x as f32).collect();
                let t = Tensor::f_from_slice(&v)?;
                if self.spec.kind == Kind::Float {
                    t
                } else {
                    t.f_to_kind(self.spec.kind)?
                }
            }
        };
        let t = if self.spec.device == Device::Cpu {
            t
        } else {
            t.f_to_device(self.spec.device)?
        };
        Ok(if requires_grad {
            t.set_requires_grad(true)
        } else {
            t
        })
    }

    /// The unconstrained value of each site: views of the flat `zt`.
    fn split(&self, zt: &Tensor) -> Result<Vec<Tensor>> {
        let whole = self.maps.len() == 1;
        let mut parts = Vec::with_capacity(self.maps.len());
        for m in &self.maps {
            let s = &m.spec;
            let flat = s.unconstrained_shape.len() == 1;
            parts.push(if s.unconstrained_shape.is_empty() {
                zt.f_select(0, s.offset as i64)?
            } else if whole && flat {
                zt.shallow_clone()
            } else if flat {
                zt.f_narrow(0, s.offset as i64, s.numel as i64)?
            } else if whole {
                zt.f_view(s.unconstrained_shape.as_slice())?
            } else {
                zt.f_narrow(0, s.offset as i64, s.numel as i64)?
                    .f_view(s.unconstrained_shape.as_slice())?
            });
        }
        Ok(parts)
    }

    /// One leaf tensor (requiring grad) per site holding its unconstrained values: no autograd
    /// node between the leaves and the model, as slicing one flat leaf would add per site.
    pub(super) fn leaves(&self, z: &[f64]) -> Result<Vec<Tensor>> {
        if z.len() != self.spec.dim {
            return Err(Error::Shape(format!(
                "the unconstrained vector has {} values, the model's latent sites {}",
                z.len(),
                self.spec.dim
            )));
        }
        if self.spec.device != Device::Cpu {
            // One host-to-device copy, then detached views as leaves.
            let flat = self.input(z, false)?;
            return tch::no_grad(|| {
                self.split(&flat)?
                    .into_iter()
                    .map(|t| Ok(t.f_detach()?.set_requires_grad(true)))
                    .collect()
            });
        }
        let mut out = Vec::with_capacity(self.maps.len());
        for m in &self.maps {
            let s = &m.spec;
            let zs = &z[s.offset..s.offset + s.numel];
            let t = match self.spec.kind {
                Kind::Double => Tensor::f_from_slice(zs)?,
                k => {
                    let v: Vec<f32> = zs.iter().map(|&x| x as f32).collect();
                    let t = Tensor::f_from_slice(&v)?;
                    if k == Kind::Float {
                        t
                    } else {
                        t.f_to_kind(k)?
                    }
                }
            };
            let t = if s.unconstrained_shape.len() == 1 {
                t
            } else {
                t.f_reshape(s.unconstrained_shape.as_slice())?
            };
            out.push(t.set_requires_grad(true));
        }
        Ok(out)
    }

    /// The constrained value of each site, and the log-Jacobian terms.
    fn constrain_parts(&self, parts: &[Tensor]) -> Result<(HashMap<String, Tensor>, Vec<Tensor>)> {
        let mut values = HashMap::with_capacity(self.maps.len());
        let mut ladj = Vec::new();
        for (m, u) in self.maps.iter().zip(parts) {
            let s = &m.spec;
            let x = match &m.transform {
                None => u.shallow_clone(),
                Some(t) => {
                    let x = t.forward(u).at_site(&s.name)?;
                    let j = t.log_abs_det_jacobian(u, &x).at_site(&s.name)?;
                    ladj.push(if j.dim() == 0 {
                        j
                    } else {
                        j.f_sum(None::<Kind>)?
                    });
                    x
                }
            };
            values.insert(s.name.clone(), x);
        }
        Ok((values, ladj))
    }

    /// The scalar terms of `log p(x(z)) + log|det J|`, from the unconstrained value of each site:
    /// one per scored site and per transformed latent site.
    fn log_density_terms(&self, parts: &[Tensor]) -> Result<Vec<Tensor>> {
        let (values, mut terms) = self.constrain_parts(parts)?;
        let handler = PotentialMessenger {
            values: Rc::new(values),
            terms: Vec::new(),
            seen: 0,
            enumerated: self.enumerated.clone(),
        };
        let h = if self.enumerated.is_empty() {
            let _run = naming::new_run();
            let (_, h) = handler.run_with(|| (self.model)())?;
            h
        } else {
            // The discrete sites take all their values at once; the contraction of the trace
            // sums them out.
            let first = -(self.spec.max_plate_nesting as i64) - 1;
            let (h, mut tr) =
                trace(|| EnumMessenger::new(first)?.run(|| handler.run_with(|| (self.model)())))?;
            let (_, h) = h;
            terms.push(crate::infer::enumerate::log_joint(&mut tr)?);
            h
        };
        if h.seen != self.maps.len() {
            let names: Vec<&str> = self.maps.iter().map(|m| m.spec.name.as_str()).collect();
            return Err(Error::Invalid(format!(
                "the model sampled {} of its {} latent sites ({}) in this run: HMC and NUTS \
                 need the same latent sites in every run",
                h.seen,
                self.maps.len(),
                names.join(", ")
            )));
        }
        terms.extend(h.terms);
        Ok(terms)
    }

    /// `log p(x(z)) + log|det J|` as a scalar tensor.
    fn log_density_tensor(&self, zt: &Tensor) -> Result<Tensor> {
        self.log_density_of_parts(&self.split(zt)?)
    }

    /// `log p(x(z)) + log|det J|` as one scalar tensor, from the unconstrained value of each
    /// site (what [`super::CompiledPotential`] traces).
    pub(super) fn log_density_of_parts(&self, parts: &[Tensor]) -> Result<Tensor> {
        let mut terms = self.log_density_terms(parts)?;
        Ok(match terms.len() {
            0 => Tensor::f_zeros([], (self.spec.kind, self.spec.device))?,
            1 => terms.swap_remove(0),
            _ => Tensor::f_stack(&terms, 0)?.f_sum(None::<Kind>)?,
        })
    }

    /// `U(z)` without its gradient.
    pub fn value(&mut self, z: &[f64]) -> Result<f64> {
        tch::no_grad(|| {
            let zt = self.input(z, false)?;
            let lp = self.log_density_tensor(&zt)?;
            Ok(-lp.f_double_value(&[])?)
        })
    }

    /// `U(z)`, with its gradient written into `grad`.
    pub fn value_and_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.num_grad_evals += 1;
        self.value_and_grad_uncounted(z, grad)
    }

    /// [`Potential::value_and_grad`], not counted in [`PotentialFn::num_grad_evals`] (for
    /// checks).
    pub(super) fn value_and_grad_uncounted(&self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        let leaves = self.leaves(z)?;
        let terms = self.log_density_terms(&leaves)?;
        // The terms are separate roots of one backward pass (autograd sums their gradients):
        // no graph nodes for adding them up, which cost more than reading each value.
        let roots: Vec<&Tensor> = terms.iter().filter(|t| t.requires_grad()).collect();
        let u = if self.spec.device == Device::Cpu {
            let mut lp = 0.0;
            for t in &terms {
                lp += t.f_double_value(&[])?;
            }
            -lp
        } else {
            // One device-to-host copy rather than one per term.
            let detached = terms
                .iter()
                .map(Tensor::f_detach)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            -Tensor::f_stack(&detached, 0)?
                .f_sum(None::<Kind>)?
                .f_double_value(&[])?
        };
        if roots.is_empty() {
            grad.iter_mut().for_each(|g| *g = 0.0);
            return Ok(u);
        }
        let grads = Tensor::f_run_backward(&roots, &leaves, false, false)?;
        if grads.len() != self.maps.len() {
            return Err(Error::Internal("autograd returned no gradient".into()));
        }
        for (m, g) in self.maps.iter().zip(grads) {
            let (off, n) = (m.spec.offset, m.spec.numel);
            let out = &mut grad[off..off + n];
            let g = g.f_reshape([-1])?;
            let g = if g.device() == Device::Cpu {
                g
            } else {
                g.f_to_device(Device::Cpu)?
            };
            match g.kind() {
                Kind::Double => g.f_copy_data(out, n)?,
                Kind::Float => {
                    let mut buf = vec![0f32; n];
                    g.f_copy_data(&mut buf, n)?;
                    for (o, v) in out.iter_mut().zip(buf) {
                        *o = v as f64;
                    }
                }
                _ => g.f_to_kind(Kind::Double)?.f_copy_data(out, n)?,
            }
            // The gradient of U is minus that of the log density.
            for v in out.iter_mut() {
                *v = -*v;
            }
        }
        Ok(u)
    }
}

impl<R> PotentialFn for Potential<'_, R> {
    fn value_and_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        Potential::value_and_grad(self, z, grad)
    }

    fn num_grad_evals(&self) -> usize {
        self.num_grad_evals
    }
}
