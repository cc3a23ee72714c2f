//! Issue 17's families without a fixture of their own: Empirical, ImproperUniform (under NUTS),
//! FoldedDistribution, LKJ's support, and the API completions `to_event_all` and `expand_by`.

use ppl::infer::mcmc::{diagnostics, Mcmc, Nuts};
use ppl::prelude::*;

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

#[test]
fn empirical_is_a_site_distribution() {
    // Samples 0, 1, 2 with weights 1:2:7.
    let samples = Tensor::from_slice(&[0.0f64, 1.0, 2.0]);
    let lw = Tensor::from_slice(&[1.0f64, 2.0, 7.0]).log();
    let d = Empirical::new(&samples, &lw).expect("d");
    let lp = d.log_prob(&Tensor::from_slice(&[2.0f64, 0.5])).expect("lp");
    let v = Vec::<f64>::try_from(&lp).expect("v");
    assert!(
        (v[0] - 0.7f64.ln()).abs() < 1e-12 && v[1] == f64::NEG_INFINITY,
        "{v:?}"
    );
    assert!((d.mean().expect("m").double_value(&[]) - 1.6).abs() < 1e-12);
    // Draws by weight: the share of 2s is 0.7 within 5 standard errors (sqrt(.21/n)).
    set_rng_seed(0);
    let n = 20_000;
    let x = d.sample(&[n]).expect("sample");
    let share = x
        .eq(2.0)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!(
        (share - 0.7).abs() < 5.0 * (0.21 / n as f64).sqrt(),
        "{share}"
    );
    // Vector events compare whole rows; a sample! site takes it.
    let rows = Tensor::from_slice(&[0.0f64, 1.0, 1.0, 0.0]).reshape([2, 2]);
    let d = Empirical::new(&rows, &Tensor::zeros([2], OPTS)).expect("d");
    assert_eq!(d.event_shape(), &[2]);
    let lp = d.log_prob(&Tensor::from_slice(&[1.0f64, 0.0])).expect("lp");
    assert!((lp.double_value(&[]) - 0.5f64.ln()).abs() < 1e-12);
    let model = || -> ppl::Result<Tensor> {
        ppl::sample("z", Empirical::new(&rows, &Tensor::zeros([2], OPTS))?, None)
    };
    assert_eq!(model().expect("site").size(), vec![2]);
    assert!(Empirical::new(&rows, &Tensor::zeros([3], OPTS)).is_err());
}

/// x ~ ImproperUniform(positive), factor log Gamma(x; 3, 2): the posterior is Gamma(3, 2)
/// (mean 1.5, sd √3/2). Means are checked to 4 MCSE with the run's own ESS.
#[test]
fn improper_uniform_under_nuts() {
    set_rng_seed(0);
    let model = || -> ppl::Result<()> {
        let x = ppl::sample(
            "x",
            ImproperUniform::new(constraints::positive(), &[], &[])?
                .options(Kind::Double, Device::Cpu),
            None,
        )?;
        ppl::factor("lik", &Gamma::new(3.0f64, 2.0)?.log_prob(&x)?)?;
        Ok(())
    };
    let mut mcmc = Mcmc::new(Nuts::new())
        .num_samples(800)
        .warmup_steps(300)
        .seed(1);
    mcmc.run(model).expect("run");
    let s = mcmc.get_samples().expect("samples")["x"].to_kind(Kind::Double);
    let x = Vec::<f64>::try_from(&s).expect("v");
    assert!(x.iter().all(|v| *v > 0.0));
    let ess = diagnostics::effective_sample_size(&[&x]).expect("ess");
    let m = diagnostics::mean(&x);
    let sd = 3f64.sqrt() / 2.0;
    assert!(
        (m - 1.5).abs() < 4.0 * sd / ess.sqrt(),
        "mean {m}, ess {ess}"
    );
    // Its log-density is 0 with the batch shape.
    let d = ImproperUniform::new(constraints::real(), &[3], &[2]).expect("d");
    assert_eq!(
        d.log_prob(&Tensor::zeros([4, 3, 2], OPTS))
            .expect("lp")
            .size(),
        vec![4, 3]
    );
}

#[test]
fn folded_lkj_and_shape_helpers() {
    // A folded N(1, 2) at y: N(y; 1, 2) + N(-y; 1, 2).
    let d = FoldedDistribution::new(Normal::new(1.0f64, 2.0).expect("n").boxed()).expect("d");
    let y = Tensor::from_slice(&[0.5f64, 3.0]);
    let n = Normal::new(1.0f64, 2.0).expect("n");
    let want = n
        .log_prob(&y)
        .expect("a")
        .logaddexp(&n.log_prob(&(-&y)).expect("b"));
    assert!(
        (d.log_prob(&y).expect("lp") - want)
            .abs()
            .max()
            .double_value(&[])
            < 1e-12
    );
    assert!(FoldedDistribution::new(Gamma::new(1.0, 1.0).expect("g").boxed()).is_err());
    set_rng_seed(1);
    assert!(bool::try_from(d.sample(&[100]).expect("s").ge(0.0).all()).expect("b"));
    // LKJ draws are correlation matrices, and their density matches LKJCholesky's with the
    // Jacobian: for dim 2, p(r) ∝ (1 - r²)^(η - 1) on (-1, 1), i.e. Beta(η, η) on (r+1)/2.
    let lkj = LKJ::new(2, Tensor::from(3.0f64)).expect("lkj");
    let c = lkj.sample(&[5]).expect("s");
    assert!(bool::try_from(constraints::corr_matrix().check(&c).expect("c").all()).expect("b"));
    let r = 0.3f64;
    let m = Tensor::from_slice(&[1.0, r, r, 1.0]).reshape([2, 2]);
    let beta = Beta::new(Tensor::from(3.0f64), 3.0)
        .expect("b")
        .log_prob(&Tensor::from((r + 1.0) / 2.0))
        .expect("lp");
    let got = lkj.log_prob(&m).expect("lp").double_value(&[]);
    assert!(
        (got - (beta.double_value(&[]) - 2f64.ln())).abs() < 1e-9,
        "{got}"
    );
    // to_event() with no argument and expand_by.
    let d = Normal::new(Tensor::zeros([2, 3], OPTS), 1.0).expect("n");
    let e = d.to_event_all().expect("e");
    assert_eq!((e.batch_shape(), e.event_shape()), (&[][..], &[2, 3][..]));
    let d = Normal::new(Tensor::zeros([3], OPTS), 1.0).expect("n");
    let b = d.expand_by(&[4, 5]).expect("b");
    assert_eq!(b.batch_shape(), &[4, 5, 3]);
}

/// Truncated draws stay inside the bounds and follow the truncated CDF: the fraction below the
/// truncated median is 1/2 within 5 standard errors (sqrt(0.25 / n)).
#[test]
fn truncated_draws_follow_the_truncated_cdf() {
    set_rng_seed(2);
    let d = TruncatedCauchy::new(0.0f64, 1.0, Tensor::from_slice(&[-1.0f64, 0.5]), 3.0).expect("d");
    let n = 20_000i64;
    let x = d.sample(&[n]).expect("s");
    assert!(bool::try_from(x.ge_tensor(&Tensor::from_slice(&[-1.0f64, 0.5])).all()).expect("b"));
    assert!(bool::try_from(x.le(3.0).all()).expect("b"));
    let med = d.icdf(&Tensor::from(0.5f64)).expect("median");
    let below = x
        .lt_tensor(&med)
        .to_kind(Kind::Double)
        .mean_dim(0, false, Kind::Double);
    let dev = (below - 0.5).abs().max().double_value(&[]);
    assert!(dev < 5.0 * (0.25 / n as f64).sqrt(), "{dev}");
    // The CDF at the bounds is 0 and 1.
    let c = d
        .cdf(&Tensor::from_slice(&[-1.0f64, 3.0]).reshape([2, 1]))
        .expect("cdf");
    assert!((c.get(0).get(0).double_value(&[])).abs() < 1e-12);
    assert!((c.get(1).double_value(&[0]) - 1.0).abs() < 1e-12);
}

/// Directional families: VonMises3D draws have mean (coth κ - 1/κ) μ (each coordinate within 5
/// standard errors, estimated from the draws); ProjectedNormal and VonMises3D draws lie on the
/// sphere; InverseWishart draws average to Ψ / (ν - p - 1).
#[test]
fn directional_and_matrix_draws() {
    set_rng_seed(3);
    let n = 20_000i64;
    let check_mean = |name: &str, x: &Tensor, mean: &Tensor| {
        let m = x.mean_dim(0, false, Kind::Double);
        let se = x.std_dim(0, true, false) / (n as f64).sqrt();
        let bad = (&m - mean).abs().gt_tensor(&(se * 5.0 + 1e-12)).any();
        assert!(!bool::try_from(bad).expect("b"), "{name}: {m} vs {mean}");
    };
    let vm = VonMises3D::new(&Tensor::from_slice(&[1.0f64, -2.0, 0.5])).expect("d");
    let x = vm.sample(&[n]).expect("s");
    let norms = x.square().sum_dim_intlist(-1, false, Kind::Double);
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-9);
    check_mean("VonMises3D", &x, &vm.mean().expect("m"));
    let pn = ProjectedNormal::new(&Tensor::from_slice(&[0.5f64, 1.0, -1.0, 2.0])).expect("d");
    let y = pn.sample(&[100]).expect("s");
    let norms = y.square().sum_dim_intlist(-1, false, Kind::Double);
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-9);
    let psi = Tensor::from_slice(&[2.0f64, 0.3, 0.3, 1.0]).reshape([2, 2]);
    let iw = InverseWishart::new(&Tensor::from(9.0f64), &psi).expect("d");
    check_mean(
        "InverseWishart",
        &iw.sample(&[n]).expect("s"),
        &iw.mean().expect("m"),
    );
}

/// SineBivariateVonMises: the density integrates to 1 on a 300 × 300 grid over the torus (the
/// midpoint rule is spectrally accurate for periodic integrands), and the rejection sampler's
/// mean of sin(φ-μ) sin(ψ-ν) matches the grid's expectation within 5 standard errors.
#[test]
fn sine_bivariate_von_mises_normalizes_and_samples() {
    let d = SineBivariateVonMises::new(Tensor::from(0.5f64), -1.0, 2.0, 1.5, 1.2).expect("d");
    let g = 300i64;
    let h = 2.0 * std::f64::consts::PI / g as f64;
    let grid = (Tensor::arange(g, OPTS) + 0.5) * h - std::f64::consts::PI;
    let phi = grid.view([g, 1]).expand([g, g], false);
    let psi = grid.view([1, g]).expand([g, g], false);
    let v = Tensor::stack(&[phi.shallow_clone(), psi.shallow_clone()], -1);
    let p = d.log_prob(&v).expect("lp").exp();
    let total = p.sum(Kind::Double).double_value(&[]) * h * h;
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let f = ((&phi - 0.5).sin() * (&psi + 1.0).sin()).to_kind(Kind::Double);
    let want = (&p * &f).sum(Kind::Double).double_value(&[]) * h * h;
    set_rng_seed(4);
    let n = 20_000i64;
    let x = d.sample(&[n]).expect("s");
    assert_eq!(x.size(), vec![n, 2]);
    let fx = (x.select(-1, 0) - 0.5).sin() * (x.select(-1, 1) + 1.0).sin();
    let m = fx.mean(Kind::Double).double_value(&[]);
    let se = fx.std(true).double_value(&[]) / (n as f64).sqrt();
    assert!((m - want).abs() < 5.0 * se, "{m} vs {want} (se {se})");
}

/// Stable draws (Chambers–Mallows–Stuck) follow the S0 law: the fraction below each point is
/// scipy.stats.levy_stable's CDF there (S0; values from scipy 1.17, written here) within 5
/// standard errors sqrt(F(1-F)/n).
#[test]
fn stable_draws_follow_scipy_cdf() {
    set_rng_seed(6);
    let n = 40_000i64;
    let cases = [
        (
            (1.5, 0.5, 2.0, 1.0),
            [0.116299802, 0.3219871539, 0.5322046078],
        ),
        (
            (0.8, -0.3, 1.0, 0.0),
            [0.2229002402, 0.5379611377, 0.854172847],
        ),
        (
            (1.0, 0.5, 1.0, 0.0),
            [0.0750112037, 0.4375114839, 0.7309695912],
        ),
    ];
    for ((a, b, s, l), cdf) in cases {
        let d = Stable::new(Tensor::from(a), b, s, l).expect("d");
        let x = d.sample(&[n]).expect("s");
        for (pt, f) in [-2.0f64, 0.0, 1.5].iter().zip(cdf) {
            let frac = x
                .lt(*pt)
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[]);
            let se = (f * (1.0 - f) / n as f64).sqrt();
            assert!(
                (frac - f).abs() < 5.0 * se,
                "alpha {a} beta {b} at {pt}: {frac} vs {f}"
            );
        }
    }
}
