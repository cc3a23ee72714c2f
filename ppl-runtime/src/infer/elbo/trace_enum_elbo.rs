//! `TraceEnumElbo` (Pyro's `TraceEnum_ELBO`).

use std::cell::Cell;

use tch::Tensor;

use super::{average_particles_enum, Elbo, ElboConfig, ElboOutput};
use crate::error::{Error, Result};
use crate::infer::enumerate::{model_factors, sum_scalars, PlateTable};
use crate::ops::contract::{combine, Factor, Ordinal, Ring, Var};
use crate::poutine::{self, Trace};

/// An ELBO that sums enumerated discrete sites out exactly.
///
/// Sites marked `enumerate = parallel` (by `sample!` or [`config_enumerate`]) take all their
/// values at once, each in a dimension of its own left of the plates, and their log-densities
/// are summed out of the model's by plated tensor variable elimination (Pyro's
/// `pyro.ops.contract`): log-sum-exp over enumerated dims, products over plates, in an order
/// that keeps intermediate tensors small; with [`markov`] an HMM of length `T` costs
/// `O(T K²)`. Enumerated sites in the model need no guide site. Enumerated guide sites are
/// weighted by their probabilities (Dice), so their gradients are exact too; other guide sites
/// are sampled, with pathwise or score-function gradients as in [`TraceElbo`].
///
/// Guide sites marked `enumerate = sequential` get one run of guide and model per value (Pyro's
/// `iter_discrete_traces`), summed with the same weights: the loss and gradient of `parallel`,
/// for guides whose code branches on the value.
///
/// `max_plate_nesting` (how many plates the model nests at most) tells where enumeration dims
/// may start; when it is not given it is found by one trial run of guide and model.
///
/// ```
/// use ppl::prelude::*;
///
/// #[model]
/// fn model(data: &Tensor) -> ppl::Result<()> {
///     let loc = param!("loc", Tensor::from_slice(&[-1.0f32, 1.0]));
///     let _d = plate!("data", data.size()[0]);
///     let z = sample!(Categorical::new(&Tensor::from_slice(&[0.5f32, 0.5]))?, enumerate = parallel);
///     sample!("x", Normal::new(&loc.index_select(0, &z.flatten(0, -1)).view_as(&z.to_kind(Kind::Float)), 1.0)?, obs = data);
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// clear_param_store();
/// let data = Tensor::from_slice(&[-1.2f32, 0.9, 1.1]);
/// let elbo = TraceEnumElbo::default().max_plate_nesting(1);
/// let out = elbo.loss_and_surrogate(&mut || model(&data), &mut || Ok(()))?;
/// // With no continuous latents the loss is exactly -log p(data).
/// assert!(out.loss.is_finite());
/// # Ok(()) }
/// ```
///
/// [`config_enumerate`]: crate::poutine::config_enumerate
/// [`markov`]: crate::poutine::markov
/// [`TraceElbo`]: crate::infer::TraceElbo
#[derive(Clone, Debug, Default)]
pub struct TraceEnumElbo {
    /// Particles and their vectorization. Its `max_plate_nesting` is used when nonzero (or set
    /// by [`TraceEnumElbo::max_plate_nesting`]); otherwise a trial run finds it.
    pub config: ElboConfig,
    max_plate_nesting: Option<usize>,
    guessed: Cell<Option<usize>>,
}

impl TraceEnumElbo {
    /// How many plates the model and guide nest at most; enumeration dims start left of them.
    pub fn max_plate_nesting(mut self, n: usize) -> Self {
        self.max_plate_nesting = Some(n);
        self.config.max_plate_nesting = n;
        self
    }

    /// Averages `n` particles.
    pub fn num_particles(mut self, n: usize) -> Self {
        self.config.num_particles = n;
        self
    }

    /// Draws the particles at once, in a plate left of the model's plates.
    pub fn vectorize_particles(mut self, on: bool) -> Self {
        self.config.vectorize_particles = on;
        self
    }

    /// The plate nesting: given, or found once by a trial run (Pyro's
    /// `_guess_max_plate_nesting`).
    fn plate_nesting<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<usize> {
        // A nonzero `config.max_plate_nesting` set by hand counts as given too.
        let given = (self.config.max_plate_nesting > 0).then_some(self.config.max_plate_nesting);
        if let Some(n) = self.max_plate_nesting.or(given).or(self.guessed.get()) {
            return Ok(n);
        }
        let n = tch::no_grad(|| guess_max_plate_nesting(model, guide))?;
        self.guessed.set(Some(n));
        Ok(n)
    }
}

/// The deepest vectorized plate dim used by a trial run of guide and model.
pub(crate) fn guess_max_plate_nesting<R1, R2>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
) -> Result<usize> {
    let (model_tr, guide_tr) = poutine::block(|| super::traces_unchecked(model, guide, None))?;
    Ok(model_tr.plate_nesting().max(guide_tr.plate_nesting()))
}

impl Elbo for TraceEnumElbo {
    /// The enumerated loss is a function of the params and the random draws alone (the
    /// enumeration dims and the elimination order are fixed by the model's structure), so it
    /// compiles; the compiler's checks against libtorch still decide.
    fn supports_jit(&self) -> bool {
        true
    }

    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        let nesting = self.plate_nesting(model, guide)?;
        let mut cfg = self.config.clone();
        cfg.max_plate_nesting = nesting;
        let particles_dim = usize::from(cfg.vectorize_particles && cfg.num_particles > 1);
        let first = -((nesting + particles_dim) as i64) - 1;
        average_particles_enum(&cfg, model, guide, Some(first), |mt, gt| {
            let elbo = dice_elbo(mt, gt)?;
            Ok((elbo.shallow_clone(), elbo, None))
        })
    }
}

/// The ELBO of one (model, guide) pair with enumerated sites summed out (Pyro's
/// `_compute_dice_elbo`): model-enumerated variables are contracted away; what is left, and
/// the guide's `-log q`, are costs whose expectation weighs each value of the guide-enumerated
/// variables by its probability and carries score-function terms for sampled
/// non-reparameterized guide sites (Dice factors `log q - detach(log q)`).
fn dice_elbo(model: &mut Trace, guide: &mut Trace) -> Result<Tensor> {
    for s in model.iter().filter(|s| s.is_latent()) {
        if s.infer.enum_dim.is_none() && !guide.contains(&s.name) {
            return Err(Error::Enumeration {
                site: s.name.clone(),
                message: "is latent in the model, but the guide does not sample it and it is not \
                          enumerated: sample it in the guide, or mark it `enumerate = parallel` \
                          (discrete sites of finite support only)"
                    .into(),
            });
        }
    }
    let mut plates = PlateTable::default();
    let mf = model_factors(model, Some(guide), &mut plates, Ring::Log, None)?;
    let mut costs: Vec<(Ordinal, Factor)> = mf.costs;
    costs.extend(mf.contracted);
    // The guide's costs and Dice factors.
    let mut dice: Vec<(Ordinal, Factor)> = Vec::new();
    guide.compute_log_prob()?;
    for s in guide.iter().filter(|s| s.is_scored()) {
        let ord = plates.ordinal(s)?;
        let lp = s
            .log_prob
            .as_ref()
            .ok_or_else(|| Error::NonFinite(s.name.clone()))?;
        let raw = s
            .unscaled_log_prob
            .as_ref()
            .ok_or_else(|| Error::NonFinite(s.name.clone()))?;
        // A sequentially enumerated site has one value per run: like a parallel one, its cost is
        // weighted by its probability q(v) with the gradient of q (Pyro's Dice factor for
        // `enumerate = "sequential"`), and the runs are summed.
        let sequential = s.infer.enum_dim.is_none()
            && s.infer.enumerate == Some(crate::poutine::Enumerate::Sequential);
        let enumerated = s.infer.enum_dim.is_some() || sequential;
        let non_reparam = s.is_non_reparam() && !enumerated;
        // A sampled non-reparameterized site's own -log q enters by value only (its expected
        // gradient is zero), as in TraceElbo.
        let cost = if non_reparam {
            lp.f_detach()?.f_neg()?
        } else {
            lp.f_neg()?
        };
        costs.push((ord, plates.pack(&cost, s)?));
        if enumerated {
            dice.push((ord, plates.pack(raw, s)?));
        } else if non_reparam {
            let score = raw.f_sub(&raw.f_detach()?)?;
            dice.push((ord, plates.pack(&score, s)?));
        }
    }
    sum_scalars(
        costs
            .iter()
            .map(|(ord, cost)| expectation(cost, *ord, &dice)),
    )
}

/// The expectation of a cost at ordinal `ord` under the Dice factors of the guide sites
/// upstream of it (those whose plates are a subset of its own): each value of a
/// guide-enumerated variable is weighted by its marginal probability.
fn expectation(cost: &Factor, ord: Ordinal, dice: &[(Ordinal, Factor)]) -> Result<Tensor> {
    let upstream: Vec<Factor> = dice
        .iter()
        .filter(|(o, _)| o & !ord == 0)
        .map(|(_, f)| f.clone())
        .collect();
    if upstream.is_empty() {
        return cost.total();
    }
    let joint = combine(upstream)?;
    // Marginalize the enumerated variables the cost does not depend on.
    let mut marginal = joint;
    let drop: Vec<Var> = marginal
        .vars
        .iter()
        .copied()
        .filter(|v| matches!(v, Var::Enum(_)) && !cost.vars.contains(v))
        .collect();
    for v in drop {
        let d = marginal.vars.iter().position(|x| *x == v).unwrap_or(0) as i64;
        marginal = Factor {
            tensor: marginal.tensor.f_logsumexp([d], false)?,
            vars: marginal.vars.iter().copied().filter(|x| *x != v).collect(),
        };
    }
    let mut vars = cost.vars.clone();
    for v in &marginal.vars {
        if !vars.contains(v) {
            vars.push(*v);
        }
    }
    let prob = marginal.align(&vars)?.f_exp()?;
    let c = cost.align(&vars)?;
    let weighted = prob.f_mul(&c)?;
    // 0 * -inf is 0 here: a value of probability zero costs nothing.
    let zero = weighted.f_zeros_like()?;
    let weighted = weighted.f_where_self(&prob.f_gt(0.0)?, &zero)?;
    Ok(weighted.f_sum(None::<tch::Kind>)?)
}
