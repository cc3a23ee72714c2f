//! `TraceGraphElbo` (Pyro's `TraceGraph_ELBO`): score-function terms Rao-Blackwellized by the
//! order of execution and the plates, with variance-reducing baselines.

use std::cell::RefCell;
use std::collections::HashMap;

use tch::Tensor;

use super::{add_broadcast, average_particles, sum_to, total, Elbo, ElboConfig, ElboOutput};
use crate::error::Result;
use crate::poutine::{CondIndepFrame, Trace};

/// Like [`super::TraceElbo`], but each non-reparameterized guide site's score is weighted only
/// by its *downstream* cost: the log-density terms of the sites from it onwards (the dense
/// dependency graph of execution order) that share its plate slices. A baseline is subtracted
/// from that cost when the site asks for one through its `infer` settings:
///
/// - `use_decaying_avg_baseline` (with `baseline_beta`, default 0.90): a running average of the
///   downstream cost;
/// - `nn_baseline`: a network's prediction from an input, trained by adding
///   `(cost - prediction)²` to the loss;
/// - `baseline_value`: a tensor computed in the guide (e.g. by a baseline network, as in the
///   AIR example), trained the same way.
#[derive(Debug, Default)]
pub struct TraceGraphElbo {
    /// Particles, vectorization, plate nesting.
    pub config: ElboConfig,
    averages: RefCell<HashMap<String, Tensor>>,
}

impl TraceGraphElbo {
    /// A TraceGraphElbo with `num_particles` particles.
    pub fn with_particles(num_particles: usize) -> Self {
        TraceGraphElbo {
            config: ElboConfig {
                num_particles,
                ..Default::default()
            },
            averages: RefCell::default(),
        }
    }

    /// `(elbo, surrogate elbo, baseline loss)` for one trace pair.
    fn particle(&self, model: &mut Trace, guide: &mut Trace) -> Result<(Tensor, Tensor, Tensor)> {
        type Term = (Tensor, Vec<CondIndepFrame>);
        let mut elbo = super::zero_like(guide)?;
        let mut model_terms: Vec<(String, Term)> = Vec::new();
        for s in model.iter_mut().filter(|s| s.is_scored()) {
            let lp = s.compute_log_prob()?.shallow_clone();
            elbo = elbo.f_add(&total(&lp)?)?;
            model_terms.push((s.name.clone(), (lp.f_detach()?, s.cond_indep_stack.clone())));
        }
        let mut guide_terms: Vec<(String, Term)> = Vec::new();
        for s in guide.iter_mut().filter(|s| s.is_scored()) {
            let non_reparam = s.is_non_reparam();
            let lp = s.compute_log_prob()?.shallow_clone();
            let detached = lp.f_detach()?;
            // A non-reparameterized site's own `-log q` enters by value only, as in Pyro: its
            // expected gradient is zero, so differentiating it would only add noise.
            elbo = elbo.f_sub(&total(if non_reparam { &detached } else { &lp })?)?;
            guide_terms.push((s.name.clone(), (detached, s.cond_indep_stack.clone())));
        }
        let mut surrogate = elbo.shallow_clone();
        let mut baseline_loss = super::zero_like(guide)?;
        for s in guide.iter_mut().filter(|s| s.is_non_reparam()) {
            let frames = s.cond_indep_stack.clone();
            let gpos = guide_terms.iter().position(|(n, _)| *n == s.name);
            let mpos = model_terms.iter().position(|(n, _)| *n == s.name);
            let mut cost: Option<Tensor> = None;
            for (_, (lp, f)) in model_terms.iter().skip(mpos.unwrap_or(0)) {
                cost = add_broadcast(cost, sum_to(lp, f, &frames)?)?;
            }
            for (_, (lp, f)) in guide_terms.iter().skip(gpos.unwrap_or(0)) {
                cost = add_broadcast(cost, sum_to(&lp.f_neg()?, f, &frames)?)?;
            }
            let Some(cost) = cost else { continue };

            let mut baseline: Option<Tensor> = None;
            let learned = match (&s.infer.nn_baseline, &s.infer.baseline_value) {
                (Some(nn), _) => Some(nn.module.forward(&nn.input)),
                (None, Some(v)) => Some(v.shallow_clone()),
                (None, None) => None,
            };
            if let Some(b) = learned {
                let diff = cost.f_sub(&b)?;
                baseline_loss = baseline_loss.f_add(&total(&diff.f_square()?)?)?;
                baseline = Some(b);
            }
            if s.infer.use_decaying_avg_baseline || s.infer.baseline_beta.is_some() {
                let beta = s.infer.baseline_beta.unwrap_or(0.90);
                let mut avgs = self.averages.borrow_mut();
                let old = match avgs.get(&s.name) {
                    Some(t) => t.shallow_clone(),
                    None => cost.f_zeros_like()?,
                };
                let new = cost
                    .f_mul_scalar(1.0 - beta)?
                    .f_add(&old.f_mul_scalar(beta)?)?
                    .f_detach()?;
                avgs.insert(s.name.clone(), new);
                baseline = add_broadcast(baseline, old)?;
            }
            let centered = match baseline {
                Some(b) => cost.f_sub(&b)?,
                None => cost,
            };
            let score = s.score_function()?;
            surrogate = surrogate.f_add(&total(&score.f_mul(&centered.f_detach()?)?)?)?;
        }
        Ok((elbo, surrogate, baseline_loss))
    }
}

impl Elbo for TraceGraphElbo {
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        average_particles(&self.config, model, guide, |m, g| {
            let (elbo, surrogate, baseline_loss) = self.particle(m, g)?;
            Ok((elbo, surrogate, Some(baseline_loss)))
        })
    }
}
