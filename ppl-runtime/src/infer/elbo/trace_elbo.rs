//! `TraceElbo` (Pyro's `Trace_ELBO`).

use tch::Tensor;

use super::{
    add_broadcast, average_particles, sum_to, total, zero_like, Elbo, ElboConfig, ElboOutput,
};
use crate::error::Result;
use crate::poutine::Trace;

/// A Monte Carlo ELBO with pathwise gradients through reparameterized guide sites and
/// score-function (REINFORCE) terms for the others, Rao-Blackwellized by plates: each
/// non-reparameterized site's score is weighted by the costs that share its plate slices.
#[derive(Clone, Debug, Default)]
pub struct TraceElbo {
    /// Particles, vectorization, plate nesting.
    pub config: ElboConfig,
}

impl TraceElbo {
    /// A TraceElbo with `num_particles` particles drawn one run at a time.
    pub fn with_particles(num_particles: usize) -> Self {
        TraceElbo {
            config: ElboConfig {
                num_particles,
                ..Default::default()
            },
        }
    }
}

/// `(elbo, surrogate elbo)` of one (model, guide) trace pair, as Trace_ELBO computes them.
pub(crate) fn elbo_and_surrogate(model: &mut Trace, guide: &mut Trace) -> Result<(Tensor, Tensor)> {
    let needs_score = guide.iter().any(|s| s.is_non_reparam());
    let mut elbo: Option<Tensor> = None;
    // The log-density terms with their plates, kept only when score-function terms need them.
    let mut sites: Vec<(Tensor, Vec<crate::poutine::CondIndepFrame>)> = Vec::new();
    for s in model.iter_mut().filter(|s| s.is_scored()) {
        let lp = s.compute_log_prob()?;
        elbo = add_broadcast(elbo, total(lp)?)?;
        if needs_score {
            sites.push((lp.shallow_clone(), s.cond_indep_stack.clone()));
        }
    }
    for s in guide.iter_mut().filter(|s| s.is_scored()) {
        let non_reparam = s.is_non_reparam();
        let lp = s.compute_log_prob()?;
        // A non-reparameterized site's own `-log q` enters by value only, as in Pyro: its
        // expected gradient is zero, so differentiating it would only add noise.
        let t = if non_reparam {
            total(&lp.f_detach()?)?
        } else {
            total(lp)?
        };
        elbo = add_broadcast(elbo, t.f_neg()?)?;
        if needs_score {
            sites.push((lp.f_neg()?, s.cond_indep_stack.clone()));
        }
    }
    let elbo = match elbo {
        Some(e) => e,
        None => zero_like(guide)?,
    };
    let mut surrogate = elbo.shallow_clone();
    if !needs_score {
        return Ok((elbo, surrogate));
    }
    for s in guide.iter_mut().filter(|s| s.is_non_reparam()) {
        let mut log_r: Option<Tensor> = None;
        for (lp, frames) in &sites {
            log_r = add_broadcast(log_r, sum_to(&lp.f_detach()?, frames, &s.cond_indep_stack)?)?;
        }
        let Some(log_r) = log_r else { continue };
        let score = s.score_function()?;
        surrogate = surrogate.f_add(&total(&score.f_mul(&log_r)?)?)?;
    }
    Ok((elbo, surrogate))
}

impl Elbo for TraceElbo {
    fn supports_jit(&self) -> bool {
        true
    }

    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        average_particles(&self.config, model, guide, |m, g| {
            let (elbo, surrogate) = elbo_and_surrogate(m, g)?;
            Ok((elbo, surrogate, None))
        })
    }
}
