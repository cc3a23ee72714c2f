//! What a run of [`Mcmc`] leaves: each chain's draws and statistics, the samples as tensors, the
//! per-site diagnostics (effective sample size, split R-hat) and the printed summary.

use std::fmt::Write as _;

use indexmap::IndexMap;
use tch::{Device, Kind, Tensor};

use super::diagnostics::{self, ScalarSummary};
use super::kernel::TransitionStats;
use super::mass_matrix::InverseMassMatrix;
use super::mcmc::Mcmc;
use super::model_spec::ModelSpec;
use super::state::ChainState;
use crate::error::{Error, Result};

/// The outcome of one chain.
#[derive(Clone, Debug)]
pub struct ChainResult {
    /// Constrained draws per site: `num_samples × site size` values, draw after draw.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Unconstrained draws: `num_samples × dim`.
    pub unconstrained: Vec<f64>,
    /// Statistics of each sampling transition.
    pub stats: Vec<TransitionStats>,
    /// Divergent transitions during warmup.
    pub warmup_divergences: usize,
    /// Mean acceptance statistic during warmup.
    pub warmup_mean_accept_prob: f64,
    /// The step size used for sampling.
    pub step_size: f64,
    /// The inverse mass matrix used for sampling.
    pub inverse_mass_matrix: InverseMassMatrix,
    /// Gradient evaluations (≈ leapfrog steps, including the step-size search) during warmup.
    pub warmup_grad_evals: usize,
    /// Gradient evaluations during sampling.
    pub sample_grad_evals: usize,
    /// Seconds spent in warmup.
    pub warmup_seconds: f64,
    /// Seconds spent sampling.
    pub sample_seconds: f64,
    /// Where the chain stopped ([`Mcmc::last_state`](super::Mcmc::last_state)).
    pub last_state: ChainState,
}

impl ChainResult {
    /// Indices of the divergent sampling transitions.
    pub fn divergences(&self) -> Vec<usize> {
        self.stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.diverging)
            .map(|(i, _)| i)
            .collect()
    }

    /// Mean acceptance statistic while sampling.
    pub fn mean_accept_prob(&self) -> f64 {
        diagnostics::mean(&self.stats.iter().map(|s| s.accept_prob).collect::<Vec<_>>())
    }
}

/// Per-site diagnostics: the effective sample size and split R-hat of each element.
#[derive(Clone, Debug)]
pub struct SiteDiagnostics {
    /// Effective sample size of each element (row-major over the site's shape).
    pub n_eff: Vec<f64>,
    /// Split R-hat of each element.
    pub r_hat: Vec<f64>,
}

impl Mcmc {
    pub(super) fn spec_or_err(&self) -> Result<&ModelSpec> {
        self.spec
            .as_ref()
            .ok_or_else(|| Error::Config("MCMC has not run yet: call run first".into()))
    }

    /// The draws of each site, grouped by chain: `[num_chains, num_samples] + site shape` (float64
    /// on the CPU).
    pub fn samples_by_chain_f64(&self) -> Result<IndexMap<String, Tensor>> {
        let spec = self.spec_or_err()?;
        let mut out = IndexMap::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let mut data = Vec::new();
            for ch in &self.chains {
                data.extend_from_slice(&ch.samples[k].1);
            }
            let mut shape = vec![self.chains.len() as i64, self.num_samples as i64];
            shape.extend_from_slice(&s.shape);
            out.insert(
                s.name.clone(),
                Tensor::f_from_slice(&data)?.f_reshape(shape.as_slice())?,
            );
        }
        Ok(out)
    }

    fn to_model(&self, t: Tensor) -> Result<Tensor> {
        let spec = self.spec_or_err()?;
        let t = if spec.kind == Kind::Double {
            t
        } else {
            t.f_to_kind(spec.kind)?
        };
        Ok(if spec.device == Device::Cpu {
            t
        } else {
            t.f_to_device(spec.device)?
        })
    }

    /// The constrained draws of each latent site, all chains together:
    /// `[num_chains * num_samples] + site shape`, in the model's dtype and on its device.
    pub fn get_samples(&self) -> Result<IndexMap<String, Tensor>> {
        let mut out = IndexMap::new();
        for (k, t) in self.samples_by_chain_f64()? {
            let t = t.f_flatten(0, 1)?;
            out.insert(k, self.to_model(t)?);
        }
        Ok(out)
    }

    /// The constrained draws of each latent site grouped by chain:
    /// `[num_chains, num_samples] + site shape`.
    pub fn get_samples_by_chain(&self) -> Result<IndexMap<String, Tensor>> {
        let mut out = IndexMap::new();
        for (k, t) in self.samples_by_chain_f64()? {
            out.insert(k, self.to_model(t)?);
        }
        Ok(out)
    }

    /// The draws of element `j` of site `k`, one vector per chain.
    fn element(&self, k: usize, j: usize, numel: usize) -> Vec<Vec<f64>> {
        self.chains
            .iter()
            .map(|ch| {
                ch.samples[k]
                    .1
                    .iter()
                    .skip(j)
                    .step_by(numel.max(1))
                    .copied()
                    .collect()
            })
            .collect()
    }

    pub(super) fn site_numel(shape: &[i64]) -> usize {
        shape.iter().product::<i64>().max(0) as usize
    }

    /// Effective sample size and split R-hat of every element of every site.
    pub fn diagnostics(&self) -> Result<IndexMap<String, SiteDiagnostics>> {
        let spec = self.spec_or_err()?;
        let mut out = IndexMap::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let numel = Self::site_numel(&s.shape);
            let mut d = SiteDiagnostics {
                n_eff: Vec::with_capacity(numel),
                r_hat: Vec::with_capacity(numel),
            };
            for j in 0..numel {
                let el = self.element(k, j, numel);
                let refs: Vec<&[f64]> = el.iter().map(|v| v.as_slice()).collect();
                d.n_eff.push(diagnostics::effective_sample_size(&refs)?);
                d.r_hat.push(diagnostics::split_r_hat(&refs)?);
            }
            out.insert(s.name.clone(), d);
        }
        Ok(out)
    }

    /// Summary statistics of every element of every site, with row names like `theta[3]`.
    pub fn summary_table(&self, prob: f64) -> Result<Vec<(String, ScalarSummary)>> {
        let spec = self.spec_or_err()?;
        let mut rows = Vec::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let numel = Self::site_numel(&s.shape);
            for j in 0..numel {
                let el = self.element(k, j, numel);
                let refs: Vec<&[f64]> = el.iter().map(|v| v.as_slice()).collect();
                let name = if s.shape.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}[{}]", s.name, unravel(j, &s.shape))
                };
                rows.push((name, diagnostics::summarize(&refs, prob)?));
            }
        }
        Ok(rows)
    }

    /// The summary table as Pyro prints it: mean, std, median, the HPDI of mass `prob`, n_eff
    /// and r_hat per element, then the number of divergences.
    pub fn summary(&self, prob: f64) -> Result<String> {
        let rows = self.summary_table(prob)?;
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(10);
        let lo = format!("{:.1}%", 50.0 * (1.0 - prob));
        let hi = format!("{:.1}%", 50.0 * (1.0 + prob));
        let mut s = String::new();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "mean", "std", "median", lo, hi, "n_eff", "r_hat"
        );
        for (name, r) in &rows {
            let _ = writeln!(
                s,
                "{name:>width$} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                r.mean, r.std, r.median, r.lower, r.upper, r.n_eff, r.r_hat
            );
        }
        let _ = writeln!(s);
        let divs: usize = self.chains.iter().map(|c| c.divergences().len()).sum();
        let _ = writeln!(s, "Number of divergences: {divs}");
        Ok(s)
    }

    /// Prints [`Mcmc::summary`].
    pub fn print_summary(&self, prob: f64) -> Result<()> {
        print!("{}", self.summary(prob)?);
        Ok(())
    }

    /// Number of divergent sampling transitions, all chains together.
    pub fn num_divergences(&self) -> usize {
        self.chains.iter().map(|c| c.divergences().len()).sum()
    }
}

/// `j` as a multi-index of `shape`, comma-separated.
pub(crate) fn unravel(mut j: usize, shape: &[i64]) -> String {
    let mut idx = vec![0usize; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        let n = n.max(1) as usize;
        idx[d] = j % n;
        j /= n;
    }
    idx.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
