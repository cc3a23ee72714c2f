//! Gradient clipping (`torch.nn.utils.clip_grad_norm_`, `clip_grad_value_`, Pyro's `clip_args`).

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use super::host::{host_kind, read, HostFloat};
use super::lr::{LrScheduled, LrScheduler};
use super::Optimizer;
use crate::error::{Error, Result};

/// The `ord`-norm of all of `t` seen as one vector (torch's `linalg.vector_norm`).
fn vector_norm(t: &Tensor, norm_type: f64) -> Result<Tensor> {
    Ok(t.f_reshape([-1])?
        .f_linalg_norm(norm_type, None::<&[i64]>, false, None::<Kind>)?)
}

/// Scales the gradients of `params` together so that their total `norm_type`-norm (the norm of
/// all gradients concatenated into one vector) is at most `max_norm`, and returns the total norm
/// before clipping. torch's `clip_grad_norm_` arithmetic: every gradient is multiplied by
/// `min(max_norm / (total + 1e-6), 1)`. `norm_type` may be `f64::INFINITY`. Params without a
/// gradient are skipped; with no gradient at all the norm is `0`.
pub fn clip_grad_norm(params: &[(String, Tensor)], max_norm: f64, norm_type: f64) -> Result<f64> {
    let _ng = tch::no_grad_guard();
    let grads: Vec<Tensor> = params
        .iter()
        .map(|(_, p)| p.grad())
        .filter(Tensor::defined)
        .collect();
    let Some(first) = grads.first() else {
        return Ok(0.0);
    };
    let kind = host_kind(first, first);
    if kind.is_some()
        && grads
            .iter()
            .all(|g| host_kind(g, g) == kind && g.numel() > 0)
    {
        return if kind == Some(Kind::Float) {
            host_clip::<f32>(&grads, max_norm, norm_type)
        } else {
            host_clip::<f64>(&grads, max_norm, norm_type)
        };
    }
    let device = first.device();
    let norms = grads
        .iter()
        .map(|g| {
            vector_norm(g, norm_type)?
                .f_to_device(device)
                .map_err(Error::from)
        })
        .collect::<Result<Vec<_>>>()?;
    let total = vector_norm(&Tensor::f_stack(&norms, 0)?, norm_type)?;
    // torch: `max_norm / (total + 1e-6)` is `reciprocal(total + 1e-6) * max_norm`.
    let coef = total
        .f_add_scalar(1e-6)?
        .f_reciprocal()?
        .f_mul_scalar(max_norm)?
        .f_clamp_max(1.0)?;
    for g in &grads {
        let mut g = g.shallow_clone();
        let _ = g.f_mul_(&coef.f_to_device(g.device())?)?;
    }
    Ok(total.f_double_value(&[])?)
}

/// The `p`-norm of `xs`, accumulated in f64.
fn host_norm(xs: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == f64::INFINITY {
        xs.map(f64::abs)
            .fold(0.0, |m, x| if x > m || x.is_nan() { x } else { m })
    } else if p == f64::NEG_INFINITY {
        xs.map(f64::abs).fold(
            f64::INFINITY,
            |m, x| if x < m || x.is_nan() { x } else { m },
        )
    } else if p == 0.0 {
        xs.filter(|&x| x != 0.0).count() as f64
    } else if p == 1.0 {
        xs.map(f64::abs).sum()
    } else if p == 2.0 {
        xs.map(|x| x * x).sum::<f64>().sqrt()
    } else {
        xs.map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// [`clip_grad_norm`] for small CPU gradients of one float type: the norms on the host, each
/// rounded to `T` as torch's would be; the gradients are scaled (one libtorch op each) only when
/// the coefficient is below 1.
fn host_clip<T: HostFloat>(grads: &[Tensor], max_norm: f64, norm_type: f64) -> Result<f64> {
    let mut buf: Vec<T> = Vec::new();
    let mut norms = Vec::with_capacity(grads.len());
    for g in grads {
        read(g, &mut buf)?;
        let n = host_norm(buf.iter().map(|x| x.to_f64()), norm_type);
        norms.push(T::of(n).to_f64());
    }
    let total = T::of(host_norm(norms.into_iter(), norm_type));
    // torch: `reciprocal(total + 1e-6) * max_norm`, clamped to at most 1, in `T`.
    let coef = T::of(max_norm) * (T::of(1.0) / (total + T::of(1e-6)));
    let coef = if coef.is_nan() || coef < T::of(1.0) {
        coef
    } else {
        T::of(1.0)
    };
    if coef.is_nan() || coef < T::of(1.0) {
        for g in grads {
            let mut g = g.shallow_clone();
            let _ = g.f_mul_scalar_(coef.to_f64())?;
        }
    }
    Ok(total.to_f64())
}

/// Clamps every gradient of `params` elementwise to `[-clip_value, clip_value]` (torch's
/// `clip_grad_value_`). Params without a gradient are skipped.
pub fn clip_grad_value(params: &[(String, Tensor)], clip_value: f64) -> Result<()> {
    let _ng = tch::no_grad_guard();
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_clamp_(-clip_value, clip_value)?;
        }
    }
    Ok(())
}

/// What [`Clipped`] does to the gradients before each step. The default clips nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipConfig {
    /// Rescale gradients whose norm exceeds this ([`clip_grad_norm`]; default `None`).
    pub max_norm: Option<f64>,
    /// The p of the p-norm for `max_norm` (default `2`; may be `f64::INFINITY`).
    pub norm_type: f64,
    /// Then clamp gradients elementwise to `±clip_value` ([`clip_grad_value`]; default `None`).
    pub clip_value: Option<f64>,
    /// Clip the norm of each param's gradient on its own, as Pyro's `clip_args` do (Pyro calls
    /// `clip_grad_norm_` once per param), instead of the norm of all gradients together (torch's
    /// `clip_grad_norm_(model.parameters())`; default `false`). No effect on value clipping.
    pub per_param: bool,
}

impl Default for ClipConfig {
    fn default() -> Self {
        ClipConfig {
            max_norm: None,
            norm_type: 2.0,
            clip_value: None,
            per_param: false,
        }
    }
}

/// Clips the gradients, then steps the wrapped optimizer: first the norm (when `max_norm` is
/// set), then the values (when `clip_value` is set), like Pyro's `clip_args`. Works with any
/// optimizer; has no state of its own.
///
/// ```
/// use ppl::optim::{ClipConfig, Clipped, Optimizer, Sgd, SgdConfig};
/// use ppl::tch::{Kind, Tensor};
///
/// # fn main() -> ppl::Result<()> {
/// let sgd = Sgd::new(SgdConfig { lr: 1.0, ..Default::default() });
/// let clip = ClipConfig { max_norm: Some(1.0), ..Default::default() };
/// let mut optim = Clipped::new(sgd, clip);
/// let x = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
/// (&x * Tensor::from_slice(&[30.0f32, 40.0])).sum(Kind::Float).backward();
/// optim.step(&[("x".to_string(), x.shallow_clone())])?;
/// assert_eq!(optim.last_norm(), Some(50.0));
/// assert!((x.double_value(&[1]) + 0.8).abs() < 1e-6); // the gradient (0.6, 0.8) after clipping
/// # Ok(()) }
/// ```
pub struct Clipped<O> {
    optim: O,
    settings: Settings,
    last_norm: Option<f64>,
}

/// One config for all params, or one per name.
enum Settings {
    All(ClipConfig),
    PerName {
        config_fn: Box<dyn Fn(&str) -> ClipConfig>,
        seen: IndexMap<String, ClipConfig>,
    },
}

impl<O: std::fmt::Debug> std::fmt::Debug for Clipped<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Clipped");
        d.field("optim", &self.optim);
        match &self.settings {
            Settings::All(c) => d.field("config", c),
            Settings::PerName { seen, .. } => d.field("per_param", seen),
        };
        d.field("last_norm", &self.last_norm).finish()
    }
}

impl<O: Optimizer> Clipped<O> {
    /// Clips as `config` says before each step of `optim`.
    pub fn new(optim: O, config: ClipConfig) -> Self {
        Clipped {
            optim,
            settings: Settings::All(config),
            last_norm: None,
        }
    }

    /// Clips each param's gradient on its own with the settings `f(name)` (asked once per name;
    /// `per_param` is implied): Pyro's callable `clip_args`.
    pub fn per_param(optim: O, f: impl Fn(&str) -> ClipConfig + 'static) -> Self {
        Clipped {
            optim,
            settings: Settings::PerName {
                config_fn: Box::new(f),
                seen: IndexMap::new(),
            },
            last_norm: None,
        }
    }

    /// The total gradient norm before clipping at the last step (the largest per-param norm when
    /// clipping per param); `None` before the first step or without norm clipping.
    pub fn last_norm(&self) -> Option<f64> {
        self.last_norm
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.optim
    }

    /// The wrapped optimizer, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.optim
    }

    /// Unwraps the optimizer.
    pub fn into_inner(self) -> O {
        self.optim
    }
}

impl<O: Optimizer> Optimizer for Clipped<O> {
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        let c = match &mut self.settings {
            Settings::All(c) => c,
            Settings::PerName { config_fn, seen } => {
                let mut largest: Option<f64> = None;
                for p in params {
                    if !p.1.grad().defined() {
                        continue;
                    }
                    let c = match seen.get_index_of(p.0.as_str()) {
                        Some(i) => &seen[i],
                        None => seen.entry(p.0.clone()).or_insert(config_fn(&p.0)),
                    };
                    let one = std::slice::from_ref(p);
                    if let Some(max_norm) = c.max_norm {
                        let n = clip_grad_norm(one, max_norm, c.norm_type)?;
                        largest = Some(largest.map_or(n, |l| l.max(n)));
                    }
                    if let Some(v) = c.clip_value {
                        clip_grad_value(one, v)?;
                    }
                }
                self.last_norm = largest;
                return self.optim.step(params);
            }
        };
        if let Some(max_norm) = c.max_norm {
            if c.per_param {
                let mut largest: Option<f64> = None;
                for p in params {
                    if p.1.grad().defined() {
                        let n = clip_grad_norm(std::slice::from_ref(p), max_norm, c.norm_type)?;
                        largest = Some(largest.map_or(n, |l| l.max(n)));
                    }
                }
                self.last_norm = largest;
            } else {
                self.last_norm = Some(clip_grad_norm(params, max_norm, c.norm_type)?);
            }
        }
        if let Some(v) = c.clip_value {
            clip_grad_value(params, v)?;
        }
        self.optim.step(params)
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        self.optim.state()
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        self.optim.load_state(state)
    }
}

impl<O: LrScheduled> LrScheduled for Clipped<O> {
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        self.optim.for_each_lr(f)
    }

    fn lr(&self, name: &str) -> Option<f64> {
        self.optim.lr(name)
    }

    fn initial_lr(&self, name: &str) -> Option<f64> {
        self.optim.initial_lr(name)
    }
}

impl<O: LrScheduler> LrScheduler for Clipped<O> {
    fn scheduler_step(&mut self, metric: Option<f64>) -> Result<()> {
        self.optim.scheduler_step(metric)
    }
}
