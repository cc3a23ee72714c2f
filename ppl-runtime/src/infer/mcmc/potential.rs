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

use crate::constraints::Constraint;
use crate::error::{Error, Result, ResultExt};
use crate::jit::{trace_text, Program};
use crate::naming;
use crate::poutine::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::poutine::trace_struct::scale_and_mask;
use crate::poutine::{trace, EnumMessenger, Trace};
use crate::transforms::{biject_to, TransformRef};

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

fn is_scored(msg: &Msg) -> bool {
    msg.kind == SiteKind::Sample
        && !msg.infer.is_subsample
        && !msg.infer.is_deterministic
        && !msg.infer.do_not_score
}

fn numel(shape: &[i64]) -> usize {
    shape.iter().product::<i64>().max(0) as usize
}

/// Whether the bijection onto `c` is the identity (no transform or Jacobian needed).
fn is_identity(c: &Constraint) -> bool {
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

impl Default for PotentialMessenger {
    fn default() -> Self {
        PotentialMessenger {
            values: Rc::new(HashMap::new()),
            terms: Vec::new(),
            seen: 0,
            enumerated: Rc::new(Vec::new()),
        }
    }
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
    /// The compiled host program, once [`Potential::compile`] succeeded.
    program: Option<Program>,
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
            program: None,
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

    /// How many gradients were evaluated so far.
    pub fn num_grad_evals(&self) -> usize {
        self.num_grad_evals
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
    fn leaves(&self, z: &[f64]) -> Result<Vec<Tensor>> {
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
        let mut terms = self.log_density_terms(&self.split(zt)?)?;
        Ok(match terms.len() {
            0 => Tensor::f_zeros([], (self.spec.kind, self.spec.device))?,
            1 => terms.swap_remove(0),
            _ => Tensor::f_stack(&terms, 0)?.f_sum(None::<Kind>)?,
        })
    }

    /// Whether the potential runs as a compiled host program.
    pub fn is_compiled(&self) -> bool {
        self.program.is_some()
    }

    /// Compiles the potential (Pyro's `jit_compile=True`): traces the model once at `z` with
    /// libtorch's tracer and turns the recorded ops into a host [`Program`] with its own
    /// reverse-mode gradient, so that later evaluations cost no libtorch dispatch.
    ///
    /// The program is checked against libtorch's value and gradient at `z` and at two other
    /// points; a model whose ops depend on the values of its latent sites (a branch on a sampled
    /// value, say) fails the check and gets an error saying so, as does a model on a GPU, one
    /// that uses an op the compiler does not know, or one with no latent site.
    pub fn compile(&mut self, z: &[f64]) -> Result<()> {
        if self.spec.device != Device::Cpu {
            return Err(Error::Invalid(format!(
                "jit_compile: the model's values are on {:?}; compiled potentials run on the \
                 host, for models on the CPU",
                self.spec.device
            )));
        }
        self.program = None;
        let leaves = self.leaves(z)?;
        let (text, _) = trace_text(&leaves, |ins| {
            let mut terms = self.log_density_terms(ins)?;
            Ok(vec![match terms.len() {
                0 => Tensor::f_zeros([], (self.spec.kind, self.spec.device))?,
                1 => terms.swap_remove(0),
                _ => Tensor::f_stack(&terms, 0)?.f_sum(None::<Kind>)?,
            }])
        })?;
        let shapes: Vec<Vec<usize>> = self
            .maps
            .iter()
            .map(|m| {
                m.spec
                    .unconstrained_shape
                    .iter()
                    .map(|&d| d as usize)
                    .collect()
            })
            .collect();
        crate::jit::debug_print(&text);
        let program = Program::compile(&text, &shapes)?;
        // Check the program against libtorch at z and two nearby points.
        let n = z.len();
        let mut g_eager = vec![0.0; n];
        let mut g_jit = vec![0.0; n];
        for k in 0..3 {
            let zk: Vec<f64> = z
                .iter()
                .enumerate()
                .map(|(i, &x)| x + 0.3 * k as f64 * ((i + 1) as f64 * 1.7 + k as f64).sin())
                .collect();
            let u_eager = self.value_and_grad(&zk, &mut g_eager)?;
            self.num_grad_evals -= 1;
            let u_jit = self.program_value_and_grad(&program, &zk, &mut g_jit)?;
            let tol = if self.spec.kind == Kind::Double {
                1e-7
            } else {
                2e-3
            };
            let gscale = g_eager.iter().fold(1.0f64, |m, g| m.max(g.abs()));
            let value_ok =
                (u_eager - u_jit).abs() <= tol * (1.0 + u_eager.abs()) || !u_eager.is_finite();
            let grad_ok = g_eager
                .iter()
                .zip(&g_jit)
                .all(|(a, b)| (a - b).abs() <= tol * gscale || !a.is_finite());
            if !(value_ok && grad_ok) {
                return Err(Error::Invalid(format!(
                    "jit_compile: the compiled potential disagrees with libtorch (U = {u_jit} \
                     against {u_eager}, gradient {g_jit:?} against {g_eager:?}): does the model \
                     branch on the value of a latent site? Run it without jit_compile"
                )));
            }
        }
        self.program = Some(program);
        Ok(())
    }

    fn program_value_and_grad(
        &self,
        program: &Program,
        z: &[f64],
        grad: &mut [f64],
    ) -> Result<f64> {
        let parts: Vec<&[f64]> = self
            .maps
            .iter()
            .map(|m| &z[m.spec.offset..m.spec.offset + m.spec.numel])
            .collect();
        let (lp, grads) = program.value_and_grad(&parts)?;
        for (m, g) in self.maps.iter().zip(grads) {
            for (o, v) in grad[m.spec.offset..m.spec.offset + m.spec.numel]
                .iter_mut()
                .zip(g)
            {
                *o = -v;
            }
        }
        Ok(-lp)
    }

    /// `U(z)` without its gradient.
    pub fn value(&mut self, z: &[f64]) -> Result<f64> {
        if let Some(p) = &self.program {
            let parts: Vec<&[f64]> = self
                .maps
                .iter()
                .map(|m| &z[m.spec.offset..m.spec.offset + m.spec.numel])
                .collect();
            return Ok(-p.forward(&parts)?.iter().sum::<f64>());
        }
        tch::no_grad(|| {
            let zt = self.input(z, false)?;
            let lp = self.log_density_tensor(&zt)?;
            Ok(-lp.f_double_value(&[])?)
        })
    }

    /// `U(z)`, with its gradient written into `grad`.
    pub fn value_and_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        if let Some(p) = &self.program {
            if z.len() != self.spec.dim || grad.len() != self.spec.dim {
                return Err(Error::Shape(format!(
                    "the unconstrained vector has {} values, the model's latent sites {}",
                    z.len(),
                    self.spec.dim
                )));
            }
            self.num_grad_evals += 1;
            return self.program_value_and_grad(p, z, grad);
        }
        let leaves = self.leaves(z)?;
        let terms = self.log_density_terms(&leaves)?;
        self.num_grad_evals += 1;
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
            return Err(Error::Invalid("autograd returned no gradient".into()));
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

    /// The constrained values of a batch of unconstrained vectors (`n` rows of `dim` values, row
    /// after row): one tensor per site, of shape `[n] + site shape`, in float64 on the CPU.
    pub fn constrain_batch(&self, z: &[f64], n: usize) -> Result<Vec<(String, Tensor)>> {
        let dim = self.spec.dim;
        if z.len() != n * dim {
            return Err(Error::Shape(format!(
                "{} values are not {n} rows of {dim}",
                z.len()
            )));
        }
        tch::no_grad(|| {
            let all = Tensor::f_from_slice(z)?.f_reshape([n as i64, dim as i64])?;
            let mut out = Vec::with_capacity(self.maps.len());
            for m in &self.maps {
                let s = &m.spec;
                let mut shape = vec![n as i64];
                shape.extend_from_slice(&s.unconstrained_shape);
                let u = all
                    .f_narrow(1, s.offset as i64, s.numel as i64)?
                    .f_reshape(shape.as_slice())?;
                let x = match &m.transform {
                    None => u,
                    Some(t) => t.forward(&u).at_site(&s.name)?,
                };
                out.push((s.name.clone(), x));
            }
            Ok(out)
        })
    }

    /// The unconstrained vector of the given constrained values, one per latent site.
    pub fn unconstrain(&self, values: &HashMap<String, Tensor>) -> Result<Vec<f64>> {
        let mut z = vec![0.0; self.spec.dim];
        tch::no_grad(|| {
            for m in &self.maps {
                let s = &m.spec;
                let v = values.get(&s.name).ok_or_else(|| Error::MissingSite {
                    site: s.name.clone(),
                    message: "no value for this latent site".into(),
                })?;
                let v = v.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
                let u = match &m.transform {
                    None => v.shallow_clone(),
                    Some(t) => t.inverse(&v).at_site(&s.name)?,
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
