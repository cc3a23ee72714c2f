//! Evidence lower bounds.

use std::rc::Rc;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::params::with_param_store;
use crate::poutine::{self, SiteKind, Trace};

/// A differentiable ELBO estimate and the params it depends on.
pub struct ElboOutput {
    /// The loss `-ELBO` as a number.
    pub loss: f64,
    /// A scalar whose gradient is the gradient estimate of the loss.
    pub surrogate_loss: Tensor,
    /// Names of the params that appeared in model or guide.
    pub params: Vec<String>,
}

/// A loss for SVI.
pub trait Elbo {
    /// Runs guide and model and returns the loss with its differentiable surrogate.
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput>;

    /// One optimization step: computes the loss, backpropagates and updates the params.
    fn step<R1, R2>(
        &self,
        mut model: impl FnMut() -> Result<R1>,
        mut guide: impl FnMut() -> Result<R2>,
        optim: &mut dyn Optimizer,
    ) -> Result<f64> {
        let out = self.loss_and_surrogate(&mut model, &mut guide)?;
        let params: Vec<(String, Tensor)> = with_param_store(|ps| {
            out.params
                .iter()
                .filter_map(|n| {
                    ps.entry(n)
                        .map(|e| (n.clone(), e.unconstrained.shallow_clone()))
                })
                .collect()
        });
        for (_, p) in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_()?;
            }
        }
        if out.surrogate_loss.requires_grad() {
            out.surrogate_loss.f_backward()?;
        }
        optim.step(&params)?;
        Ok(out.loss)
    }
}

/// Pyro's `Trace_ELBO`: a Monte Carlo ELBO with pathwise gradients through reparameterized guide
/// sites and score-function (REINFORCE) terms for the others.
#[derive(Clone, Debug)]
pub struct TraceElbo {
    /// Number of particles averaged per estimate.
    pub num_particles: usize,
}

impl Default for TraceElbo {
    fn default() -> Self {
        TraceElbo { num_particles: 1 }
    }
}

/// Traces the guide, then the model replayed against it.
pub fn get_traces<R1, R2>(
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
) -> Result<(Trace, Trace)> {
    let (_, guide_tr) = poutine::trace(&mut *guide)?;
    let guide_tr = Rc::new(guide_tr);
    let (_, model_tr) = poutine::trace(|| poutine::replay(guide_tr.clone(), &mut *model))?;
    let guide_tr = Rc::try_unwrap(guide_tr).unwrap_or_else(|rc| (*rc).clone());
    for s in guide_tr.stochastic_nodes() {
        if !s.infer.is_auxiliary && !model_tr.contains(&s.name) {
            return Err(Error::MissingSite {
                site: s.name.clone(),
                message: "the guide samples this site but the model has no site of that name"
                    .into(),
            });
        }
    }
    Ok((model_tr, guide_tr))
}

fn param_names(trs: [&Trace; 2], out: &mut Vec<String>) {
    for tr in trs {
        for s in tr.iter().filter(|s| s.kind == SiteKind::Param) {
            if !out.contains(&s.name) {
                out.push(s.name.clone());
            }
        }
    }
}

impl Elbo for TraceElbo {
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        let n = self.num_particles.max(1);
        let mut loss = 0.0;
        let mut surrogate: Option<Tensor> = None;
        let mut params = Vec::new();
        for _ in 0..n {
            let (mut model_tr, mut guide_tr) = get_traces(model, guide)?;
            param_names([&model_tr, &guide_tr], &mut params);
            let log_p = model_tr.log_prob_sum()?;
            let log_q = guide_tr.log_prob_sum()?;
            let elbo = log_p.f_sub(&log_q)?;
            let elbo_value = elbo.f_double_value(&[])?;
            if !elbo_value.is_finite() {
                model_tr.check_finite()?;
                guide_tr.check_finite()?;
                return Err(Error::NonFinite(format!("the ELBO is {elbo_value}")));
            }
            // Score-function terms for the guide's non-reparameterized sites.
            let mut surr = elbo.shallow_clone();
            let detached = elbo.f_detach()?;
            for s in guide_tr.iter_mut().filter(|s| s.is_latent()) {
                let reparam = s.dist.as_ref().is_some_and(|d| d.has_rsample());
                if !reparam {
                    let lp = s.compute_log_prob()?.f_sum(Kind::Float)?;
                    surr = surr.f_add(&lp.f_mul(&detached)?)?;
                }
            }
            loss -= elbo_value / n as f64;
            let term = surr.f_div_scalar(-(n as f64))?;
            surrogate = Some(match surrogate {
                None => term,
                Some(t) => t.f_add(&term)?,
            });
        }
        let surrogate_loss = match surrogate {
            Some(s) => s,
            None => Tensor::f_zeros([], (Kind::Float, tch::Device::Cpu))?,
        };
        Ok(ElboOutput {
            loss,
            surrogate_loss,
            params,
        })
    }
}
