//! Autoguides on conjugate models with analytic posteriors.
//!
//! Tolerances: SVI with Adam at a fixed learning rate does not converge to a point; the params
//! keep fluctuating around the optimum by roughly `lr` times the gradient noise. Each fit ends
//! with a low-rate phase (lr 0.005-0.01), after which the fluctuation of a loc is a few
//! hundredths, and of a scale a few percent (measured over seeds). The tolerances below are
//! about three times that, and far below the prior-to-posterior change they test. Fits of
//! point-mass guides (AutoDelta, AutoLaplaceApproximation) have no gradient noise and are
//! checked tightly.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use ppl::infer::autoguide::{
    init_to_feasible, init_to_mean, init_to_median, init_to_sample, init_to_uniform, init_to_value,
    InitLocFn,
};
use ppl::infer::{
    AutoDelta, AutoDiagonalNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
    AutoMultivariateNormal, AutoNormal, ElboConfig, Svi, TraceElbo,
};
use ppl::optim::{Adam, AdamConfig};
use ppl::prelude::*;

/// Fits in two phases: `steps.0` steps of Adam at lr 0.05 with one particle, then `steps.1`
/// steps at lr 0.01 with 16 vectorized particles, whose iterates are averaged (Polyak
/// averaging, in unconstrained space) and written back to the param store.
fn fit<R1, R2>(
    mut model: impl FnMut() -> ppl::Result<R1>,
    mut guide: impl FnMut() -> ppl::Result<R2>,
    steps: (usize, usize),
) {
    let adam = |lr| {
        Adam::new(AdamConfig {
            lr,
            ..Default::default()
        })
    };
    let mut svi = Svi::new(&mut model, &mut guide, adam(0.05), TraceElbo::default());
    for _ in 0..steps.0 {
        assert!(svi.step().unwrap().is_finite());
    }
    drop(svi);
    let elbo = TraceElbo {
        config: ElboConfig {
            num_particles: 16,
            vectorize_particles: true,
            max_plate_nesting: 1,
        },
    };
    let mut svi = Svi::new(&mut model, &mut guide, adam(0.01), elbo);
    let mut sums: Vec<(String, Tensor)> = Vec::new();
    for i in 0..steps.1 {
        assert!(svi.step().unwrap().is_finite());
        with_param_store(|ps| {
            if i == 0 {
                sums = ps
                    .named_parameters()
                    .map(|(n, t)| (n.to_string(), t.detach().zeros_like()))
                    .collect();
            }
            for (n, acc) in sums.iter_mut() {
                *acc += ps.entry(n).unwrap().unconstrained.detach();
            }
        });
    }
    if steps.1 > 0 {
        with_param_store(|ps| {
            for (n, acc) in &sums {
                let mut leaf = ps.entry(n).unwrap().unconstrained.shallow_clone();
                tch::no_grad(|| leaf.copy_(&(acc / steps.1 as f64)));
            }
        });
    }
}

/// Seeds, empties the param store and uses one intra-op thread: the tensors are tiny, and on a
/// loaded machine torch's thread pool makes the small linear-algebra kernels ~7x slower.
fn setup(seed: u64) {
    tch::set_num_threads(1);
    set_rng_seed(seed);
    clear_param_store();
}

fn v(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < tol, "{what}: {a:?} vs {b:?} (tol {tol})");
    }
}

// --- Normal-Normal: loc ~ N(0, 1) in R², y_ij ~ N(loc_j, 1), 4 rows. Posterior of loc_j:
// N(sum_i y_ij / 5, 1/5), sd 0.447.
fn y_nn() -> Tensor {
    Tensor::from_slice(&[1.0f32, 2.0, 1.5, 2.5, 0.5, 1.5, 1.0, 2.0]).reshape([4, 2])
}

fn nn_model(y: &Tensor) -> ppl::Result<()> {
    let loc = sample(
        "loc",
        Normal::new(Tensor::zeros([2], (Kind::Float, Device::Cpu)), 1.0)?.to_event(1)?,
        None,
    )?;
    // The event dim is not a batch dim: the plate takes dim -1 of the batch shape.
    let _p = Plate::new("data", 4).enter()?;
    let _ = sample(
        "y",
        Normal::new(&loc, 1.0)?.to_event(1)?,
        Some(y.shallow_clone()),
    )?;
    Ok(())
}

fn nn_posterior() -> (Vec<f64>, f64) {
    let sums = [1.0 + 1.5 + 0.5 + 1.0, 2.0 + 2.5 + 1.5 + 2.0];
    (sums.iter().map(|s| s / 5.0).collect(), (0.2f64).sqrt())
}

#[test]
fn auto_normal_normal_normal() {
    setup(0);
    let y = y_nn();
    let model = || nn_model(&y);
    let guide = AutoNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (mean, sd) = nn_posterior();
    let (loc, scale) = guide.site_loc_and_scale("loc").unwrap();
    close(&v(&loc), &mean, 0.08, "AutoNormal loc");
    close(&v(&scale), &[sd, sd], 0.08, "AutoNormal scale");
    // Pyro's param names.
    assert!(get_param("AutoNormal.locs.loc").is_ok());
    assert!(get_param("AutoNormal.scales.loc").is_ok());
    // median = loc (real support); quantiles are loc + z_q * scale.
    let med = guide.median().unwrap();
    close(&v(&med["loc"]), &v(&loc), 1e-6, "median");
    let q = guide.quantiles(&[0.1, 0.5, 0.9]).unwrap();
    assert_eq!(q["loc"].size(), vec![3, 2]);
    let z = 1.2815515655446004;
    let (l, s) = (v(&loc), v(&scale));
    let want: Vec<f64> = [-z, 0.0, z]
        .iter()
        .flat_map(|zq| (0..2).map(move |j| (j, *zq)))
        .map(|(j, zq)| l[j] + zq * s[j])
        .collect();
    close(&v(&q["loc"]), &want, 1e-4, "quantiles");
}

// --- LogNormal-Normal: x ~ LogNormal(0, 1), y_i ~ N(log x, 0.5), 5 points. Posterior of
// log x: N(m, s²) with 1/s² = 1 + 5/0.25 = 21, m = (sum y / 0.25) / 21. AutoNormal works on
// log x (biject_to(positive) = exp), so its family contains the exact posterior.
fn ln_data() -> Tensor {
    Tensor::from_slice(&[0.8f32, 1.1, 0.9, 1.3, 1.0])
}

fn ln_model(y: &Tensor) -> ppl::Result<()> {
    let x = sample("x", LogNormal::new(0.0, 1.0)?, None)?;
    let _p = Plate::new("data", 5).enter()?;
    let _ = sample("y", Normal::new(x.log(), 0.5)?, Some(y.shallow_clone()))?;
    Ok(())
}

fn ln_posterior() -> (f64, f64) {
    let sum: f64 = 0.8 + 1.1 + 0.9 + 1.3 + 1.0;
    (sum / 0.25 / 21.0, (1.0f64 / 21.0).sqrt())
}

#[test]
fn auto_normal_positive_latent_median_quantiles() {
    setup(1);
    let y = ln_data();
    let model = || ln_model(&y);
    let guide = AutoNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (m, s) = ln_posterior();
    let (loc, scale) = guide.site_loc_and_scale("x").unwrap();
    close(&v(&loc), &[m], 0.05, "loc of log x");
    close(&v(&scale), &[s], 0.04, "scale of log x");
    // The model sees a positive value; the guide's samples are positive.
    let draws = guide.call().unwrap();
    assert!(draws["x"].double_value(&[]) > 0.0);
    // median exp(m); quantile q: exp(m + s z_q).
    let med = guide.median().unwrap()["x"].double_value(&[]);
    assert!((med - m.exp()).abs() < 0.05 * m.exp(), "median {med}");
    let q = guide.quantiles(&[0.05, 0.95]).unwrap();
    let q = v(&q["x"]);
    let z = 1.6448536269514722;
    close(
        &q,
        &[(m - z * s).exp(), (m + z * s).exp()],
        0.15,
        "quantiles of x",
    );
    // Quantiles bracket the median.
    assert!(q[0] < med && med < q[1]);
}

// --- Local latents: z_i ~ N(0, 1), y_i ~ N(z_i, 1). Posterior z_i ~ N(y_i / 2, 1/2).
fn local_data(n: i64) -> Tensor {
    Tensor::linspace(-2.0, 2.0, n, (Kind::Float, Device::Cpu))
}

fn local_model(y: &Tensor, subsample: Option<i64>) -> ppl::Result<()> {
    let n = y.size()[0];
    let mut p = Plate::new("data", n);
    if let Some(k) = subsample {
        p = p.subsample_size(k);
    }
    let p = p.enter()?;
    let z = sample("z", Normal::new(0.0, 1.0)?, None)?;
    let y = y.index_select(0, p.indices());
    let _ = sample("y", Normal::new(&z, 1.0)?, Some(y))?;
    Ok(())
}

#[test]
fn auto_normal_local_latents_full_plate() {
    setup(2);
    let y = local_data(5);
    let model = || local_model(&y, None);
    let guide = AutoNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (loc, scale) = guide.site_loc_and_scale("z").unwrap();
    assert_eq!(loc.size(), vec![5]);
    close(&v(&loc), &v(&(&y / 2.0)), 0.1, "local locs");
    close(&v(&scale), &[0.5f64.sqrt(); 5], 0.1, "local scales");
}

#[test]
fn auto_normal_subsampled_plate() {
    setup(3);
    let y = local_data(6);
    let model = || local_model(&y, Some(3));
    let guide = AutoNormal::new(model);
    // The guide enters the subsampling plate: its trace has the indices site, the model
    // replays them, and the sampled z has the subsample's shape.
    let (_, tr) = poutine::trace(|| guide.call()).unwrap();
    let idx = tr.value("data").unwrap().shallow_clone();
    assert_eq!(idx.size(), vec![3]);
    assert_eq!(tr.value("z").unwrap().size(), vec![3]);
    // Each row gets half the updates: run twice as long.
    fit(model, || guide.call(), (400, 200));
    let (loc, scale) = guide.site_loc_and_scale("z").unwrap();
    assert_eq!(loc.size(), vec![6], "params span the full plate");
    close(&v(&loc), &v(&(&y / 2.0)), 0.12, "subsampled locs");
    close(&v(&scale), &[0.5f64.sqrt(); 6], 0.12, "subsampled scales");
}

#[test]
fn flat_guides_reject_subsampled_local_latents() {
    setup(12);
    let y = local_data(6);
    let model = || local_model(&y, Some(3));
    let guide = AutoDiagonalNormal::new(model);
    let err = guide.call().unwrap_err().to_string();
    assert!(err.contains("`z`") && err.contains("data"), "{err}");
}

#[test]
fn auto_delta_finds_the_map() {
    setup(4);
    // mu ~ N(0, 1), y_i ~ N(mu, 1): MAP mu = sum y / (n + 1).
    // rate ~ Gamma(2, 1), k_i ~ Poisson(rate): MAP rate = (2 + sum k - 1) / (1 + n).
    let y = Tensor::from_slice(&[1.0f32, 2.0, 0.5, 1.5]);
    let k = Tensor::from_slice(&[3.0f32, 5.0, 4.0, 2.0]);
    let model = || -> ppl::Result<()> {
        let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
        let rate = sample("rate", Gamma::new(2.0, 1.0)?, None)?;
        let _p = Plate::new("data", 4).enter()?;
        let _ = sample("y", Normal::new(&mu, 1.0)?, Some(y.shallow_clone()))?;
        let _ = sample("k", Poisson::new(&rate)?, Some(k.shallow_clone()))?;
        Ok(())
    };
    let guide = AutoDelta::new(model);
    fit(model, || guide.call(), (400, 200));
    let med = guide.median().unwrap();
    // Deterministic gradients: Adam settles within ~lr of the optimum.
    close(&v(&med["mu"]), &[5.0 / 5.0], 0.01, "MAP mu");
    close(
        &v(&med["rate"]),
        &[(2.0 + 14.0 - 1.0) / 5.0],
        0.02,
        "MAP rate",
    );
    assert!(get_param("AutoDelta.rate").is_ok());
}

#[test]
fn auto_diagonal_normal_normal_normal() {
    setup(5);
    let y = y_nn();
    let model = || nn_model(&y);
    let guide = AutoDiagonalNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (mean, sd) = nn_posterior();
    assert_eq!(guide.latent_dim().unwrap(), 2);
    close(
        &v(&get_param("AutoDiagonalNormal.loc").unwrap()),
        &mean,
        0.08,
        "loc",
    );
    close(
        &v(&get_param("AutoDiagonalNormal.scale").unwrap()),
        &[sd, sd],
        0.08,
        "scale",
    );
    let med = guide.median().unwrap();
    close(&v(&med["loc"]), &mean, 0.08, "median");
    let q = guide.quantiles(&[0.5]).unwrap();
    close(
        &v(&q["loc"]),
        &v(&med["loc"]),
        1e-5,
        "0.5 quantile is the median",
    );
}

// --- A correlated Gaussian posterior: a, b ~ N(0, 1); y_i ~ N(a + b, 1) (3 points);
// z_j ~ N(a, 1) (2 points). Precision P = I + 3 [[1,1],[1,1]] + 2 [[1,0],[0,0]]
// = [[6, 3], [3, 4]]; mean = P⁻¹ [sum y + sum z, sum y].
fn corr_model(y: &Tensor, z: &Tensor) -> ppl::Result<()> {
    let a = sample("a", Normal::new(0.0, 1.0)?, None)?;
    let b = sample("b", Normal::new(0.0, 1.0)?, None)?;
    {
        let _p = Plate::new("ys", 3).enter()?;
        let _ = sample("y", Normal::new(&(&a + &b), 1.0)?, Some(y.shallow_clone()))?;
    }
    let _p = Plate::new("zs", 2).enter()?;
    let _ = sample("z", Normal::new(&a, 1.0)?, Some(z.shallow_clone()))?;
    Ok(())
}

fn corr_posterior() -> (Vec<f64>, Vec<f64>) {
    let (sy, sz) = (1.0 + 2.0 + 1.5, 0.5 + 1.0);
    let det = 6.0 * 4.0 - 3.0 * 3.0;
    let cov = [4.0 / det, -3.0 / det, -3.0 / det, 6.0 / det];
    let r = [sy + sz, sy];
    let mean = vec![cov[0] * r[0] + cov[1] * r[1], cov[2] * r[0] + cov[3] * r[1]];
    (mean, cov.to_vec())
}

fn corr_data() -> (Tensor, Tensor) {
    (
        Tensor::from_slice(&[1.0f32, 2.0, 1.5]),
        Tensor::from_slice(&[0.5f32, 1.0]),
    )
}

#[test]
fn auto_multivariate_normal_correlated_posterior() {
    setup(6);
    let (y, z) = corr_data();
    let model = || corr_model(&y, &z);
    let guide = AutoMultivariateNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (mean, cov) = corr_posterior();
    close(&v(&guide.loc().unwrap()), &mean, 0.06, "MVN loc");
    // Posterior sds are ~0.3-0.4, the covariance entries ~0.1-0.4.
    close(
        &v(&guide.covariance().unwrap()),
        &cov,
        0.05,
        "MVN covariance",
    );
    let med = guide.median().unwrap();
    assert_eq!(med.keys().collect::<Vec<_>>(), vec!["a", "b"]);
}

#[test]
fn auto_low_rank_multivariate_normal_correlated_posterior() {
    setup(7);
    let (y, z) = corr_data();
    let model = || corr_model(&y, &z);
    let guide = AutoLowRankMultivariateNormal::new(model).rank(1);
    fit(model, || guide.call(), (400, 200));
    let (mean, cov) = corr_posterior();
    let post = guide.get_posterior().unwrap();
    close(&v(&post.mean().unwrap()), &mean, 0.06, "low-rank loc");
    let w = get_param("AutoLowRankMultivariateNormal.cov_factor").unwrap();
    let s = get_param("AutoLowRankMultivariateNormal.scale").unwrap();
    assert_eq!(w.size(), vec![2, 1]);
    let w = &w * s.unsqueeze(-1);
    let c = w.matmul(&w.tr()) + (&s * &s).diag_embed(0, -2, -1);
    close(&v(&c), &cov, 0.06, "low-rank covariance");
}

#[test]
fn laplace_approximation_is_exact_for_a_gaussian_model() {
    setup(8);
    let (y, z) = corr_data();
    let model = || corr_model(&y, &z);
    let guide = AutoLaplaceApproximation::new(model);
    fit(model, || guide.call(), (400, 200));
    let (mean, cov) = corr_posterior();
    close(&v(&guide.loc().unwrap()), &mean, 0.01, "MAP");
    // The Hessian of a Gaussian log density is constant: the covariance is exact up to
    // float32 rounding.
    close(
        &v(&guide.hessian().unwrap()),
        &[6.0, 3.0, 3.0, 4.0],
        1e-4,
        "Hessian",
    );
    let mvn = guide.laplace_approximation().unwrap();
    close(
        &v(&mvn.covariance().unwrap()),
        &cov,
        1e-4,
        "Laplace covariance",
    );
    close(&v(&mvn.loc().unwrap()), &mean, 0.01, "Laplace loc");
    // The new guide runs and samples the model's sites.
    let draws = mvn.call().unwrap();
    assert_eq!(draws["a"].size(), Vec::<i64>::new());
    let q = mvn.quantiles(&[0.5]).unwrap();
    close(&v(&q["b"]), &[mean[1]], 0.01, "median of b");
}

#[test]
fn laplace_on_a_positive_latent_uses_unconstrained_space() {
    setup(9);
    // LogNormal-Normal: in log space the joint is Gaussian with precision 21 (see above), plus
    // the log-Jacobian (linear in log x, so no curvature): Hessian = 21.
    let y = ln_data();
    let model = || ln_model(&y);
    let guide = AutoLaplaceApproximation::new(model);
    fit(model, || guide.call(), (400, 200));
    let h = guide.hessian().unwrap().double_value(&[0, 0]);
    assert!((h - 21.0).abs() < 1e-3, "Hessian {h}");
}

#[test]
fn guide_sites_and_log_density_of_constrained_sites() {
    setup(10);
    let y = ln_data();
    let model = || ln_model(&y);
    let guide = AutoNormal::new(model);
    let (_, tr) = poutine::trace(|| guide.call()).unwrap();
    let aux = tr.site("x_unconstrained").unwrap();
    assert!(aux.infer.is_auxiliary);
    // log q(x) = log N(u; loc, scale) - u  (x = exp u).
    let mut tr = tr;
    let u = tr.value("x_unconstrained").unwrap().shallow_clone();
    let lq = tr
        .get_mut("x")
        .unwrap()
        .compute_log_prob()
        .unwrap()
        .double_value(&[]);
    assert!((lq + u.double_value(&[])).abs() < 1e-5);
}

#[test]
fn init_strategies() {
    setup(11);
    let hn = HalfNormal::new(1.0).unwrap();
    let n = Normal::new(3.0, 1.0).unwrap();
    // feasible: biject_to(positive)(0) = 1.
    let f = init_to_feasible().init("s", &hn).unwrap();
    assert_eq!(f.double_value(&[]), 1.0);
    assert_eq!(
        init_to_feasible().init("n", &n).unwrap().double_value(&[]),
        0.0
    );
    assert_eq!(init_to_mean().init("n", &n).unwrap().double_value(&[]), 3.0);
    let med = init_to_median().init("n", &n).unwrap().double_value(&[]);
    assert!((med - 3.0).abs() < 1.0, "median {med}");
    for _ in 0..20 {
        let u = init_to_uniform().init("s", &hn).unwrap().double_value(&[]);
        assert!(u > (-2.0f64).exp() && u < 2.0f64.exp());
    }
    assert!(init_to_sample().init("s", &hn).unwrap().double_value(&[]) > 0.0);
    let vals = HashMap::from([("n".to_string(), Tensor::from(7.0f32))]);
    let iv = init_to_value(vals);
    assert_eq!(iv.init("n", &n).unwrap().double_value(&[]), 7.0);
    assert!(iv.init("s", &hn).unwrap().double_value(&[]) > 0.0);
    let custom = InitLocFn::new(|_, d| Ok(d.mean()?.f_add_scalar(1.0)?));
    assert_eq!(custom.init("n", &n).unwrap().double_value(&[]), 4.0);
}

#[test]
fn init_values_reach_the_params_and_downstream_sites() {
    setup(13);
    // b's prior depends on a: with a initialized to 5, init_to_mean puts b at 5 too.
    let model = || -> ppl::Result<()> {
        let a = sample("a", Normal::new(0.0, 1.0)?, None)?;
        let _ = sample("b", Normal::new(&a, 1.0)?, None)?;
        Ok(())
    };
    let vals = HashMap::from([("a".to_string(), Tensor::from(5.0f32))]);
    let init = ppl::infer::autoguide::init_to_value_or(vals, init_to_mean());
    let guide = AutoDelta::new(model).init_loc_fn(init);
    let med = guide.median().unwrap();
    assert_eq!(med["a"].double_value(&[]), 5.0);
    assert_eq!(med["b"].double_value(&[]), 5.0);
}

#[test]
fn auto_normal_with_other_elbos() {
    // The guide's auxiliary sites and point-mass sites work with every ELBO. A short fit at
    // lr 0.05 reaches the posterior mean of log x (sd 0.22) to within ~0.05; allow 0.15.
    let (m, _) = ln_posterior();
    let y = ln_data();
    let model = || ln_model(&y);
    for which in 0..3 {
        setup(20 + which);
        let guide = AutoNormal::new(model);
        let adam = Adam::new(AdamConfig {
            lr: 0.05,
            ..Default::default()
        });
        let mut guide_fn = || guide.call();
        let mut model_fn = model;
        match which {
            0 => {
                let mut svi = Svi::new(
                    &mut model_fn,
                    &mut guide_fn,
                    adam,
                    ppl::infer::TraceMeanFieldElbo::default(),
                );
                svi.run(300).unwrap();
            }
            1 => {
                let mut svi = Svi::new(
                    &mut model_fn,
                    &mut guide_fn,
                    adam,
                    ppl::infer::TraceGraphElbo::default(),
                );
                svi.run(300).unwrap();
            }
            _ => {
                let mut svi = Svi::new(
                    &mut model_fn,
                    &mut guide_fn,
                    adam,
                    ppl::infer::RenyiElbo::default(),
                );
                svi.run(300).unwrap();
            }
        }
        let (loc, _) = guide.site_loc_and_scale("x").unwrap();
        close(&v(&loc), &[m], 0.15, "loc of log x");
    }
}

#[test]
fn simplex_latent_changes_shape_in_unconstrained_space() {
    setup(30);
    // p ~ Dirichlet(1, 1, 1); 30 categorical draws with counts (15, 10, 5). Posterior
    // Dirichlet(16, 11, 6): mean (0.485, 0.333, 0.182), sds ~0.08.
    let obs = Tensor::cat(
        &[
            Tensor::from_slice(&[0i64; 15]),
            Tensor::from_slice(&[1i64; 10]),
            Tensor::from_slice(&[2i64; 5]),
        ],
        0,
    );
    let model = || -> ppl::Result<()> {
        let p = sample(
            "p",
            Dirichlet::new(Tensor::ones([3], (Kind::Float, Device::Cpu)))?,
            None,
        )?;
        let _d = Plate::new("data", 30).enter()?;
        let _ = sample("c", Categorical::new(&p)?, Some(obs.shallow_clone()))?;
        Ok(())
    };
    let guide = AutoNormal::new(model);
    fit(model, || guide.call(), (400, 200));
    let (loc, _) = guide.site_loc_and_scale("p").unwrap();
    assert_eq!(
        loc.size(),
        vec![2],
        "stick-breaking: 3 - 1 unconstrained coordinates"
    );
    let med = guide.median().unwrap();
    let p = v(&med["p"]);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    close(
        &p,
        &[16.0 / 33.0, 11.0 / 33.0, 6.0 / 33.0],
        0.08,
        "simplex median",
    );
    let flat = AutoDiagonalNormal::new(model);
    assert_eq!(flat.latent_dim().unwrap(), 2);
    assert_eq!(flat.call().unwrap()["p"].size(), vec![3]);
}

#[model]
fn macro_model(y: &Tensor) -> ppl::Result<()> {
    let scale = sample!(HalfNormal::new(1.0)?);
    let _data = plate!("data", y.size()[0]);
    sample!("obs", Normal::new(0.0, &scale)?, obs = y);
    Ok(())
}

#[test]
fn works_with_the_model_macro() {
    setup(40);
    let y = Tensor::from_slice(&[0.5f32, -1.0, 1.5, -0.2]);
    let guide = AutoNormal::new(|| macro_model(&y));
    assert_eq!(guide.latent_sites().unwrap(), vec!["scale".to_string()]);
    fit(|| macro_model(&y), || guide.call(), (100, 20));
    assert!(guide.median().unwrap()["scale"].double_value(&[]) > 0.0);
}

/// A discrete latent that an autoguide would have to treat as continuous (AutoDelta on a model
/// whose Categorical picks a location by index) is an error naming the site and saying how to
/// sum it out, not a float index reaching libtorch.
#[test]
fn a_discrete_latent_is_an_error_naming_the_site() {
    clear_param_store();
    let model = || -> ppl::Result<()> {
        let locs = Tensor::from_slice(&[-1.0f32, 0.0, 2.0]);
        let k = ppl::sample(
            "k",
            Categorical::new(Tensor::ones([3], (Kind::Float, Device::Cpu)) / 3.0)?,
            None,
        )?;
        let _x = ppl::sample(
            "x",
            Normal::new(locs.index_select(0, &k.reshape([1])).squeeze(), 1.0)?,
            Some(Tensor::from(0.5f32)),
        )?;
        Ok(())
    };
    for (name, err) in [
        (
            "AutoDelta",
            AutoDelta::new(model)
                .call()
                .map(|_| ())
                .expect_err("discrete"),
        ),
        (
            "AutoNormal",
            AutoNormal::new(model)
                .call()
                .map(|_| ())
                .expect_err("discrete"),
        ),
    ] {
        let text = err.to_string();
        assert!(
            text.contains("`k`") && text.contains("enumerate = parallel"),
            "{name}: {text}"
        );
    }
}
