//! Evidence lower bounds (Pyro's ELBO family): what SVI maximizes.
//!
//! Every ELBO runs the guide, replays the model against the guide's trace
//! ([`get_traces`]), and turns the two traces into a loss and a differentiable surrogate whose
//! gradient estimates the loss's gradient. Particles are separate runs, or one run inside an
//! outer plate when `vectorize_particles` is set.

mod jit_trace_elbo;
mod renyi_elbo;
mod trace_elbo;
mod trace_enum_elbo;
mod trace_graph_elbo;
mod trace_mean_field_elbo;

pub use jit_trace_elbo::JitTraceElbo;
pub use renyi_elbo::RenyiElbo;
pub use trace_elbo::TraceElbo;
pub use trace_enum_elbo::TraceEnumElbo;
pub use trace_graph_elbo::TraceGraphElbo;
pub use trace_mean_field_elbo::TraceMeanFieldElbo;

use std::rc::Rc;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::poutine::{self, CondIndepFrame, EnumMessenger, Handler, Plate, SiteKind, Trace};

/// The name of the outer plate of vectorized particles.
pub const VECTORIZED_PARTICLES_PLATE: &str = "num_particles_vectorized";

/// Settings shared by all ELBOs.
#[derive(Clone, Debug)]
pub struct ElboConfig {
    /// Number of particles averaged per estimate.
    pub num_particles: usize,
    /// Draw all particles at once in an outer plate (the model must be vectorizable).
    pub vectorize_particles: bool,
    /// How many plates the model nests at most (needed with `vectorize_particles`: the
    /// particles' plate goes left of them).
    pub max_plate_nesting: usize,
}

impl Default for ElboConfig {
    fn default() -> Self {
        ElboConfig {
            num_particles: 1,
            vectorize_particles: false,
            max_plate_nesting: 0,
        }
    }
}

/// A differentiable ELBO estimate and the params it depends on.
pub struct ElboOutput {
    /// The loss `-ELBO` as a number.
    pub loss: f64,
    /// A scalar whose gradient is the gradient estimate of the loss.
    pub surrogate_loss: Tensor,
    /// Names of the params that appeared in model or guide.
    pub params: Vec<String>,
    /// The loss as a (detached) scalar tensor: what a compiled loss ([`JitTraceElbo`]) records
    /// as the program's second output.
    pub loss_tensor: Tensor,
    /// The number of elements of the largest site value in model or guide (what
    /// [`Svi`](crate::infer::Svi) picks torch's thread count by).
    pub largest_site: usize,
}

/// The loss of one step and the params it read.
#[derive(Clone, Debug)]
pub struct LossAndGrads {
    /// The loss (`-ELBO` estimate).
    pub loss: f64,
    /// The params that appeared in model or guide, whose `.grad` now holds the gradient.
    pub params: Vec<String>,
    /// The number of elements of the largest site value (0 when unknown, as for compiled steps).
    pub largest_site: usize,
}

/// A loss for SVI.
///
/// An ELBO says how to estimate itself and its gradient from one run of guide and model
/// ([`Elbo::loss_and_surrogate`]). [`Svi`](crate::infer::Svi) asks it for
/// [`Elbo::loss_and_grads`] and steps the optimizer on the params it names; a compiled loss
/// ([`JitTraceElbo`]) is another implementation of the same two methods.
pub trait Elbo {
    /// Runs guide and model and returns the loss with its differentiable surrogate.
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput>;

    /// Whether [`JitTraceElbo`] can compile this loss: its loss and surrogate must be functions
    /// of the params and the random draws alone (no state carried between steps, no weights
    /// computed on the host), as for [`TraceElbo`] and [`TraceMeanFieldElbo`].
    fn supports_jit(&self) -> bool {
        false
    }

    /// Pyro's `loss_and_grads`: the loss, with the gradient of its surrogate accumulated into
    /// the `.grad` of every param that appeared.
    fn loss_and_grads<R1, R2>(
        &mut self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<LossAndGrads> {
        let out = self.loss_and_surrogate(model, guide)?;
        if out.surrogate_loss.requires_grad() {
            out.surrogate_loss.f_backward()?;
        }
        Ok(LossAndGrads {
            loss: out.loss,
            params: out.params,
            largest_site: out.largest_site,
        })
    }

    /// Pyro's `loss`: the loss without gradients.
    fn loss<R1, R2>(
        &mut self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<f64> {
        let _ng = tch::no_grad_guard();
        Ok(self.loss_and_surrogate(model, guide)?.loss)
    }

    /// Whether the steps run a compiled program (see [`JitTraceElbo`]).
    fn is_compiled(&self) -> bool {
        false
    }

    /// The tensors among the arguments of the model and guide the next steps run
    /// ([`Svi::step_with`](crate::infer::Svi::step_with)): a compiled loss takes them as its
    /// program's inputs. Eager losses read the arguments through the model and ignore this.
    fn set_inputs(&mut self, _inputs: Vec<Tensor>) {}
}

/// Traces the guide, then the model replayed against it, and checks that they fit: every guide
/// latent site is in the model, with a value of the shape the model's distribution expects, and
/// no site marked for enumeration was left unenumerated (only [`TraceEnumElbo`] enumerates).
pub fn get_traces<R1, R2>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
) -> Result<(Trace, Trace)> {
    let (model_tr, guide_tr) = traces_unchecked(model, guide, None)?;
    crate::infer::enumerate::check_not_marked(&guide_tr, "this loss")?;
    crate::infer::enumerate::check_not_marked(&model_tr, "this loss")?;
    warn_unguided(&model_tr, &guide_tr);
    Ok((model_tr, guide_tr))
}

thread_local! {
    static WARNED: std::cell::RefCell<std::collections::HashSet<String>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Warns (once per site and thread) about model latents that the guide does not sample: they
/// are drawn from their prior, which is rarely what was meant (Pyro warns too).
fn warn_unguided(model: &Trace, guide: &Trace) {
    for s in model
        .iter()
        .filter(|s| s.is_latent() && s.infer.enum_dim.is_none())
    {
        if guide.contains(&s.name) {
            continue;
        }
        let first = WARNED.with(|w| w.borrow_mut().insert(s.name.clone()));
        if first {
            eprintln!(
                "ppl: warning: site `{}` is latent in the model but the guide does not sample it, \
                 so the ELBO draws it from its prior; sample it in the guide, or mark it \
                 `enumerate = parallel` and use TraceEnumElbo",
                s.name
            );
        }
    }
}

/// [`get_traces`] without the enumeration check; with `enumerate` (the first available dim),
/// guide and model run under enum handlers, the model's outside the replay of the guide.
pub(crate) fn traces_unchecked<R1, R2>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    enumerate: Option<i64>,
) -> Result<(Trace, Trace)> {
    let (_, guide_tr) = match enumerate {
        None => poutine::trace(&mut *guide)?,
        Some(first) => poutine::trace(|| EnumMessenger::new(first)?.run(&mut *guide))?,
    };
    model_against(model, guide_tr, enumerate.is_some())
}

/// Runs `model` against a guide trace (replaying its values; with `enumerate`, continuing the
/// guide's enumeration dims) and checks that every guide site has a model site of a fitting
/// shape.
fn model_against<R1>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide_tr: Trace,
    enumerate: bool,
) -> Result<(Trace, Trace)> {
    let guide_tr = Rc::new(guide_tr);
    let mut replayed = || poutine::replay(guide_tr.clone(), &mut *model);
    let (_, model_tr) = if enumerate {
        poutine::trace(|| EnumMessenger::continuing().run(&mut replayed))?
    } else {
        poutine::trace(replayed)?
    };
    let guide_tr = Rc::try_unwrap(guide_tr).unwrap_or_else(|rc| (*rc).clone());
    for s in guide_tr.stochastic_nodes() {
        if s.infer.is_auxiliary {
            continue;
        }
        let Some(m) = model_tr.get(&s.name) else {
            return Err(Error::ModelGuideMismatch {
                site: s.name.clone(),
                message: "the guide samples this site but the model has no site of that name"
                    .into(),
            });
        };
        if let Some(d) = &m.dist {
            let mut want = d.batch_shape().to_vec();
            want.extend_from_slice(d.event_shape());
            let have = s.value.size();
            if !broadcastable(&have, &want) {
                return Err(Error::Shape(format!(
                    "site `{}`: the guide's value has shape {have:?} but the model's \
                     distribution has batch + event shape {want:?}",
                    s.name
                )));
            }
        }
    }
    Ok((model_tr, guide_tr))
}

fn broadcastable(a: &[i64], b: &[i64]) -> bool {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .all(|(x, y)| x == y || *x == 1 || *y == 1)
}

/// Runs `f` once per particle (or once, vectorized) and collects the (model, guide) traces.
pub(crate) fn particles<R1, R2>(
    cfg: &ElboConfig,
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
) -> Result<Vec<(Trace, Trace)>> {
    particles_enum(cfg, model, guide, None)
}

/// [`particles`], enumerating from `enumerate` (the first available dim) when given.
pub(crate) fn particles_enum<R1, R2>(
    cfg: &ElboConfig,
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    enumerate: Option<i64>,
) -> Result<Vec<(Trace, Trace)>> {
    // One particle: a (model, guide) pair, or under enumeration one pair per assignment of the
    // guide's sequentially enumerated sites (summed, not averaged, by the caller).
    let get = |m: &mut dyn FnMut() -> Result<R1>, g: &mut dyn FnMut() -> Result<R2>| {
        let Some(first) = enumerate else {
            let (mt, gt) = traces_unchecked(m, g, None)?;
            crate::infer::enumerate::check_not_marked(&gt, "this loss")?;
            crate::infer::enumerate::check_not_marked(&mt, "this loss")?;
            warn_unguided(&mt, &gt);
            return Ok(vec![(mt, gt)]);
        };
        let pairs = sequential_traces(m, g, first)?;
        for (mt, gt) in &pairs {
            crate::infer::enumerate::check_enumerated(gt, None)?;
            crate::infer::enumerate::check_enumerated(mt, Some(gt))?;
        }
        Ok(pairs)
    };
    let n = cfg.num_particles.max(1);
    if cfg.vectorize_particles && n > 1 {
        let dim = -(cfg.max_plate_nesting as i64) - 1;
        let mut m = || -> Result<R1> {
            let _p = Plate::new(VECTORIZED_PARTICLES_PLATE, n as i64)
                .dim(dim)
                .enter()?;
            model()
        };
        let mut g = || -> Result<R2> {
            let _p = Plate::new(VECTORIZED_PARTICLES_PLATE, n as i64)
                .dim(dim)
                .enter()?;
            guide()
        };
        return get(&mut m, &mut g);
    }
    let mut out = Vec::new();
    for _ in 0..n {
        out.extend(get(model, guide)?);
    }
    Ok(out)
}

/// Pyro's `iter_discrete_traces` inside `TraceEnum_ELBO`: the guide runs once per assignment of
/// its sites marked `enumerate = sequential` (found as they are reached: a run stops at the
/// first such site not yet assigned, and one partial trace per value of its support is queued,
/// last in first out), with parallel enumeration from `first` as usual; the model runs against
/// each completed guide trace. The runs that extend a stopped run replay what it had sampled
/// before it stopped (as Pyro's `poutine.queue` does), so those draws are shared, not redrawn.
pub(crate) fn sequential_traces<R1, R2>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    first: i64,
) -> Result<Vec<(Trace, Trace)>> {
    use crate::poutine::Enumerate;
    /// Pyro's `max_tries` for the same queue.
    const MAX_RUNS: usize = 100_000;
    let mut queue = vec![Trace::default()];
    let mut out = Vec::new();
    let mut runs = 0usize;
    while let Some(partial) = queue.pop() {
        runs += 1;
        let partial = Rc::new(partial);
        let p = partial.clone();
        let escape = move |m: &poutine::Msg| {
            m.kind == SiteKind::Sample
                && !m.is_observed
                && m.infer.enumerate == Some(Enumerate::Sequential)
                && !p.contains(&m.name)
        };
        let (run, guide_tr) = poutine::trace(|| {
            poutine::escape(escape, || {
                poutine::replay(partial.clone(), || {
                    EnumMessenger::new(first)?.run(&mut *guide)
                })
            })
        })?;
        let site = match run {
            Ok(_) => {
                out.push(model_against(model, guide_tr, true)?);
                continue;
            }
            Err(site) => site,
        };
        if runs > MAX_RUNS {
            return Err(Error::Enumeration {
                site: site.name.clone(),
                message: format!(
                    "sequential enumeration ran the guide {MAX_RUNS} times and still meets new \
                     sites marked `enumerate = sequential` (one in a loop without end?)"
                ),
            });
        }
        if let Some(f) = site.cond_indep_stack.iter().find(|f| f.dim.is_some()) {
            return Err(Error::Enumeration {
                site: site.name.clone(),
                message: format!(
                    "is marked `enumerate = sequential` inside the vectorized plate `{}`; \
                     sequential enumeration takes a single discrete choice outside vectorized \
                     plates (a plate's items would share one value): mark it `enumerate = \
                     parallel`",
                    f.name
                ),
            });
        }
        let dist = site.dist.as_ref().ok_or_else(|| Error::Enumeration {
            site: site.name.clone(),
            message: "cannot enumerate a site without a distribution".into(),
        })?;
        let batch: i64 = dist.batch_shape().iter().product();
        if batch != 1 {
            return Err(Error::Enumeration {
                site: site.name.clone(),
                message: format!(
                    "is marked `enumerate = sequential` but has {batch} values (batch shape \
                     {:?}); sequential enumeration runs the guide once per value of a single \
                     discrete choice: mark batched sites `enumerate = parallel`",
                    dist.batch_shape()
                ),
            });
        }
        // What the stopped run sampled (not what it enumerated in parallel: that is redone).
        let mut base = Trace::default();
        for s in guide_tr.iter() {
            if s.kind == SiteKind::Sample && s.infer.enum_dim.is_none() {
                base.add(s.clone())?;
            }
        }
        let mut extensions = poutine::queue::enum_extend(&base, &site)?;
        // Last in, first out, as Pyro's LifoQueue: the first value is tried first.
        extensions.reverse();
        queue.extend(extensions);
    }
    Ok(out)
}

/// The loop every ELBO of the `Trace_ELBO` family shares: traces the particles, scores each
/// (model, guide) pair with `particle` (returning the ELBO, its surrogate and any extra loss
/// term, e.g. TraceGraphElbo's baseline loss, all scalar tensors), checks that each ELBO is
/// finite (naming the offending sites) and averages `-elbo` and `extra - surrogate` over the
/// particles.
pub(crate) fn average_particles<R1, R2>(
    cfg: &ElboConfig,
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    particle: impl FnMut(&mut Trace, &mut Trace) -> Result<(Tensor, Tensor, Option<Tensor>)>,
) -> Result<ElboOutput> {
    average_particles_enum(cfg, model, guide, None, particle)
}

/// [`average_particles`], enumerating from `enumerate` (the first available dim) when given.
pub(crate) fn average_particles_enum<R1, R2>(
    cfg: &ElboConfig,
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    enumerate: Option<i64>,
    mut particle: impl FnMut(&mut Trace, &mut Trace) -> Result<(Tensor, Tensor, Option<Tensor>)>,
) -> Result<ElboOutput> {
    let pairs = particles_enum(cfg, model, guide, enumerate)?;
    // Averaged over particles; the pairs of one particle's sequentially enumerated assignments
    // are summed (their Dice factors weigh each by its probability).
    let n = cfg.num_particles.max(1) as f64;
    let (mut loss, mut surrogate_loss, mut params) = (0.0, None::<Tensor>, Vec::new());
    let mut loss_tensor = None::<Tensor>;
    let mut largest_site = 0;
    for (mut m, mut g) in pairs {
        param_names([&m, &g], &mut params);
        largest_site = largest_site.max(largest([&m, &g]));
        let (elbo, surrogate, extra) = particle(&mut m, &mut g)?;
        let value = elbo.f_double_value(&[])?;
        check_finite(value, &mut m, &mut g)?;
        loss -= value / n;
        loss_tensor = add_broadcast(loss_tensor, elbo.f_detach()?.f_div_scalar(-n)?)?;
        let mut term = surrogate.f_div_scalar(-n)?;
        if let Some(extra) = extra {
            term = term.f_add(&extra.f_div_scalar(n)?)?;
        }
        surrogate_loss = add_broadcast(surrogate_loss, term)?;
    }
    Ok(ElboOutput {
        loss,
        surrogate_loss: surrogate_loss.unwrap_or_else(|| Tensor::from(0.0f32)),
        params,
        loss_tensor: loss_tensor.unwrap_or_else(|| Tensor::from(0.0f32)),
        largest_site,
    })
}

/// The number of elements of the largest site value in either trace.
pub(crate) fn largest(trs: [&Trace; 2]) -> usize {
    trs.iter()
        .flat_map(|t| t.iter())
        .map(|s| s.value.numel())
        .max()
        .unwrap_or(0)
}

/// Param names seen in either trace, in order of first appearance.
pub(crate) fn param_names(trs: [&Trace; 2], out: &mut Vec<String>) {
    for tr in trs {
        for s in tr.iter().filter(|s| s.kind == SiteKind::Param) {
            if !out.contains(&s.name) {
                out.push(s.name.clone());
            }
        }
    }
}

/// Sums a log-density over every dim except those of the vectorized plates it shares with
/// `target` (Pyro's `MultiFrameTensor.sum_to`): the plate-wise Rao-Blackwellization of
/// score-function terms. Dims are kept (size 1 where summed).
pub(crate) fn sum_to(
    lp: &Tensor,
    frames: &[CondIndepFrame],
    target: &[CondIndepFrame],
) -> Result<Tensor> {
    let nd = lp.dim() as i64;
    if nd == 0 {
        return Ok(lp.shallow_clone());
    }
    let keep: Vec<i64> = frames
        .iter()
        .filter(|f| target.iter().any(|t| t.dim.is_some() && t.name == f.name))
        .filter_map(|f| f.dim)
        .collect();
    let dims: Vec<i64> = (0..nd)
        .filter(|i| !keep.contains(&(i - nd)) || lp.size()[*i as usize] == 1)
        .collect();
    if dims.is_empty() {
        return Ok(lp.shallow_clone());
    }
    Ok(lp.f_sum_dim_intlist(dims.as_slice(), true, None::<Kind>)?)
}

/// Adds `b` to `a`, broadcasting, aligning dims from the right.
pub(crate) fn add_broadcast(a: Option<Tensor>, b: Tensor) -> Result<Option<Tensor>> {
    Ok(Some(match a {
        None => b,
        Some(a) => a.f_add(&b)?,
    }))
}

/// Errors naming the sites whose log-densities are not finite, when `value` is not finite.
pub(crate) fn check_finite(value: f64, model: &mut Trace, guide: &mut Trace) -> Result<()> {
    if value.is_finite() {
        return Ok(());
    }
    model.check_finite()?;
    guide.check_finite()?;
    Err(Error::NonFinite(format!("the ELBO is {value}")))
}

/// The sum of a tensor as a scalar tensor.
pub(crate) fn total(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_sum(None::<Kind>)?)
}

/// A zero scalar on the device of the traces' first value.
pub(crate) fn zero_like(tr: &Trace) -> Result<Tensor> {
    let (kind, device) = tr
        .iter()
        .next()
        .map_or((Kind::Float, tch::Device::Cpu), |s| {
            (Kind::Float, s.value.device())
        });
    Ok(Tensor::f_zeros([], (kind, device))?)
}
