//! Bayesian modules (Pyro's `PyroModule`, `PyroSample`, `PyroParam`).
//!
//! A [`PyroModule`] wraps a struct of `tch::nn` layers. Each run of the model, every tensor of
//! the network ([`Parametrized`]) is either drawn at a sample site with a prior
//! ([`PyroModule::sample`], Pyro's `PyroSample`) or read at a param site
//! ([`PyroModule::param`], Pyro's `PyroParam`; the default, as `pyro.module` registers every
//! parameter), named by its path in the network (`"fc1.weight"`, under the module's name when it
//! has one). The network then runs with those tensors in place of its own, and gets its own back
//! afterwards. So guides and autoguides see the weights as ordinary sites (`AutoNormal` on a
//! Bayesian MLP just works), and `poutine::lift` turns the param sites into sample sites.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tch::{nn, Tensor};

use crate::constraints::Constraint;
use crate::distributions::{DistRef, Distribution, Normal};
use crate::error::{Error, Result, ResultExt};
use crate::primitives::{param, sample};

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The tensors of a network, by path: what [`PyroModule`] draws or reads each run. Implemented
/// for `tch::nn`'s layers (`Linear`: `weight`, `bias`; convolutions; `Embedding`: `weight`;
/// `LayerNorm`, `BatchNorm`, `GroupNorm`: `weight`, `bias`), tensors, `Vec`s (by index) and
/// `Option`s; `#[derive(Parametrized)]` implements it for a struct of such fields (field names
/// become path segments; `#[pyro(skip)]` leaves a field out).
pub trait Parametrized {
    /// Calls `f` with the path of each tensor (`prefix` joined with its own path) and the tensor.
    fn visit_params(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
    ) -> Result<()>;
}

impl Parametrized for Tensor {
    fn visit_params(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        f(prefix, self)
    }
}

impl<T: Parametrized> Parametrized for Option<T> {
    fn visit_params(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        match self {
            Some(t) => t.visit_params(prefix, f),
            None => Ok(()),
        }
    }
}

impl<T: Parametrized> Parametrized for Vec<T> {
    fn visit_params(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        for (i, t) in self.iter_mut().enumerate() {
            t.visit_params(&join(prefix, &i.to_string()), f)?;
        }
        Ok(())
    }
}

macro_rules! weight_bias {
    ($($t:ty => $w:ident, $b:ident);* $(;)?) => {
        $(impl Parametrized for $t {
            fn visit_params(
                &mut self,
                prefix: &str,
                f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
            ) -> Result<()> {
                self.$w.visit_params(&join(prefix, "weight"), f)?;
                self.$b.visit_params(&join(prefix, "bias"), f)
            }
        })*
    };
}

weight_bias! {
    nn::Linear => ws, bs;
    nn::Conv1D => ws, bs;
    nn::Conv2D => ws, bs;
    nn::Conv3D => ws, bs;
    nn::ConvTranspose1D => ws, bs;
    nn::ConvTranspose2D => ws, bs;
    nn::ConvTranspose3D => ws, bs;
    nn::LayerNorm => ws, bs;
    nn::BatchNorm => ws, bs;
    nn::GroupNorm => ws, bs;
}

impl Parametrized for nn::Embedding {
    fn visit_params(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        f(&join(prefix, "weight"), &mut self.ws)
    }
}

/// A prior made from the shape of the tensor it replaces.
pub type PriorFn = Rc<dyn Fn(&[i64]) -> Result<DistRef>>;

/// How a network tensor enters the model.
#[derive(Clone)]
pub enum PyroSite {
    /// A sample site with this prior (Pyro's `PyroSample`); the prior must draw the tensor's shape.
    Sample(PriorFn),
    /// A param site with this constraint, initialized with the network's own value (Pyro's
    /// `PyroParam`).
    Param(Constraint),
}

/// A Bayesian module (Pyro's `PyroModule`): a network whose tensors are sample or param sites.
///
/// ```
/// use ppl::nn::{PyroModule, Parametrized};
/// use ppl::prelude::*;
/// use ppl::tch::nn::{self, Module};
///
/// #[derive(Debug, Parametrized)]
/// struct Mlp {
///     fc1: nn::Linear,
///     fc2: nn::Linear,
/// }
///
/// # fn main() -> ppl::Result<()> {
/// let vs = nn::VarStore::new(Device::Cpu);
/// let mlp = Mlp {
///     fc1: nn::linear(vs.root() / "fc1", 1, 8, Default::default()),
///     fc2: nn::linear(vs.root() / "fc2", 8, 1, Default::default()),
/// };
/// // Every weight and bias ~ Normal(0, 1), one site each: "fc1.weight", "fc1.bias", ...
/// let net = PyroModule::new("", mlp).normal_priors(1.0);
/// let x = Tensor::from_slice(&[0.5f32, -1.0]).reshape([2, 1]);
/// let (y, tr) = poutine::trace(|| net.call(|m| m.fc2.forward(&m.fc1.forward(&x).tanh())))?;
/// assert_eq!(y.size(), [2, 1]);
/// assert!(tr.get("fc1.weight").is_some() && tr.get("fc2.bias").is_some());
/// # Ok(()) }
/// ```
pub struct PyroModule<M> {
    name: String,
    module: RefCell<M>,
    sites: HashMap<String, PyroSite>,
    default: PyroSite,
}

impl<M: Parametrized> PyroModule<M> {
    /// The module `name` (`""` for a top-level module: sites are then named by path alone, as
    /// Pyro names a top-level `PyroModule`'s). Every tensor is a param site until told otherwise.
    pub fn new(name: impl Into<String>, module: M) -> PyroModule<M> {
        PyroModule {
            name: name.into(),
            module: RefCell::new(module),
            sites: HashMap::new(),
            default: PyroSite::Param(Constraint::Real),
        }
    }

    /// The tensor at `path` (`"fc1.weight"`) drawn from `prior` every run (Pyro's
    /// `self.fc1.weight = PyroSample(prior)`).
    pub fn sample(mut self, path: &str, prior: impl Distribution + 'static) -> Self {
        let prior: DistRef = Rc::new(prior);
        self.sites.insert(
            path.to_string(),
            PyroSite::Sample(Rc::new(move |_| Ok(prior.clone()))),
        );
        self
    }

    /// The tensor at `path` drawn from the prior `make(shape)` makes for its shape.
    pub fn sample_with(
        mut self,
        path: &str,
        make: impl Fn(&[i64]) -> Result<DistRef> + 'static,
    ) -> Self {
        self.sites
            .insert(path.to_string(), PyroSite::Sample(Rc::new(make)));
        self
    }

    /// The tensor at `path` a param with `constraint` (Pyro's `PyroParam`).
    pub fn param(mut self, path: &str, constraint: Constraint) -> Self {
        self.sites
            .insert(path.to_string(), PyroSite::Param(constraint));
        self
    }

    /// Every tensor not named otherwise drawn from the prior `make(shape)` makes.
    pub fn sample_all(mut self, make: impl Fn(&[i64]) -> Result<DistRef> + 'static) -> Self {
        self.default = PyroSite::Sample(Rc::new(make));
        self
    }

    /// Every tensor not named otherwise `Normal(0, scale)`, all its dims one event.
    pub fn normal_priors(self, scale: f64) -> Self {
        self.sample_all(move |shape| normal_prior(shape, scale))
    }

    /// The site name of the tensor at `path`.
    pub fn site_name(&self, path: &str) -> String {
        join(&self.name, path)
    }

    /// Runs `f` on the network with each tensor drawn or read for this run (in the model, or a
    /// guide), then gives the network its own tensors back.
    pub fn call<R>(&self, f: impl FnOnce(&M) -> R) -> Result<R> {
        let mut module = self.module.try_borrow_mut().map_err(|_| {
            Error::Config(format!(
                "PyroModule `{}` is already running (a recursive call?)",
                self.name
            ))
        })?;
        let mut own: Vec<(String, Tensor)> = Vec::new();
        let mut swap = |path: &str, t: &mut Tensor| -> Result<()> {
            let site = self.sites.get(path).unwrap_or(&self.default);
            let name = join(&self.name, path);
            let shape = t.size();
            let value = match site {
                PyroSite::Sample(make) => {
                    let prior = make(&shape).at_site(&name)?;
                    sample(name.clone(), prior, None)?
                }
                PyroSite::Param(c) => {
                    let init = t.f_detach()?.f_mul_scalar(1.0)?;
                    let event_dim = Some(shape.len());
                    param(name.clone(), Some(|| Ok(init)), c.clone(), event_dim)?
                }
            };
            if value.size() != shape {
                return Err(Error::Shape(format!(
                    "the network holds a tensor of shape {shape:?} here, but the site's value has \
                     shape {:?} (expand the prior to the tensor's shape, e.g. \
                     PyroModule::sample_with)",
                    value.size()
                )))
                .at_site(&name);
            }
            own.push((path.to_string(), std::mem::replace(t, value)));
            Ok(())
        };
        let visited = module.visit_params("", &mut swap).and_then(|()| {
            // A configured path the network does not have (a typo) is an error, not ignored.
            match self
                .sites
                .keys()
                .find(|p| !own.iter().any(|(q, _)| q == *p))
            {
                None => Ok(()),
                Some(p) => Err(Error::Config(format!(
                    "PyroModule `{}`: no tensor at `{p}`; the network has {}",
                    self.name,
                    own.iter()
                        .map(|(q, _)| q.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        });
        let out = visited.map(|()| f(&module));
        // Give the network its tensors back, whatever happened.
        let mut back = own.into_iter();
        let _ = module.visit_params("", &mut |path: &str, t: &mut Tensor| {
            if let Some((p, mine)) = back.next() {
                debug_assert_eq!(p, path);
                *t = mine;
            }
            Ok(())
        });
        out
    }

    /// The network itself, with its own tensors (not drawn).
    pub fn module(&self) -> std::cell::Ref<'_, M> {
        self.module.borrow()
    }
}

/// `Normal(0, scale)` expanded to `shape`, every dim an event dim.
fn normal_prior(shape: &[i64], scale: f64) -> Result<DistRef> {
    let n = Normal::new(0.0, scale)?;
    let d = n.expand(shape)?;
    Ok(if shape.is_empty() {
        d
    } else {
        Rc::new(crate::distributions::Independent::new(d, shape.len())?)
    })
}

impl<M: Parametrized> std::fmt::Debug for PyroModule<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyroModule")
            .field("name", &self.name)
            .field("sites", &self.sites.keys().collect::<Vec<_>>())
            .finish()
    }
}
