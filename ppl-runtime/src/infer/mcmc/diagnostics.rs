//! Convergence diagnostics and summaries of draws: autocorrelation, effective sample size as Stan
//! computes it, split R-hat, quantiles and the highest posterior density interval.
//!
//! All functions take the draws of one scalar quantity: one slice per chain, all of the same
//! length.

use crate::error::{Error, Result};

/// An in-place radix-2 FFT of `(re, im)` (length a power of two); `inverse` without the 1/n.
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = 2.0 * std::f64::consts::PI / len as f64 * if inverse { 1.0 } else { -1.0 };
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * cr - im[b] * ci, re[b] * ci + im[b] * cr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
                let t = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = t;
            }
        }
        len <<= 1;
    }
}

/// The mean.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// The unbiased variance (divides by `n - 1`).
pub fn variance(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64
}

/// The autocovariance at lags `0..n`, with the biased normalization `1/n` (as Stan and Pyro),
/// computed by FFT.
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let m = mean(x);
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for (r, v) in re.iter_mut().zip(x) {
        *r = v - m;
    }
    fft(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft(&mut re, &mut im, true);
    re.truncate(n);
    let scale = 1.0 / (size as f64 * n as f64);
    re.iter().map(|v| v * scale).collect()
}

/// The autocorrelation at lags `0..n` (autocovariance over the lag-0 value).
pub fn autocorrelation(x: &[f64]) -> Vec<f64> {
    let acov = autocovariance(x);
    match acov.first() {
        Some(&c0) if c0 > 0.0 => acov.iter().map(|v| v / c0).collect(),
        _ => vec![f64::NAN; acov.len()],
    }
}

fn check_chains(chains: &[&[f64]]) -> Result<usize> {
    let n = chains.first().map_or(0, |c| c.len());
    if chains.is_empty() || n == 0 || chains.iter().any(|c| c.len() != n) {
        return Err(Error::Config(
            "diagnostics need at least one chain, all chains of the same nonzero length".into(),
        ));
    }
    Ok(n)
}

/// The effective sample size of the draws of several chains, as Stan computes it: the
/// autocorrelation combines the within-chain autocovariances with the between-chain variance,
/// Geyer's initial positive sequence truncates it, the initial monotone sequence smooths it, and
/// the estimate is capped at `N log10 N` for `N` draws in all.
pub fn effective_sample_size(chains: &[&[f64]]) -> Result<f64> {
    let n = check_chains(chains)?;
    let m = chains.len();
    if n < 4 {
        return Ok(f64::NAN);
    }
    let acovs: Vec<Vec<f64>> = chains.iter().map(|c| autocovariance(c)).collect();
    let chain_means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let nf = n as f64;
    // Unbiased within-chain variances.
    let mean_var = acovs.iter().map(|a| a[0] * nf / (nf - 1.0)).sum::<f64>() / m as f64;
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += variance(&chain_means);
    }
    if var_plus.is_nan() || var_plus <= 0.0 || !var_plus.is_finite() {
        return Ok(f64::NAN);
    }
    let mean_acov = |t: usize| acovs.iter().map(|a| a[t]).sum::<f64>() / m as f64;
    let rho = |t: usize| 1.0 - (mean_var - mean_acov(t)) / var_plus;

    let mut rho_hat = vec![0.0; n];
    let mut rho_even = 1.0;
    rho_hat[0] = rho_even;
    let mut rho_odd = rho(1);
    rho_hat[1] = rho_odd;
    // Geyer's initial positive sequence, leaving the last pair as a bias term.
    let mut s = 1;
    while s < n - 4 && rho_even + rho_odd > 0.0 {
        rho_even = rho(s + 1);
        rho_odd = rho(s + 2);
        if rho_even + rho_odd >= 0.0 {
            rho_hat[s + 1] = rho_even;
            rho_hat[s + 2] = rho_odd;
        }
        s += 2;
    }
    let max_s = s;
    // For the improved estimate that reduces variance in the antithetic case.
    if rho_even > 0.0 && max_s + 1 < n {
        rho_hat[max_s + 1] = rho_even;
    }
    // The initial monotone sequence.
    let mut k = 1;
    while k + 3 <= max_s {
        if rho_hat[k + 1] + rho_hat[k + 2] > rho_hat[k - 1] + rho_hat[k] {
            rho_hat[k + 1] = (rho_hat[k - 1] + rho_hat[k]) / 2.0;
            rho_hat[k + 2] = rho_hat[k + 1];
        }
        k += 2;
    }
    let total = (m * n) as f64;
    let tail = if max_s + 1 < n {
        rho_hat[max_s + 1]
    } else {
        0.0
    };
    let tau = -1.0 + 2.0 * rho_hat[..max_s].iter().sum::<f64>() + tail;
    // Stan's safety check against negative values (antithetic chains): ESS at most N log10 N.
    let tau = tau.max(1.0 / total.log10());
    Ok(total / tau)
}

/// The potential scale reduction `R̂ = sqrt(var⁺ / W)` of Gelman and Rubin, where `W` is the mean
/// within-chain variance and `var⁺ = (n-1)/n W + B/n` (with one chain: `(n-1)/n`, i.e. below 1).
pub fn gelman_rubin(chains: &[&[f64]]) -> Result<f64> {
    let n = check_chains(chains)?;
    if n < 2 {
        return Ok(f64::NAN);
    }
    let nf = n as f64;
    let w = chains.iter().map(|c| variance(c)).sum::<f64>() / chains.len() as f64;
    let mut var_plus = (nf - 1.0) / nf * w;
    if chains.len() > 1 {
        let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
        var_plus += variance(&means);
    }
    Ok((var_plus / w).sqrt())
}

/// Split R-hat: [`gelman_rubin`] of the first and second halves of every chain (a middle draw of
/// an odd-length chain is dropped).
pub fn split_r_hat(chains: &[&[f64]]) -> Result<f64> {
    let n = check_chains(chains)?;
    let half = n / 2;
    if half < 2 {
        return Ok(f64::NAN);
    }
    let mut halves: Vec<&[f64]> = Vec::with_capacity(2 * chains.len());
    for c in chains {
        halves.push(&c[..half]);
        halves.push(&c[n - half..]);
    }
    gelman_rubin(&halves)
}

fn sorted(x: &[f64]) -> Vec<f64> {
    let mut s = x.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

/// The `q`-quantile (`0 <= q <= 1`) with linear interpolation between order statistics (as torch
/// and numpy by default).
pub fn quantile(x: &[f64], q: f64) -> f64 {
    quantile_sorted(&sorted(x), q)
}

fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let w = pos - lo as f64;
    s[lo] * (1.0 - w) + s[hi] * w
}

/// The highest posterior density interval: the narrowest interval holding a fraction `prob` of
/// the draws (as Pyro's `hpdi`).
pub fn hpdi(x: &[f64], prob: f64) -> (f64, f64) {
    let s = sorted(x);
    let n = s.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let len = ((prob * n as f64) as usize).min(n - 1);
    let mut best = 0;
    let mut width = f64::INFINITY;
    for i in 0..n - len {
        let w = s[i + len] - s[i];
        if w < width {
            width = w;
            best = i;
        }
    }
    (s[best], s[best + len])
}

/// The summary statistics of one scalar quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalarSummary {
    /// Mean over all draws.
    pub mean: f64,
    /// Standard deviation (unbiased) over all draws.
    pub std: f64,
    /// Median.
    pub median: f64,
    /// Lower end of the HPDI.
    pub lower: f64,
    /// Upper end of the HPDI.
    pub upper: f64,
    /// Effective sample size.
    pub n_eff: f64,
    /// Split R-hat.
    pub r_hat: f64,
}

/// Summarizes the draws of one scalar quantity (one slice per chain) with an HPDI of mass `prob`.
pub fn summarize(chains: &[&[f64]], prob: f64) -> Result<ScalarSummary> {
    check_chains(chains)?;
    let all: Vec<f64> = chains.iter().flat_map(|c| c.iter().copied()).collect();
    let (lower, upper) = hpdi(&all, prob);
    Ok(ScalarSummary {
        mean: mean(&all),
        std: variance(&all).sqrt(),
        median: quantile(&all, 0.5),
        lower,
        upper,
        n_eff: effective_sample_size(chains)?,
        r_hat: split_r_hat(chains)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn ar1(rho: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = (1.0 - rho * rho).sqrt();
        let mut x = rng.sample::<f64, _>(StandardNormal);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(x);
            x = rho * x + s * rng.sample::<f64, _>(StandardNormal);
        }
        out
    }

    #[test]
    fn autocovariance_matches_direct_sum() {
        let x = ar1(0.5, 37, 3);
        let m = mean(&x);
        let acov = autocovariance(&x);
        for lag in [0, 1, 5, 36] {
            let direct: f64 = (0..x.len() - lag)
                .map(|i| (x[i] - m) * (x[i + lag] - m))
                .sum::<f64>()
                / x.len() as f64;
            assert!((acov[lag] - direct).abs() < 1e-10, "lag {lag}");
        }
        let ac = autocorrelation(&x);
        assert!((ac[0] - 1.0).abs() < 1e-12);
    }

    /// An AR(1) chain with coefficient ρ has integrated autocorrelation time (1+ρ)/(1-ρ), so ESS ≈
    /// N (1-ρ)/(1+ρ). The estimator's relative standard error is about sqrt(2 (2τ+1) / N) (the
    /// variance of a sum of ~2τ estimated autocorrelations): for N = 4 × 5000 and ρ = 0.9
    /// (τ = 19) that is ≈ 0.06, so a 25% tolerance is over 4 standard errors.
    #[test]
    fn ess_of_ar1_chains() {
        for &rho in &[0.0, 0.5, 0.9] {
            let chains: Vec<Vec<f64>> = (0..4).map(|c| ar1(rho, 5000, 10 + c)).collect();
            let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
            let ess = effective_sample_size(&refs).expect("ess");
            let want = 20000.0 * (1.0 - rho) / (1.0 + rho);
            assert!(
                (ess / want - 1.0).abs() < 0.25,
                "rho {rho}: ess {ess}, want {want}"
            );
            let r = split_r_hat(&refs).expect("rhat");
            assert!((r - 1.0).abs() < 0.01, "rho {rho}: r_hat {r}");
        }
    }

    /// R-hat by hand: chains (1, 2, 3, 4) and (2, 3, 4, 5). W = 5/3, B/n = var(2.5, 3.5) = 1/2,
    /// var⁺ = (3/4) W + 1/2 = 7/4, R = sqrt(21/20). Split: halves (1,2), (3,4), (2,3), (4,5):
    /// W = 1/2, B/n = var(1.5, 3.5, 2.5, 4.5) = 5/3, var⁺ = W/2 + 5/3, R = sqrt(23/6).
    #[test]
    fn r_hat_matches_the_formula() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]);
        let r = gelman_rubin(&[&a, &b]).expect("rhat");
        assert!((r - (21.0f64 / 20.0).sqrt()).abs() < 1e-12, "{r}");
        let r = split_r_hat(&[&a, &b]).expect("split rhat");
        assert!((r - (23.0f64 / 6.0).sqrt()).abs() < 1e-12, "{r}");
    }

    #[test]
    fn r_hat_detects_disagreeing_chains() {
        let a = ar1(0.5, 1000, 1);
        let b: Vec<f64> = ar1(0.5, 1000, 2).iter().map(|v| v + 3.0).collect();
        let r = split_r_hat(&[&a, &b]).expect("rhat");
        assert!(r > 1.5, "{r}");
    }

    #[test]
    fn quantiles_and_hpdi() {
        let x: Vec<f64> = (0..101).map(|i| i as f64).collect();
        assert_eq!(quantile(&x, 0.5), 50.0);
        assert!((quantile(&x, 0.05) - 5.0).abs() < 1e-12);
        assert!((quantile(&[1.0, 2.0], 0.25) - 1.25).abs() < 1e-12);
        let (lo, hi) = hpdi(&x, 0.9);
        assert_eq!(hi - lo, 90.0);
        // A skewed sample: the HPDI hugs the mode.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let e: Vec<f64> = (0..20000).map(|_| -rng.random::<f64>().ln()).collect();
        let (lo, hi) = hpdi(&e, 0.9);
        assert!(lo < 0.01 && (hi - (10f64).ln()).abs() < 0.1, "{lo} {hi}");
    }
}
