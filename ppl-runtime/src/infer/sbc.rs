//! Simulation-based calibration (Talts et al. 2018, "Validating Bayesian inference algorithms
//! with simulation-based calibration").
//!
//! Draw parameters from the prior and data from the model given them; run inference on the
//! data; record the rank of each true parameter among the posterior draws. If the inference is
//! exact, every rank is uniform on `0..=L` (L posterior draws per simulation), whatever the
//! model. A rank histogram that piles at the ends means the posterior is too narrow, one that
//! piles in the middle too wide, and one tilted to a side biased.

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::jit::gamma_p;

/// The ranks of each scalar parameter (site elements flattened: `name[i]`) over the simulations.
#[derive(Clone, Debug)]
pub struct SbcRanks {
    /// Rank of the truth among the posterior draws, per coordinate, one per simulation.
    pub ranks: IndexMap<String, Vec<usize>>,
    /// Posterior draws per simulation (ranks lie in `0..=num_draws`).
    pub num_draws: usize,
}

/// Runs `num_simulations` rounds of simulation-based calibration.
///
/// `simulate` returns the true parameters (site name to value) and the data drawn given them;
/// `posterior` runs the inference under test on that data and returns `num_draws` posterior
/// draws per site (site name to a tensor whose leading dimension indexes the draws). For
/// correlated draws (MCMC), thin them first: SBC assumes independent draws.
pub fn sbc<D>(
    num_simulations: usize,
    mut simulate: impl FnMut() -> Result<(IndexMap<String, Tensor>, D)>,
    mut posterior: impl FnMut(&D) -> Result<IndexMap<String, Tensor>>,
) -> Result<SbcRanks> {
    let mut ranks: IndexMap<String, Vec<usize>> = IndexMap::new();
    let mut num_draws = None;
    for _ in 0..num_simulations {
        let (truth, data) = simulate()?;
        let draws = posterior(&data)?;
        for (name, t) in &truth {
            let d = draws.get(name).ok_or_else(|| Error::MissingSite {
                site: name.clone(),
                message: "the posterior returned no draws of this true parameter".into(),
            })?;
            let l = d.size().first().copied().unwrap_or(0) as usize;
            if *num_draws.get_or_insert(l) != l {
                return Err(Error::Shape(format!(
                    "site `{name}`: {l} posterior draws here, {} elsewhere",
                    num_draws.unwrap_or(0)
                )));
            }
            let truth: Vec<f64> = Vec::try_from(t.f_to_kind(Kind::Double)?.f_reshape([-1])?)?;
            let d: Vec<f64> = Vec::try_from(
                d.f_to_kind(Kind::Double)?
                    .f_reshape([l as i64, -1])?
                    .f_reshape([-1])?,
            )?;
            let k = truth.len();
            if d.len() != l * k {
                return Err(Error::Shape(format!(
                    "site `{name}`: draws of {} values each for a truth of {k}",
                    d.len() / l.max(1)
                )));
            }
            for (i, &x) in truth.iter().enumerate() {
                let rank = (0..l).filter(|&j| d[j * k + i] < x).count();
                let key = if k == 1 {
                    name.clone()
                } else {
                    format!("{name}[{i}]")
                };
                ranks.entry(key).or_default().push(rank);
            }
        }
    }
    Ok(SbcRanks {
        ranks,
        num_draws: num_draws.unwrap_or(0),
    })
}

impl SbcRanks {
    /// The chi-square test of uniform ranks for each coordinate, in `bins` equal bins of the
    /// `num_draws + 1` possible ranks (`num_draws + 1` must be a multiple of `bins`): the
    /// statistic and its p-value under uniformity (`bins - 1` degrees of freedom).
    pub fn chi_square(&self, bins: usize) -> Result<IndexMap<String, (f64, f64)>> {
        let values = self.num_draws + 1;
        if bins < 2 || !values.is_multiple_of(bins) {
            return Err(Error::Config(format!(
                "sbc: {bins} bins do not split the {values} possible ranks evenly"
            )));
        }
        let width = values / bins;
        let mut out = IndexMap::new();
        for (name, r) in &self.ranks {
            let mut counts = vec![0usize; bins];
            for &x in r {
                counts[x / width] += 1;
            }
            let expected = r.len() as f64 / bins as f64;
            let stat: f64 = counts
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            out.insert(
                name.clone(),
                (stat, 1.0 - gamma_p((bins - 1) as f64 / 2.0, stat / 2.0)),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chi-square CDF (`jit::gamma_p`) against scipy's `chi2.cdf`.
    #[test]
    fn chi_square_cdf() {
        // scipy 1.x: chi2.cdf(3.0, 4), chi2.cdf(9.487729036781154, 4), chi2.cdf(20.0, 9),
        // chi2.cdf(0.5, 1).
        for (x, k, p) in [
            (3.0, 4.0, 0.4421745996289252),
            (9.487729036781154, 4.0, 0.95),
            (20.0, 9.0, 0.9820875954701567),
            (0.5, 1.0, 0.5204998778130466),
        ] {
            let got = gamma_p(k / 2.0, x / 2.0);
            assert!(
                (got - p).abs() < 1e-9,
                "chi2.cdf({x}, {k}) = {got}, table {p}"
            );
        }
    }
}
