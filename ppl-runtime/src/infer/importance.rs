//! `Importance`: importance sampling with the prior or a guide as the proposal, one run per
//! sample or all samples at once in an outer plate; `EmpiricalMarginal`: the weighted samples of
//! one site or of the return value.

use tch::{Kind, Tensor};

use super::marginal::logsumexp;
use crate::error::{Error, Result, ResultExt};
use crate::poutine::{self, BlockMessenger, Handler, Plate, Trace};
use crate::primitives::with_rng;

type Program<'a, R> = Box<dyn Fn() -> Result<R> + 'a>;

/// The name of the outer plate of [`Importance::run_vectorized`].
pub const IMPORTANCE_PLATE: &str = "_num_samples";

/// Importance sampling (Pyro's `Importance`).
///
/// Each sample runs the guide (the proposal) and then the model with the guide's values
/// replayed; its log-weight is `log p(model trace) - log q(guide trace)`. Without a guide the
/// proposal is the prior, and the log-weight is the log-density of the observations (and
/// factors) alone. Inference runs under `poutine::block`, so it may be nested in another model.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::{EmpiricalMarginal, Importance};
///
/// #[model]
/// fn scale(guess: f64, measurement: f64) -> ppl::Result<Tensor> {
///     let weight = sample!(Normal::new(guess, 1.0)?);
///     sample!("measurement", Normal::new(&weight, 0.75)?, obs = measurement);
///     Ok(weight)
/// }
///
/// # fn main() -> ppl::Result<()> {
/// set_rng_seed(0);
/// let posterior = Importance::new(|| scale(8.5, 9.5), 2000).run()?;
/// let mean = EmpiricalMarginal::from_site(&posterior, "weight")?.mean()?.double_value(&[]);
/// assert!((mean - 9.14).abs() < 0.1, "{mean}"); // exact: 9.14
/// assert!(posterior.ess() > 500.0);
/// # Ok(()) }
/// ```
pub struct Importance<'a, R> {
    model: Program<'a, R>,
    guide: Option<Program<'a, ()>>,
    num_samples: usize,
}

impl<'a, R> Importance<'a, R> {
    /// Importance sampling of `model` from its prior, with `num_samples` samples.
    pub fn new(model: impl Fn() -> Result<R> + 'a, num_samples: usize) -> Self {
        Importance {
            model: Box::new(model),
            guide: None,
            num_samples,
        }
    }

    /// Proposes from `guide` instead of the prior.
    pub fn guide<G>(mut self, guide: impl Fn() -> Result<G> + 'a) -> Self {
        self.guide = Some(Box::new(move || guide().map(|_| ())));
        self
    }

    fn check(&self) -> Result<()> {
        if self.num_samples == 0 {
            return Err(Error::Config(
                "Importance: num_samples must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Runs the model (and guide) once per sample.
    pub fn run(&self) -> Result<ImportancePosterior<R>> {
        self.check()?;
        BlockMessenger::hide_all().run(|| {
            let n = self.num_samples;
            let (mut values, mut traces, mut log_weights) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            // torch's threads by the work of the first sample (one thread for small models).
            let mut threads = crate::infer::threads::ByWork::default();
            for _ in 0..n {
                let (value, mut trace, lw) = match &self.guide {
                    Some(guide) => {
                        let (_, mut gtr) = poutine::trace(guide)?;
                        let q = gtr.log_prob_sum()?.f_double_value(&[])?;
                        let (v, mut mtr) =
                            poutine::trace(|| poutine::replay(gtr, || (self.model)()))?;
                        let p = mtr.log_prob_sum()?.f_double_value(&[])?;
                        (v, mtr, p - q)
                    }
                    None => {
                        let (v, mut mtr) = poutine::trace(|| (self.model)())?;
                        let lw = observed_log_prob(&mut mtr)?;
                        (v, mtr, lw)
                    }
                };
                crate::infer::enumerate::check_not_marked(&trace, "Importance")?;
                threads.observe(&trace);
                trace.compute_log_prob()?;
                values.push(value);
                traces.push(trace);
                log_weights.push(lw);
            }
            Ok(ImportancePosterior {
                log_weights,
                values,
                traces,
                particle_dim: None,
            })
        })
    }

    /// Runs the model (and guide) once, with all samples at once in an outer plate called
    /// [`IMPORTANCE_PLATE`] at batch dim `-(max_plate_nesting + 1)`, left of the model's own plates
    /// (of which there may be at most `max_plate_nesting` nested). The model must be vectorized:
    /// its sites must broadcast along that dim.
    pub fn run_vectorized(&self, max_plate_nesting: usize) -> Result<ImportancePosterior<R>> {
        self.check()?;
        let n = self.num_samples as i64;
        let dim = -(max_plate_nesting as i64) - 1;
        let particles = || Plate::new(IMPORTANCE_PLATE, n).dim(dim).enter();
        BlockMessenger::hide_all().run(|| {
            let (value, mut mtr, log_w) = match &self.guide {
                Some(guide) => {
                    let (_, mut gtr) = poutine::trace(|| {
                        let _p = particles()?;
                        guide()
                    })?;
                    let q = per_particle_sum(&mut gtr, false, n, dim)?;
                    let (v, mut mtr) = poutine::trace(|| {
                        poutine::replay(gtr, || {
                            let _p = particles()?;
                            (self.model)()
                        })
                    })?;
                    let p = per_particle_sum(&mut mtr, false, n, dim)?;
                    (v, mtr, p.f_sub(&q)?)
                }
                None => {
                    let (v, mut mtr) = poutine::trace(|| {
                        let _p = particles()?;
                        (self.model)()
                    })?;
                    let p = per_particle_sum(&mut mtr, true, n, dim)?;
                    (v, mtr, p)
                }
            };
            crate::infer::enumerate::check_not_marked(&mtr, "Importance")?;
            mtr.compute_log_prob()?;
            let log_weights = Vec::<f64>::try_from(&log_w.f_to_kind(Kind::Double)?)?;
            Ok(ImportancePosterior {
                log_weights,
                values: vec![value],
                traces: vec![mtr],
                particle_dim: Some(dim),
            })
        })
    }
}

/// The sum of the log-densities of the observed (scored) sites.
fn observed_log_prob(tr: &mut Trace) -> Result<f64> {
    let mut total = 0.0;
    for s in tr.iter_mut().filter(|s| s.is_scored() && s.is_observed) {
        let name = s.name.clone();
        total += s
            .compute_log_prob()?
            .f_sum(Kind::Double)
            .at_site(&name)?
            .f_double_value(&[])?;
    }
    Ok(total)
}

/// The per-particle sum (shape `[n]`) of the log-densities of the scored sites (the observed
/// ones only with `observed_only`); the particles are at batch dim `dim`.
fn per_particle_sum(tr: &mut Trace, observed_only: bool, n: i64, dim: i64) -> Result<Tensor> {
    let mut total = Tensor::f_zeros([n], (Kind::Double, tch::Device::Cpu))?;
    for s in tr
        .iter_mut()
        .filter(|s| s.is_scored() && (s.is_observed || !observed_only))
    {
        let name = s.name.clone();
        let lp = s.compute_log_prob()?.f_to_kind(Kind::Double)?;
        let lp = move_particles_first(&lp, n, dim).at_site(&name)?;
        let lp = lp.f_reshape([n, -1])?.f_sum_dim_intlist(1, false, None)?;
        total = total.f_add(&lp.f_to_device(tch::Device::Cpu)?)?;
    }
    Ok(total)
}

/// `t` with its particle dim (batch dim `dim`, counted from the right of the first
/// `t.dim() - event_dim` dims) moved to the front, expanded to `n` where `t` lacks it.
fn move_particles_first_event(t: &Tensor, n: i64, dim: i64, event_dim: usize) -> Result<Tensor> {
    let batch_dims = t.dim() as i64 - event_dim as i64;
    let pos = batch_dims + dim;
    if pos < 0 {
        // The value does not vary over particles: share it.
        let mut shape = vec![n];
        shape.extend(t.size());
        return Ok(t.f_unsqueeze(0)?.f_expand(shape.as_slice(), false)?);
    }
    let size = t.size()[pos as usize];
    let moved = t.f_movedim([pos], [0])?;
    if size == n {
        Ok(moved)
    } else if size == 1 {
        let mut shape = moved.size();
        shape[0] = n;
        Ok(moved.f_expand(shape.as_slice(), false)?)
    } else {
        Err(Error::Shape(format!(
            "expected {n} particles at dim {dim}, got shape {:?}; is max_plate_nesting right?",
            t.size()
        )))
    }
}

fn move_particles_first(t: &Tensor, n: i64, dim: i64) -> Result<Tensor> {
    move_particles_first_event(t, n, dim, 0)
}

/// The weighted samples of an [`Importance`] run.
pub struct ImportancePosterior<R> {
    log_weights: Vec<f64>,
    values: Vec<R>,
    traces: Vec<Trace>,
    particle_dim: Option<i64>,
}

impl<R> ImportancePosterior<R> {
    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.log_weights.len()
    }

    /// The unnormalized log-weights, one per sample.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_weights
    }

    /// The normalized weights (they sum to 1).
    pub fn normalized_weights(&self) -> Vec<f64> {
        let z = logsumexp(&self.log_weights);
        self.log_weights.iter().map(|l| (l - z).exp()).collect()
    }

    /// The effective sample size, `1 / sum(w_i^2)` for normalized weights `w` (Pyro's `get_ESS`).
    pub fn ess(&self) -> f64 {
        let z = logsumexp(&self.log_weights);
        let two: Vec<f64> = self.log_weights.iter().map(|l| 2.0 * (l - z)).collect();
        (-logsumexp(&two)).exp()
    }

    /// The estimate of the log-evidence `log p(observations)`: `logsumexp(logw) - ln n`
    /// (Pyro's `get_log_normalizer`).
    pub fn log_evidence(&self) -> f64 {
        logsumexp(&self.log_weights) - (self.num_samples() as f64).ln()
    }

    /// The model's return values: one per sample, or one (vectorized) value for a vectorized run.
    pub fn values(&self) -> &[R] {
        &self.values
    }

    /// The model traces (with log-densities computed): one per sample, or one for a vectorized
    /// run.
    pub fn traces(&self) -> &[Trace] {
        &self.traces
    }

    /// The batch dim of the samples in a vectorized run.
    pub fn particle_dim(&self) -> Option<i64> {
        self.particle_dim
    }

    /// The values of site `name`, one per sample, stacked in a new leftmost dim.
    pub fn site_samples(&self, name: &str) -> Result<Tensor> {
        let n = self.num_samples() as i64;
        match self.particle_dim {
            Some(dim) => {
                let tr = self.traces.first().ok_or_else(|| missing(name))?;
                let site = tr.site(name)?;
                let event_dim = site.dist()?.event_dim();
                move_particles_first_event(&site.value, n, dim, event_dim).at_site(name)
            }
            None => {
                let vals: Vec<Tensor> = self
                    .traces
                    .iter()
                    .map(|t| t.value(name).map(Tensor::shallow_clone))
                    .collect::<Result<_>>()?;
                Tensor::f_stack(&vals, 0).at_site(name)
            }
        }
    }
}

fn missing(name: &str) -> Error {
    Error::Config(format!(
        "Importance: no traces to read site `{name}` from; run the importance sampler first"
    ))
}

/// The weighted empirical distribution of one site's values or of the return values of an
/// [`Importance`] run (Pyro's `EmpiricalMarginal`).
#[derive(Debug)]
pub struct EmpiricalMarginal {
    samples: Tensor,
    weights: Tensor,
}

impl EmpiricalMarginal {
    /// From samples stacked in dim 0 and their unnormalized log-weights.
    pub fn new(samples: Tensor, log_weights: &[f64]) -> Result<Self> {
        let n = samples.size().first().copied().unwrap_or(0);
        if n != log_weights.len() as i64 || n == 0 {
            return Err(Error::Shape(format!(
                "EmpiricalMarginal: {} log-weights for samples of shape {:?}",
                log_weights.len(),
                samples.size()
            )));
        }
        let z = logsumexp(log_weights);
        if !z.is_finite() {
            return Err(Error::NonFinite(
                "EmpiricalMarginal: the log-weights do not sum to a finite number".into(),
            ));
        }
        let w: Vec<f64> = log_weights.iter().map(|l| (l - z).exp()).collect();
        let weights = Tensor::from_slice(&w).f_to_device(samples.device())?;
        Ok(EmpiricalMarginal { samples, weights })
    }

    /// The marginal of site `name`.
    pub fn from_site<R>(posterior: &ImportancePosterior<R>, name: &str) -> Result<Self> {
        Self::new(posterior.site_samples(name)?, posterior.log_weights())
    }

    /// The marginal of the return value (in a vectorized run, the returned tensor's particle
    /// dim is the run's particle dim, counted from the right).
    pub fn from_return(posterior: &ImportancePosterior<Tensor>) -> Result<Self> {
        let n = posterior.num_samples() as i64;
        let samples = match posterior.particle_dim {
            Some(dim) => {
                let v = posterior.values.first().ok_or_else(|| missing("_RETURN"))?;
                move_particles_first(v, n, dim)?
            }
            None => Tensor::f_stack(&posterior.values, 0)?,
        };
        Self::new(samples, posterior.log_weights())
    }

    /// The samples, stacked in dim 0.
    pub fn samples(&self) -> &Tensor {
        &self.samples
    }

    /// The normalized weights (float64).
    pub fn weights(&self) -> &Tensor {
        &self.weights
    }

    fn broadcast_weights(&self) -> Result<Tensor> {
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, self.samples.dim().saturating_sub(1)));
        Ok(self.weights.f_reshape(shape.as_slice())?)
    }

    /// The weighted mean (float64).
    pub fn mean(&self) -> Result<Tensor> {
        let x = self.samples.f_to_kind(Kind::Double)?;
        Ok(x.f_mul(&self.broadcast_weights()?)?
            .f_sum_dim_intlist(0, false, None)?)
    }

    /// The weighted variance (float64).
    pub fn variance(&self) -> Result<Tensor> {
        let x = self.samples.f_to_kind(Kind::Double)?;
        let d = x.f_sub(&self.mean()?)?;
        Ok(d.f_square()?
            .f_mul(&self.broadcast_weights()?)?
            .f_sum_dim_intlist(0, false, None)?)
    }

    /// One sample, drawn with probability equal to its weight.
    pub fn sample(&self) -> Result<Tensor> {
        let w = Vec::<f64>::try_from(&self.weights.f_to_device(tch::Device::Cpu)?)?;
        let u: f64 = with_rng(rand::Rng::random::<f64>);
        let mut acc = 0.0;
        let mut idx = w.len() - 1;
        for (i, wi) in w.iter().enumerate() {
            acc += wi;
            if u < acc {
                idx = i;
                break;
            }
        }
        Ok(self.samples.f_get(idx as i64)?)
    }
}
