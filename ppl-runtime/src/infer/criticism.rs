//! Model criticism: pointwise log-likelihoods of posterior draws (NumPyro's `log_likelihood`),
//! WAIC, PSIS-LOO with the Pareto k̂ diagnostic, and model comparison, computed as ArviZ 0.23
//! computes them (`az.waic`, `az.loo`, `az.psislw`, `az.compare`, on the default `log` scale),
//! and Pyro's `psis_diagnostic` for a guide.
//!
//! The log-likelihood array has shape `[chains, draws, points]`; draws are counted chain first.
//! References: Vehtari, Gelman and Gabry (2017), "Practical Bayesian model evaluation using
//! leave-one-out cross-validation and WAIC"; Vehtari et al. (2024), "Pareto smoothed importance
//! sampling"; Zhang and Stephens (2009) for the generalized Pareto fit. Tests check every number
//! against ArviZ on fixed draws (`scripts/make_criticism_fixtures.py`).

use indexmap::IndexMap;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result, ResultExt};
use crate::poutine::{self, SiteKind};

/// Pointwise log-likelihoods: `data[(c * draws + d) * points + i]` for chain `c`, draw `d`,
/// point `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLikelihood {
    chains: usize,
    draws: usize,
    points: usize,
    data: Vec<f64>,
}

impl LogLikelihood {
    /// From a tensor of shape `[chains, draws, ...]` (the trailing dims are the points, flattened
    /// row-major), or `[draws, points]` for one chain.
    pub fn from_tensor(t: &Tensor) -> Result<LogLikelihood> {
        let s = t.size();
        let t = match s.len() {
            2 => t.f_unsqueeze(0)?,
            n if n >= 3 => t.f_flatten(2, -1)?,
            _ => {
                return Err(Error::Shape(format!(
                    "a pointwise log-likelihood needs shape [chains, draws, points...] or \
                     [draws, points], got {s:?}"
                )))
            }
        };
        let s = t.size();
        let data = Vec::<f64>::try_from(
            &t.f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?
                .f_reshape([-1])?
                .f_contiguous()?,
        )?;
        LogLikelihood::new(s[0] as usize, s[1] as usize, s[2] as usize, data)
    }

    /// From values in `[chains][draws][points]` order.
    pub fn new(chains: usize, draws: usize, points: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != chains * draws * points || chains == 0 || draws == 0 || points == 0 {
            return Err(Error::Shape(format!(
                "{} log-likelihood values are not {chains} chains × {draws} draws × {points} \
                 points (all nonzero)",
                data.len()
            )));
        }
        if let Some(v) = data.iter().find(|v| v.is_nan() || **v == f64::INFINITY) {
            return Err(Error::Invalid(format!(
                "the pointwise log-likelihood holds {v}: every draw needs a finite or -inf \
                 log-density at every point"
            )));
        }
        Ok(LogLikelihood {
            chains,
            draws,
            points,
            data,
        })
    }

    /// Chains, draws per chain, points.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.chains, self.draws, self.points)
    }

    /// Total draws (all chains).
    pub fn num_samples(&self) -> usize {
        self.chains * self.draws
    }

    /// The draws of point `i`, chain first.
    pub fn point(&self, i: usize) -> Vec<f64> {
        (0..self.num_samples())
            .map(|s| self.data[s * self.points + i])
            .collect()
    }
}

/// The pointwise log-likelihood of each observed site of `model` under each posterior draw
/// (NumPyro's `log_likelihood` with `batch_ndims=2`): `samples` holds the latent sites' draws
/// with shape `[chains, draws] + site shape` (as `Mcmc::get_samples_by_chain` gives them); the
/// result holds, per observed site, `[chains, draws] + the site's batch shape`, unscaled and
/// unmasked (masked-out points read `log p` all the same; drop them before `loo` if they are not
/// data).
pub fn log_likelihood<R>(
    model: impl Fn() -> Result<R>,
    samples: &IndexMap<String, Tensor>,
) -> Result<IndexMap<String, Tensor>> {
    let Some(first) = samples.values().next() else {
        return Err(Error::Invalid(
            "log_likelihood needs the posterior draws of at least one latent site".into(),
        ));
    };
    let lead = first.size();
    if lead.len() < 2 {
        return Err(Error::Shape(format!(
            "posterior draws need shape [chains, draws, ...], got {lead:?}"
        )));
    }
    let (chains, draws) = (lead[0], lead[1]);
    for (name, t) in samples {
        let s = t.size();
        if s.len() < 2 || s[0] != chains || s[1] != draws {
            return Err(Error::AtSite {
                site: name.clone(),
                source: Box::new(Error::Shape(format!(
                    "draws of shape {s:?}, where the other sites have [{chains}, {draws}, ...]"
                ))),
            });
        }
    }
    let mut per_site: IndexMap<String, Vec<Tensor>> = IndexMap::new();
    tch::no_grad(|| -> Result<()> {
        for c in 0..chains {
            for d in 0..draws {
                let values = poutine::data(
                    samples
                        .iter()
                        .map(|(k, t)| Ok((k.clone(), t.f_get(c)?.f_get(d)?)))
                        .collect::<Result<Vec<(String, Tensor)>>>()?,
                );
                // Conditioning gives the latent sites their draws; the sites named in `samples`
                // are then observed too, so only the others are the data.
                let (_, tr) = poutine::trace(|| poutine::condition(values, &model))?;
                for s in tr.iter() {
                    if s.kind != SiteKind::Sample
                        || !s.is_observed
                        || !s.is_scored()
                        || samples.contains_key(&s.name)
                    {
                        continue;
                    }
                    let lp = s.dist()?.log_prob(&s.value).at_site(&s.name)?;
                    per_site.entry(s.name.clone()).or_default().push(lp);
                }
            }
        }
        Ok(())
    })?;
    if per_site.is_empty() {
        return Err(Error::Invalid(
            "the model has no observed sites: there is no likelihood to evaluate".into(),
        ));
    }
    let mut out = IndexMap::new();
    for (name, lps) in per_site {
        if lps.len() as i64 != chains * draws {
            return Err(Error::AtSite {
                site: name,
                source: Box::new(Error::Invalid(
                    "the site is observed in some draws only: the pointwise log-likelihood \
                     needs it in every one"
                        .into(),
                )),
            });
        }
        let t = Tensor::f_stack(&lps, 0).at_site(&name)?;
        let mut shape = vec![chains, draws];
        shape.extend(t.size().into_iter().skip(1));
        out.insert(name, t.f_reshape(shape.as_slice())?);
    }
    Ok(out)
}

/// The pointwise log-likelihood under `num_samples` draws of the latent sites from a fitted
/// `guide` (the variational posterior): [`log_likelihood`] of the guide's draws, as one chain
/// (`[1, num_samples] + batch shape` per observed site). With it, `waic` and `loo` score an SVI
/// fit (for `loo`, pass `Some(1.0)`: the draws are independent).
pub fn log_likelihood_from_guide<R, G>(
    model: impl Fn() -> Result<R>,
    guide: impl Fn() -> Result<G>,
    num_samples: usize,
) -> Result<IndexMap<String, Tensor>> {
    if num_samples == 0 {
        return Err(Error::Config(
            "log_likelihood_from_guide needs num_samples >= 1".into(),
        ));
    }
    let mut draws: IndexMap<String, Vec<Tensor>> = IndexMap::new();
    tch::no_grad(|| -> Result<()> {
        for _ in 0..num_samples {
            let (_, tr) = poutine::trace(&guide)?;
            for s in tr.iter() {
                if s.kind == SiteKind::Sample && !s.is_observed {
                    draws
                        .entry(s.name.clone())
                        .or_default()
                        .push(s.value.shallow_clone());
                }
            }
        }
        Ok(())
    })?;
    let mut samples = IndexMap::new();
    for (name, values) in draws {
        if values.len() != num_samples {
            return Err(Error::AtSite {
                site: name,
                source: Box::new(Error::Invalid(
                    "the guide samples this site in some runs only".into(),
                )),
            });
        }
        let t = Tensor::f_stack(&values, 0)?.f_unsqueeze(0)?;
        samples.insert(name, t);
    }
    log_likelihood(model, &samples)
}

/// All observed sites' pointwise log-likelihoods as one [`LogLikelihood`], the points of each
/// site flattened and the sites in order.
pub fn pointwise(sites: &IndexMap<String, Tensor>) -> Result<LogLikelihood> {
    let parts = sites
        .values()
        .map(|t| {
            let s = t.size();
            if s.len() < 2 {
                return Err(Error::Shape(format!(
                    "a log-likelihood of shape {s:?} is not [chains, draws, ...]"
                )));
            }
            let mut shape = s[..2].to_vec();
            shape.push(-1);
            Ok(t.f_reshape(shape.as_slice())?.f_to_kind(Kind::Double)?)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    LogLikelihood::from_tensor(&Tensor::f_cat(&parts, 2)?)
}

fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// The variance with divisor `n` (numpy's default `ddof=0`, as ArviZ uses).
fn var0(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

/// `sqrt(n var₀(x))`, ArviZ's standard error of a sum of `n` pointwise terms.
fn se_of_sum(x: &[f64]) -> f64 {
    (x.len() as f64 * var0(x)).sqrt()
}

/// The widely applicable information criterion (`az.waic(..., pointwise=True)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Waic {
    /// Expected log pointwise predictive density, `Σ_i (lppd_i - p_i)`.
    pub elpd_waic: f64,
    /// Its standard error.
    pub se: f64,
    /// Effective number of parameters, `Σ_i var_s(log p(y_i | θ_s))`.
    pub p_waic: f64,
    /// `lppd_i - p_i` per point.
    pub pointwise: Vec<f64>,
    /// Some point's posterior variance of the log-density exceeds 0.4: WAIC is unreliable there
    /// (ArviZ's warning); prefer `loo`.
    pub warning: bool,
    /// Draws in all.
    pub n_samples: usize,
    /// Points.
    pub n_points: usize,
}

/// WAIC of the pointwise log-likelihood, as `az.waic` computes it.
pub fn waic(ll: &LogLikelihood) -> Waic {
    let s = ll.num_samples();
    let mut pointwise = Vec::with_capacity(ll.points);
    let mut p_waic = 0.0;
    let mut warning = false;
    for i in 0..ll.points {
        let x = ll.point(i);
        let lppd = logsumexp(&x) - (s as f64).ln();
        let v = var0(&x);
        warning |= v > 0.4;
        p_waic += v;
        pointwise.push(lppd - v);
    }
    Waic {
        elpd_waic: pointwise.iter().sum(),
        se: se_of_sum(&pointwise),
        p_waic,
        pointwise,
        warning,
        n_samples: s,
        n_points: ll.points,
    }
}

/// Leave-one-out cross-validation by Pareto-smoothed importance sampling (`az.loo(...,
/// pointwise=True)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Loo {
    /// Expected log pointwise predictive density, `Σ_i loo_i`.
    pub elpd_loo: f64,
    /// Its standard error.
    pub se: f64,
    /// Effective number of parameters, `lppd - elpd_loo`.
    pub p_loo: f64,
    /// `log p(y_i | y_-i)` per point.
    pub pointwise: Vec<f64>,
    /// The Pareto shape k̂ of each point's importance weights (`inf` when the tail is too short
    /// to fit).
    pub pareto_k: Vec<f64>,
    /// Some k̂ exceeds `good_k`: the estimate is unreliable at those points.
    pub warning: bool,
    /// The threshold `min(1 - 1/log10(S), 0.7)` for `S` draws.
    pub good_k: f64,
    /// The relative efficiency used for the tail length.
    pub reff: f64,
    /// Draws in all.
    pub n_samples: usize,
    /// Points.
    pub n_points: usize,
}

impl Loo {
    /// The points whose k̂ exceeds `good_k`, with their k̂.
    pub fn bad_points(&self) -> Vec<(usize, f64)> {
        self.pareto_k
            .iter()
            .enumerate()
            .filter(|(_, k)| **k > self.good_k)
            .map(|(i, k)| (i, *k))
            .collect()
    }
}

/// PSIS-LOO of the pointwise log-likelihood, as `az.loo` computes it. `reff` is the relative
/// efficiency of the draws (ESS / draws): `None` takes 1 for one chain and otherwise needs it
/// given — [`relative_eff`] computes ArviZ's from the posterior draws. Points with k̂ above
/// `good_k` are printed to stderr as a warning (and listed by [`Loo::bad_points`]).
pub fn loo(ll: &LogLikelihood, reff: Option<f64>) -> Result<Loo> {
    let s = ll.num_samples();
    let reff = match reff {
        Some(r) => r,
        None if ll.chains == 1 => 1.0,
        None => {
            return Err(Error::Config(format!(
                "loo over {} chains needs the draws' relative efficiency (ArviZ computes it \
                 from the posterior: relative_eff(&samples_by_chain)); pass Some(1.0) to treat \
                 the draws as independent",
                ll.chains
            )))
        }
    };
    let mut pointwise = Vec::with_capacity(ll.points);
    let mut pareto_k = Vec::with_capacity(ll.points);
    let mut lppd = 0.0;
    for i in 0..ll.points {
        let x = ll.point(i);
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        let (lw, k) = psislw(&neg, reff);
        let w: Vec<f64> = lw.iter().zip(&x).map(|(a, b)| a + b).collect();
        pointwise.push(logsumexp(&w));
        pareto_k.push(k);
        lppd += logsumexp(&x) - (s as f64).ln();
    }
    let good_k = (1.0 - 1.0 / (s as f64).log10()).min(0.7);
    let elpd_loo: f64 = pointwise.iter().sum();
    let out = Loo {
        elpd_loo,
        se: se_of_sum(&pointwise),
        p_loo: lppd - elpd_loo,
        warning: pareto_k.iter().any(|k| *k > good_k),
        pointwise,
        pareto_k,
        good_k,
        reff,
        n_samples: s,
        n_points: ll.points,
    };
    if out.warning {
        eprintln!(
            "ppl: loo: the Pareto k̂ of {} point(s) exceeds {:.3} ({:?}): the estimate is \
             unreliable there (Vehtari, Gelman and Gabry 2017); refit without them, or use \
             exact leave-one-out for those points",
            out.bad_points().len(),
            good_k,
            out.bad_points()
        );
    }
    Ok(out)
}

/// Pareto-smoothed log importance weights of one set of raw log weights (`az.psislw` for one
/// observation): the largest `M = ceil(min(S/5, 3 sqrt(S/reff)))` weights are replaced by the
/// quantiles of a generalized Pareto fit, truncated at the largest raw weight, and normalized.
/// Returns the smoothed log weights (summing to one) and the Pareto shape k̂ (`inf` when the tail
/// has 4 draws or fewer; then the weights are only normalized).
pub fn psislw(log_weights: &[f64], reff: f64) -> (Vec<f64>, f64) {
    let s = log_weights.len();
    let m = (s as f64 / 5.0).min(3.0 * (s as f64 / reff).sqrt()).ceil() as usize;
    let m = if reff.is_nan() {
        (s as f64 / 5.0).ceil() as usize
    } else {
        m
    };
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let mut x: Vec<f64> = log_weights.iter().map(|v| v - max).collect();
    let mut order: Vec<usize> = (0..s).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let cut_pos = s.saturating_sub(m + 1);
    let cutoff = x[order[cut_pos]].max(f64::MIN_POSITIVE.ln());
    let exp_cut = cutoff.exp();
    // The tail, ascending.
    let tail: Vec<usize> = order.iter().copied().filter(|&j| x[j] > cutoff).collect();
    let k = if tail.len() <= 4 {
        f64::INFINITY
    } else {
        let z: Vec<f64> = tail.iter().map(|&j| x[j].exp() - exp_cut).collect();
        let (k, sigma) = fit_generalized_pareto(&z);
        if k.is_finite() {
            let t = tail.len() as f64;
            for (r, &j) in tail.iter().enumerate() {
                let p = (r as f64 + 0.5) / t;
                let q = gpd_quantile(p, k, sigma);
                x[j] = (q + exp_cut).ln();
            }
            for v in x.iter_mut() {
                if *v > 0.0 {
                    *v = 0.0;
                }
            }
        }
        k
    };
    let norm = logsumexp(&x);
    for v in x.iter_mut() {
        *v -= norm;
    }
    (x, k)
}

/// The quantile at `p` of the generalized Pareto distribution with shape `k` and scale `sigma`
/// (location 0); NaN for `sigma <= 0`.
fn gpd_quantile(p: f64, k: f64, sigma: f64) -> f64 {
    if sigma <= 0.0 || !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let q = if k.abs() < f64::EPSILON {
        -(-p).ln_1p()
    } else {
        (-k * (-p).ln_1p()).exp_m1() / k
    };
    q * sigma
}

/// Fits a generalized Pareto distribution (location 0) to positive exceedances sorted ascending,
/// by Zhang and Stephens' (2009) empirical Bayes estimate with Vehtari's weakly informative prior
/// on the shape (ArviZ's `_gpdfit`): returns `(k̂, σ̂)`, where σ̂ comes from the unshrunk shape
/// and k̂ is shrunk towards 0.5 with the weight of 10 observations.
pub fn fit_generalized_pareto(z: &[f64]) -> (f64, f64) {
    let n = z.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let prior_bs = 3.0;
    let prior_k = 10.0;
    let m = 30 + (n as f64).sqrt() as usize;
    let zq = z[((n as f64 / 4.0 + 0.5) as usize).saturating_sub(1)];
    let zmax = z[n - 1];
    let mut b: Vec<f64> = (1..=m)
        .map(|j| (1.0 - (m as f64 / (j as f64 - 0.5)).sqrt()) / (prior_bs * zq) + 1.0 / zmax)
        .collect();
    let k_of = |bj: f64| z.iter().map(|v| (-bj * v).ln_1p()).sum::<f64>() / n as f64;
    let ks: Vec<f64> = b.iter().map(|&bj| k_of(bj)).collect();
    let len_scale: Vec<f64> = b
        .iter()
        .zip(&ks)
        .map(|(&bj, &kj)| n as f64 * ((-(bj / kj)).ln() - kj - 1.0))
        .collect();
    let mut w: Vec<f64> = len_scale
        .iter()
        .map(|li| 1.0 / len_scale.iter().map(|lj| (lj - li).exp()).sum::<f64>())
        .collect();
    let keep: Vec<bool> = w.iter().map(|&wi| wi >= 10.0 * f64::EPSILON).collect();
    if keep.iter().any(|k| !k) {
        let mut i = 0;
        b.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let mut i = 0;
        w.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    let total: f64 = w.iter().sum();
    let b_post: f64 = b.iter().zip(&w).map(|(bj, wj)| bj * wj / total).sum();
    let k_raw = k_of(b_post);
    let sigma = -k_raw / b_post;
    let k = (n as f64 * k_raw + prior_k * 0.5) / (n as f64 + prior_k);
    (k, sigma)
}

/// The relative efficiency of posterior draws as ArviZ's `loo` computes it: the mean, over every
/// scalar component of every site, of the ESS for the mean on split chains ([`ess_mean`]),
/// divided by the number of draws. `samples` as `Mcmc::get_samples_by_chain` gives them
/// (`[chains, draws] + site shape`). One chain: 1.
pub fn relative_eff(samples: &IndexMap<String, Tensor>) -> Result<f64> {
    let mut total = 0.0;
    let mut count = 0usize;
    let mut n_samples = 0usize;
    for (name, t) in samples {
        let s = t.size();
        if s.len() < 2 {
            return Err(Error::AtSite {
                site: name.clone(),
                source: Box::new(Error::Shape(format!(
                    "draws of shape {s:?} are not [chains, draws, ...]"
                ))),
            });
        }
        let (c, d) = (s[0] as usize, s[1] as usize);
        if c == 1 {
            return Ok(1.0);
        }
        n_samples = c * d;
        let flat = t
            .f_to_kind(Kind::Double)?
            .f_to_device(Device::Cpu)?
            .f_reshape([c as i64, d as i64, -1])?
            .f_contiguous()?;
        let k = flat.size()[2] as usize;
        let v = Vec::<f64>::try_from(&flat.f_reshape([-1])?)?;
        for j in 0..k {
            let chains: Vec<Vec<f64>> = (0..c)
                .map(|ci| (0..d).map(|di| v[(ci * d + di) * k + j]).collect())
                .collect();
            total += ess_mean(&chains);
            count += 1;
        }
    }
    if count == 0 {
        return Err(Error::Invalid("relative_eff needs posterior draws".into()));
    }
    Ok(total / count as f64 / n_samples as f64)
}

/// ArviZ's ESS for the mean (`ess(method="mean")`): each chain split in halves (the first and
/// last `⌊n/2⌋` draws), no rank normalization, Geyer's initial positive and monotone sequences
/// on the combined autocorrelation, `τ` floored at `1/log10(S)`. It differs from
/// [`crate::infer::mcmc::diagnostics::effective_sample_size`] (Stan's, on whole chains) in the
/// split and in where the positive sequence stops; loo's tail length follows ArviZ's.
pub fn ess_mean(chains: &[Vec<f64>]) -> f64 {
    let n_full = chains.first().map_or(0, |c| c.len());
    if n_full < 4 || chains.iter().flatten().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let half = n_full / 2;
    let split: Vec<&[f64]> = chains
        .iter()
        .flat_map(|c| [&c[..half], &c[n_full - half..]])
        .collect();
    let (m, n) = (split.len(), half);
    let s_total = (m * n) as f64;
    let first = split[0][0];
    if split.iter().all(|c| c.iter().all(|v| *v == first)) {
        return s_total;
    }
    let acov: Vec<Vec<f64>> = split
        .iter()
        .map(|c| crate::infer::mcmc::diagnostics::autocovariance(c))
        .collect();
    let nf = n as f64;
    let chain_means: Vec<f64> = split.iter().map(|c| mean(c)).collect();
    let w = acov.iter().map(|a| a[0]).sum::<f64>() / m as f64 * nf / (nf - 1.0);
    let cm = mean(&chain_means);
    let var_means = chain_means.iter().map(|v| (v - cm) * (v - cm)).sum::<f64>() / (m as f64 - 1.0);
    let var_plus = w * (nf - 1.0) / nf + var_means;
    let rho = |t: usize| 1.0 - (w - acov.iter().map(|a| a[t]).sum::<f64>() / m as f64) / var_plus;
    let mut r = vec![0.0; n];
    r[0] = 1.0;
    if n > 1 {
        r[1] = rho(1);
    }
    let (mut e, mut o) = (1.0, if n > 1 { rho(1) } else { 0.0 });
    let mut t: i64 = 1;
    while t < n as i64 - 3 && e + o > 0.0 {
        e = rho(t as usize + 1);
        o = rho(t as usize + 2);
        if e + o >= 0.0 {
            r[t as usize + 1] = e;
            r[t as usize + 2] = o;
        }
        t += 2;
    }
    let max_t = t - 2;
    if e > 0.0 {
        r[(max_t + 1) as usize] = e;
    }
    let mut t = 1i64;
    while t <= max_t - 2 {
        let (a, b) = (t as usize, t as usize + 1);
        if r[b] + r[b + 1] > r[a - 1] + r[a] {
            let v = (r[a - 1] + r[a]) / 2.0;
            r[b] = v;
            r[b + 1] = v;
        }
        t += 2;
    }
    let sum: f64 = if max_t >= 0 {
        r[..=(max_t as usize)].iter().sum()
    } else {
        0.0
    };
    let tau = -1.0 + 2.0 * sum + r[(max_t + 1) as usize];
    if r.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let tau = tau.max(1.0 / s_total.log10());
    s_total / tau
}

/// How [`compare`] weighs the models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Stacking of predictive distributions (Yao et al. 2018; ArviZ's default): the weights that
    /// maximize `Σ_i log Σ_k w_k exp(loo_ik)` on the simplex.
    Stacking,
    /// `w_k ∝ exp(elpd_k - elpd_best)`.
    PseudoBma,
}

/// One row of [`compare`]'s table (ArviZ's columns).
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    /// The model's name.
    pub model: String,
    /// 0 for the best.
    pub rank: usize,
    /// Its elpd (loo).
    pub elpd: f64,
    /// Its effective number of parameters.
    pub p: f64,
    /// `elpd_best - elpd` (0 for the best).
    pub elpd_diff: f64,
    /// Its weight.
    pub weight: f64,
    /// The standard error of its elpd.
    pub se: f64,
    /// The standard error of the difference to the best (`sqrt(n var₀(loo_best,i - loo_i))`).
    pub dse: f64,
    /// Whether its loo warned.
    pub warning: bool,
}

/// Compares models by PSIS-LOO as `az.compare(..., ic="loo")` does: sorted best first, with
/// differences to the best and their standard errors, and weights. All models need the same
/// points.
pub fn compare(models: &[(&str, &Loo)], weighting: Weighting) -> Result<Vec<CompareRow>> {
    let Some((_, first)) = models.first() else {
        return Err(Error::Invalid("compare needs at least one model".into()));
    };
    let n = first.n_points;
    if let Some((name, l)) = models.iter().find(|(_, l)| l.n_points != n) {
        return Err(Error::Shape(format!(
            "compare: model `{name}` has {} points where `{}` has {n}: the models must be scored \
             on the same data",
            l.n_points, models[0].0
        )));
    }
    let mut order: Vec<usize> = (0..models.len()).collect();
    order.sort_by(|&a, &b| models[b].1.elpd_loo.total_cmp(&models[a].1.elpd_loo));
    let best = models[order[0]].1;
    let weights = match weighting {
        Weighting::PseudoBma => {
            let z: Vec<f64> = models
                .iter()
                .map(|(_, l)| (l.elpd_loo - best.elpd_loo).exp())
                .collect();
            let s: f64 = z.iter().sum();
            z.iter().map(|v| v / s).collect()
        }
        Weighting::Stacking => stacking_weights(
            &models
                .iter()
                .map(|(_, l)| l.pointwise.as_slice())
                .collect::<Vec<_>>(),
        ),
    };
    Ok(order
        .iter()
        .enumerate()
        .map(|(rank, &k)| {
            let (name, l) = models[k];
            let diff: Vec<f64> = best
                .pointwise
                .iter()
                .zip(&l.pointwise)
                .map(|(a, b)| a - b)
                .collect();
            CompareRow {
                model: name.to_string(),
                rank,
                elpd: l.elpd_loo,
                p: l.p_loo,
                elpd_diff: best.elpd_loo - l.elpd_loo,
                weight: weights[k],
                se: l.se,
                dse: if rank == 0 { 0.0 } else { se_of_sum(&diff) },
                warning: l.warning,
            }
        })
        .collect())
}

/// Stacking weights: the maximum of the concave `Σ_i log Σ_k w_k exp(loo_ik)` on the simplex, by
/// the EM fixed point `w_k ← w_k mean_i(p_ik / Σ_j w_j p_ij)` (monotone; geometric at a boundary
/// optimum with a nonzero gradient), from equal weights, to a change below 1e-14.
fn stacking_weights(loo_i: &[&[f64]]) -> Vec<f64> {
    let k = loo_i.len();
    let n = loo_i.first().map_or(0, |l| l.len());
    // Rows scaled by their max (the EM step is invariant to it).
    let p: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let m = (0..k)
                .map(|j| loo_i[j][i])
                .fold(f64::NEG_INFINITY, f64::max);
            (0..k).map(|j| (loo_i[j][i] - m).exp()).collect()
        })
        .collect();
    let mut w = vec![1.0 / k as f64; k];
    for _ in 0..100_000 {
        let mut next = vec![0.0; k];
        for row in &p {
            let mix: f64 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
            for j in 0..k {
                next[j] += w[j] * row[j] / mix / n as f64;
            }
        }
        let change = next
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        w = next;
        if change < 1e-14 {
            break;
        }
    }
    w
}

/// Pyro's `psis_diagnostic`: the Pareto k̂ of the importance weights `p(x, z) / q(z)` of
/// `num_particles` draws from the guide, fitted to the largest `min(0.2 S, 3 sqrt(S))` of them.
/// Below 0.5 the guide is a good importance sampler for the posterior; above 0.7 it is not
/// (Yao et al. 2018, "Yes, but did it work?").
pub fn psis_diagnostic<R, G>(
    model: impl Fn() -> Result<R>,
    guide: impl Fn() -> Result<G>,
    num_particles: usize,
) -> Result<f64> {
    if num_particles < 10 {
        return Err(Error::Config(format!(
            "psis_diagnostic needs at least 10 particles to fit a tail, got {num_particles}"
        )));
    }
    let posterior = crate::infer::Importance::new(&model, num_particles)
        .guide(&guide)
        .run()?;
    let lw = posterior.log_weights();
    let s = lw.len() as f64;
    let m = (0.2 * s).min(3.0 * s.sqrt()).ceil() as usize;
    let max = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut x: Vec<f64> = lw.iter().map(|v| v - max).collect();
    x.sort_by(|a, b| a.total_cmp(b));
    let cutoff = x[x.len().saturating_sub(m + 1)].max((1e-15f64).ln());
    let z: Vec<f64> = x
        .iter()
        .filter(|v| **v > cutoff)
        .map(|v| v.exp() - cutoff.exp())
        .collect();
    if z.len() <= 4 {
        return Ok(f64::INFINITY);
    }
    Ok(fit_generalized_pareto(&z).0)
}
