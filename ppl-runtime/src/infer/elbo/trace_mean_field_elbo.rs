//! `TraceMeanFieldElbo` (Pyro's `TraceMeanField_ELBO`): analytic KL terms where registered.

use tch::Tensor;

use super::trace_elbo::elbo_and_surrogate;
use super::{add_broadcast, average_particles, total, Elbo, ElboConfig, ElboOutput};
use crate::distributions::Distribution;
use crate::error::{Error, Result};
use crate::poutine::{scale_and_mask, Trace};

/// For guides whose latent sites are independent of each other given the data (mean field):
/// `ELBO = E_q[log p(x | z)] - Σ_sites KL(q(z_s) || p(z_s))`, with each KL computed in closed form
/// where the pair of families has one registered (see `distributions::kl_divergence`) and
/// estimated by Monte Carlo otherwise. Lower variance than [`super::TraceElbo`] where it applies.
#[derive(Clone, Debug, Default)]
pub struct TraceMeanFieldElbo {
    /// Particles, vectorization, plate nesting.
    pub config: ElboConfig,
}

/// The analytic KL of `q` from `p`, if registered for the pair.
fn analytic_kl(q: &dyn Distribution, p: &dyn Distribution) -> Result<Option<Tensor>> {
    match crate::distributions::kl_divergence(q, p) {
        Ok(t) => Ok(Some(t)),
        Err(Error::NoKlRule { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn particle(model: &mut Trace, guide: &mut Trace) -> Result<(Tensor, Tensor)> {
    // Sites whose KL is analytic are scored as -KL; the rest by Trace_ELBO's estimator.
    let mut analytic = Vec::new();
    let mut kl_total: Option<Tensor> = None;
    for g in guide.iter().filter(|s| s.is_latent()) {
        let Some(m) = model.get(&g.name) else {
            continue;
        };
        let (Some(qd), Some(pd)) = (&g.dist, &m.dist) else {
            continue;
        };
        if let Some(kl) = analytic_kl(qd.as_ref(), pd.as_ref())? {
            let kl = scale_and_mask(&kl, g.scale, g.mask.as_ref())?;
            kl_total = add_broadcast(kl_total, total(&kl)?)?;
            analytic.push(g.name.clone());
        }
    }
    let mut m_rest = model.clone();
    let mut g_rest = guide.clone();
    for n in &analytic {
        m_rest.remove(n);
        g_rest.remove(n);
    }
    let (elbo, surr) = elbo_and_surrogate(&mut m_rest, &mut g_rest)?;
    match kl_total {
        Some(kl) => Ok((elbo.f_sub(&kl)?, surr.f_sub(&kl)?)),
        None => Ok((elbo, surr)),
    }
}

impl Elbo for TraceMeanFieldElbo {
    fn supports_jit(&self) -> bool {
        true
    }

    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        average_particles(&self.config, model, guide, |m, g| {
            let (elbo, surrogate) = particle(m, g)?;
            Ok((elbo, surrogate, None))
        })
    }
}
