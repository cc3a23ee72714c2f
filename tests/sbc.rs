//! Simulation-based calibration (`ppl::infer::sbc`, Talts et al. 2018) of the samplers on the
//! conjugate model `mu ~ N(0, 1)`, `x_i ~ N(mu, 1)` for five points, whose posterior is
//! `N(Σx / 6, 1/√6)`.
//!
//! Each run draws `mu` and `x` from the model, infers, and ranks the true `mu` among the
//! posterior draws; under exact inference the ranks are uniform. The check is a chi-square test
//! of the rank histogram (5 bins) at level 0.001: a calibrated sampler fails it with
//! probability 0.001 (and with fixed seeds, never). The control, the exact posterior shifted by
//! half its standard deviation, must fail it: shifted so, the truth falls below a draw with
//! probability Φ(-0.5/√2) = 0.36 rather than 0.5, which 200 simulations show at once.

use indexmap::IndexMap;
use ppl::infer::{sbc, AutoMultivariateNormal, AutoNormal, SbcRanks};
use ppl::prelude::*;

const N: i64 = 5;
const LEVEL: f64 = 0.001;

fn model(x: Option<&Tensor>) -> ppl::Result<()> {
    let mu = ppl::sample("mu", Normal::new(0.0, 1.0)?, None)?;
    let _p = Plate::new("data", N).enter()?;
    let _x = ppl::sample("x", Normal::new(&mu, 1.0)?, x.map(Tensor::shallow_clone))?;
    Ok(())
}

/// `mu` from the prior and data given it, with the model itself.
fn simulate() -> ppl::Result<(IndexMap<String, Tensor>, Tensor)> {
    let (_, tr) = poutine::trace(|| model(None))?;
    let mut truth = IndexMap::new();
    truth.insert("mu".to_string(), tr.value("mu")?.shallow_clone());
    Ok((truth, tr.value("x")?.shallow_clone()))
}

fn f64_of(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// `l` draws of the exact posterior, moved by `shift` posterior standard deviations.
fn exact(x: &Tensor, l: i64, shift: f64) -> ppl::Result<IndexMap<String, Tensor>> {
    let n = N as f64;
    let mean = f64_of(&x.sum(Kind::Double)) / (n + 1.0);
    let sd = (1.0 / (n + 1.0)).sqrt();
    let draws = Tensor::randn([l], (Kind::Double, Device::Cpu)) * sd + mean + shift * sd;
    Ok(IndexMap::from([("mu".to_string(), draws)]))
}

fn p_value(ranks: &SbcRanks) -> f64 {
    ranks.chi_square(5).expect("bins")["mu"].1
}

#[test]
fn exact_posterior_is_calibrated_and_a_shifted_one_is_not() {
    set_rng_seed(0);
    let ranks = sbc(200, simulate, |x| exact(x, 19, 0.0)).expect("sbc");
    assert_eq!(ranks.num_draws, 19);
    let p = p_value(&ranks);
    eprintln!("SBC exact: p = {p}");
    assert!(p > LEVEL, "the exact posterior failed SBC: p = {p}");
    set_rng_seed(0);
    let shifted = sbc(200, simulate, |x| exact(x, 19, 0.5)).expect("sbc");
    let p = p_value(&shifted);
    eprintln!("SBC shifted: p = {p}");
    assert!(
        p < LEVEL,
        "a posterior shifted by 0.5 sd passed SBC: p = {p}"
    );
}

/// NUTS, compiled and eager: 100 simulations, 60 warmup steps, 90 draws thinned by 10.
#[test]
fn nuts_is_calibrated() {
    for jit in [true, false] {
        set_rng_seed(1);
        let mut seed = 0;
        let ranks = sbc(100, simulate, |x| {
            seed += 1;
            let mut mcmc = Mcmc::new(Nuts::new().jit_compile(jit))
                .num_samples(90)
                .warmup_steps(60)
                .seed(seed)
                .progress_bar(false);
            mcmc.run(|| model(Some(x)))?;
            let mu = mcmc.get_samples()?["mu"].slice(0, 9, 90, 10);
            Ok(IndexMap::from([("mu".to_string(), mu)]))
        })
        .expect("sbc");
        assert_eq!(ranks.num_draws, 9);
        let p = p_value(&ranks);
        eprintln!("SBC NUTS (jit {jit}): p = {p}");
        assert!(p > LEVEL, "NUTS (jit {jit}) failed SBC: p = {p}");
    }
}

/// SVI with AutoNormal (exact family here): 100 simulations of 400 compiled steps, 9 draws from
/// the fitted guide.
#[test]
fn svi_auto_normal_is_calibrated() {
    set_rng_seed(2);
    let ranks = sbc(100, simulate, |x| {
        clear_param_store();
        let guide = AutoNormal::new(|| model(Some(x)));
        let adam = Adam::new(AdamConfig {
            lr: 0.05,
            ..Default::default()
        });
        let mut svi = Svi::new(
            || model(Some(x)),
            || guide.call(),
            adam,
            TraceElbo::default(),
        )
        .jit_compile(true);
        svi.run(400)?;
        let draws: Vec<Tensor> = (0..9)
            .map(|_| guide.call().map(|s| s["mu"].shallow_clone()))
            .collect::<ppl::Result<_>>()?;
        Ok(IndexMap::from([(
            "mu".to_string(),
            Tensor::stack(&draws, 0),
        )]))
    })
    .expect("sbc");
    let p = p_value(&ranks);
    eprintln!("SBC SVI AutoNormal: p = {p}");
    assert!(p > LEVEL, "SVI AutoNormal failed SBC: p = {p}");
}

/// y = X w + noise, w ~ N(0, I₂), unit noise, five fixed rows of X: the posterior of w is a
/// correlated Gaussian, which AutoMultivariateNormal represents exactly.
fn regression(y: Option<&Tensor>) -> ppl::Result<()> {
    let x =
        Tensor::from_slice(&[1.0f32, 0.5, 1.0, -1.0, 1.0, 2.0, 1.0, 0.0, 1.0, 1.5]).view([5, 2]);
    let w = ppl::sample(
        "w",
        Normal::new(Tensor::zeros([2], (Kind::Float, Device::Cpu)), 1.0)?.to_event(1)?,
        None,
    )?;
    let _p = Plate::new("data", 5).enter()?;
    let _y = ppl::sample(
        "y",
        Normal::new(x.matmul(&w), 1.0)?,
        y.map(Tensor::shallow_clone),
    )?;
    Ok(())
}

/// The true values of `sites` and the data `y`, drawn from the model itself.
fn simulate_sites(
    model: fn(Option<&Tensor>) -> ppl::Result<()>,
    sites: &[&str],
) -> ppl::Result<(IndexMap<String, Tensor>, Tensor)> {
    let (_, tr) = poutine::trace(|| model(None))?;
    let truth = sites
        .iter()
        .map(|k| Ok((k.to_string(), tr.value(k)?.shallow_clone())))
        .collect::<ppl::Result<IndexMap<_, _>>>()?;
    Ok((truth, tr.value("y")?.shallow_clone()))
}

/// AutoMultivariateNormal fitted to `model` on `y` by `steps` compiled Adam steps (lr 0.05), and
/// 9 draws of `sites` from it.
fn mvn_draws(
    model: fn(Option<&Tensor>) -> ppl::Result<()>,
    y: &Tensor,
    steps: usize,
    sites: &[&str],
) -> ppl::Result<IndexMap<String, Tensor>> {
    clear_param_store();
    let guide = AutoMultivariateNormal::new(|| model(Some(y)));
    let adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || model(Some(y)),
        || guide.call(),
        adam,
        TraceElbo::default(),
    )
    .jit_compile(true);
    svi.run(steps)?;
    let mut draws: IndexMap<String, Vec<Tensor>> = IndexMap::new();
    for _ in 0..9 {
        let s = guide.call()?;
        for k in sites {
            draws
                .entry(k.to_string())
                .or_default()
                .push(s[*k].shallow_clone());
        }
    }
    Ok(draws
        .into_iter()
        .map(|(k, v)| (k, Tensor::stack(&v, 0)))
        .collect())
}

/// SVI with AutoMultivariateNormal on the two correlated regression weights: 100 simulations of
/// 500 compiled steps, 9 draws each; each weight's ranks pass at level 0.001.
#[test]
fn svi_auto_multivariate_normal_is_calibrated() {
    set_rng_seed(4);
    let ranks = sbc(
        100,
        || simulate_sites(regression, &["w"]),
        |y| mvn_draws(regression, y, 500, &["w"]),
    )
    .expect("sbc");
    for (name, (_, p)) in ranks.chi_square(5).expect("bins") {
        eprintln!("SBC AutoMultivariateNormal {name}: p = {p}");
        assert!(p > LEVEL, "{name} failed SBC: p = {p}");
    }
}

/// A hierarchical model, non-centered (as one fits it with NUTS): `mu ~ N(0, 1)`,
/// `tau ~ HalfNormal(1)`, `theta_j = mu + tau * eta_j` with `eta_j ~ N(0, 1)` for four groups,
/// and three points per group, `y_ij ~ N(theta_j, 1)`. Its posterior has no closed form, and
/// `tau`'s is skewed and bounded at 0, so calibration here checks the sampler (and the compiled
/// potential, with its constrained site) where a conjugate model cannot.
fn hierarchical(y: Option<&Tensor>) -> ppl::Result<()> {
    let mu = ppl::sample("mu", Normal::new(0.0, 1.0)?, None)?;
    let tau = ppl::sample("tau", HalfNormal::new(1.0)?, None)?;
    let g = Plate::new("groups", 4).enter()?;
    let eta = ppl::sample("eta", Normal::new(0.0, 1.0)?, None)?;
    let theta = &mu + &tau * eta;
    drop(g);
    let _p = Plate::new("points", 3).dim(-2).enter()?;
    let _g = Plate::new("groups", 4).enter()?;
    let _y = ppl::sample("y", Normal::new(&theta, 1.0)?, y.map(Tensor::shallow_clone))?;
    Ok(())
}

/// NUTS on the hierarchical model: 100 warmup steps, 99 draws thinned by 11 to 9 (ranks in
/// 0..=9: 5 bins of 2). Every coordinate (mu, tau, eta[0..4]) passes the chi-square test at
/// level 0.001; six coordinates make the family-wise level at most 0.006. Compiled: 100
/// simulations; eager (far slower per gradient in a debug build): 30, still at least 6
/// expected counts per bin, the chi-square approximation's usual floor.
#[test]
fn nuts_is_calibrated_on_a_hierarchical_model() {
    for (jit, sims) in [(true, 100), (false, 30)] {
        set_rng_seed(5);
        let mut seed = 100;
        let ranks = sbc(
            sims,
            || simulate_sites(hierarchical, &["mu", "tau", "eta"]),
            |y| {
                seed += 1;
                let mut mcmc = Mcmc::new(Nuts::new().jit_compile(jit))
                    .num_samples(99)
                    .warmup_steps(100)
                    .seed(seed)
                    .progress_bar(false);
                mcmc.run(|| hierarchical(Some(y)))?;
                let s = mcmc.get_samples()?;
                Ok(["mu", "tau", "eta"]
                    .iter()
                    .map(|k| (k.to_string(), s[*k].slice(0, 10, 99, 11)))
                    .collect())
            },
        )
        .expect("sbc");
        assert_eq!(ranks.num_draws, 9);
        let tests = ranks.chi_square(5).expect("bins");
        assert_eq!(tests.len(), 6, "{:?}", tests.keys());
        for (name, (_, p)) in tests {
            eprintln!("SBC hierarchical NUTS (jit {jit}) {name}: p = {p}");
            assert!(p > LEVEL, "{name} (jit {jit}) failed SBC: p = {p}");
        }
    }
}

/// A Gaussian hierarchical model (the group scale fixed at 0.5): `mu ~ N(0, 1)`,
/// `theta_j ~ N(mu, 0.5)` for four groups, `y_ij ~ N(theta_j, 1)` for three points per group.
/// Its posterior over `(mu, theta)` is a correlated Gaussian, which AutoMultivariateNormal
/// represents exactly.
fn gaussian_hierarchy(y: Option<&Tensor>) -> ppl::Result<()> {
    let mu = ppl::sample("mu", Normal::new(0.0, 1.0)?, None)?;
    let g = Plate::new("groups", 4).enter()?;
    let theta = ppl::sample("theta", Normal::new(&mu, 0.5)?, None)?;
    drop(g);
    let _p = Plate::new("points", 3).dim(-2).enter()?;
    let _g = Plate::new("groups", 4).enter()?;
    let _y = ppl::sample("y", Normal::new(&theta, 1.0)?, y.map(Tensor::shallow_clone))?;
    Ok(())
}

/// SVI with AutoMultivariateNormal on the Gaussian hierarchy: 100 simulations of 600 compiled
/// steps, 9 draws each; every coordinate (mu, theta[0..4]) passes at level 0.001.
#[test]
fn svi_auto_multivariate_normal_is_calibrated_on_a_hierarchical_model() {
    set_rng_seed(6);
    let ranks = sbc(
        100,
        || simulate_sites(gaussian_hierarchy, &["mu", "theta"]),
        |y| mvn_draws(gaussian_hierarchy, y, 600, &["mu", "theta"]),
    )
    .expect("sbc");
    let tests = ranks.chi_square(5).expect("bins");
    assert_eq!(tests.len(), 5, "{:?}", tests.keys());
    for (name, (_, p)) in tests {
        eprintln!("SBC hierarchical AutoMultivariateNormal {name}: p = {p}");
        assert!(p > LEVEL, "{name} failed SBC: p = {p}");
    }
}
