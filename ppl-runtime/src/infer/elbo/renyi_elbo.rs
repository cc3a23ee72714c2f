//! `RenyiElbo` (Pyro's `RenyiELBO`): the variational Rényi bound of Li and Turner (2016).

use tch::Tensor;

use super::trace_elbo::elbo_and_surrogate;
use super::{check_finite, param_names, particles, Elbo, ElboConfig, ElboOutput};
use crate::error::{Error, Result};

/// The Rényi divergence bound with order `alpha` (≠ 1; `alpha = 0` is the importance-weighted
/// bound of Burda et al.): `1/(1-α) log( (1/K) Σ_k w_k^(1-α) )` with `w_k = p(x, z_k) / q(z_k)`
/// over `K = num_particles` particles. Gradients weight each particle's surrogate by its
/// normalized weight.
#[derive(Clone, Debug)]
pub struct RenyiElbo {
    /// The order α of the divergence (default 0).
    pub alpha: f64,
    /// Particles (at least 2 make sense), plate nesting. Vectorized particles are not supported.
    pub config: ElboConfig,
}

impl Default for RenyiElbo {
    fn default() -> Self {
        RenyiElbo {
            alpha: 0.0,
            config: ElboConfig {
                num_particles: 2,
                ..Default::default()
            },
        }
    }
}

impl RenyiElbo {
    /// Order `alpha` with `num_particles` particles.
    pub fn new(alpha: f64, num_particles: usize) -> Result<Self> {
        if (alpha - 1.0).abs() < 1e-12 {
            return Err(Error::InvalidParameter {
                dist: "RenyiElbo",
                param: "alpha",
                expected: "≠ 1 (alpha = 1 is the ordinary ELBO: use TraceElbo)".into(),
            });
        }
        Ok(RenyiElbo {
            alpha,
            config: ElboConfig {
                num_particles,
                ..Default::default()
            },
        })
    }
}

impl Elbo for RenyiElbo {
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        if self.config.vectorize_particles {
            return Err(Error::Config(
                "RenyiElbo: vectorize_particles is not supported; use num_particles runs".into(),
            ));
        }
        let pairs = particles(&self.config, model, guide)?;
        let k = pairs.len() as f64;
        let one_minus = 1.0 - self.alpha;
        let (mut values, mut surrogates, mut params) = (Vec::new(), Vec::new(), Vec::new());
        let mut largest_site = 0;
        for (mut m, mut g) in pairs {
            param_names([&m, &g], &mut params);
            largest_site = largest_site.max(super::largest([&m, &g]));
            let (elbo, surr) = elbo_and_surrogate(&mut m, &mut g)?;
            let value = elbo.f_double_value(&[])?;
            check_finite(value, &mut m, &mut g)?;
            values.push(value);
            surrogates.push(surr);
        }
        let log_w: Vec<f64> = values.iter().map(|v| one_minus * v).collect();
        let max = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_mean = max + (log_w.iter().map(|l| (l - max).exp()).sum::<f64>() / k).ln();
        let elbo = log_mean / one_minus;
        let mut surrogate_elbo: Option<Tensor> = None;
        for (lw, surr) in log_w.iter().zip(surrogates) {
            let w = (lw - log_mean).exp() / k;
            let term = surr.f_mul_scalar(w)?;
            surrogate_elbo = super::add_broadcast(surrogate_elbo, term)?;
        }
        Ok(ElboOutput {
            loss: -elbo,
            surrogate_loss: match surrogate_elbo {
                Some(s) => s.f_neg()?,
                None => Tensor::from(0.0f32),
            },
            params,
            loss_tensor: Tensor::from(-elbo),
            largest_site,
        })
    }
}
