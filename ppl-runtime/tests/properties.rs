//! Property tests (proptest): for random parameters inside each family's constraints,
//! - draws lie in the support, and their log-density is finite;
//! - a value outside the support is refused (validation is on) or has log-density -inf.
//!
//! For random unconstrained points, `biject_to(c)` maps into `c`, its inverse maps back, and
//! its log|det J| is the log of autograd's derivative (elementwise transforms).
//!
//! torch's generator is seeded per case, so a failure replays; proptest shrinks the parameters.

use ppl::constraints::{self, Constraint};
use ppl::prelude::*;
use ppl::transforms::biject_to;
use proptest::prelude::*;

fn all(t: &Tensor) -> bool {
    bool::try_from(t.all()).unwrap_or(false)
}

/// Draws in the support with finite log-density; `outside` (if any) refused or -inf.
fn check(d: &dyn Distribution, outside: Option<f64>) -> Result<(), TestCaseError> {
    set_rng_seed(0);
    let x = d
        .sample(&[64])
        .map_err(|e| TestCaseError::fail(format!("{}: sample: {e}", d.name())))?;
    let inside = d
        .support()
        .check(&x)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        all(&inside),
        "{}: a draw outside {}: {x:?}",
        d.name(),
        d.support()
    );
    let lp = d
        .log_prob(&x)
        .map_err(|e| TestCaseError::fail(format!("{}: log_prob: {e}", d.name())))?;
    prop_assert!(
        all(&lp.isfinite()),
        "{}: log_prob {lp:?} of {x:?}",
        d.name()
    );
    if let Some(v) = outside {
        let v = Tensor::from(v as f32);
        match d.log_prob(&v) {
            Err(_) => {}
            Ok(lp) => prop_assert!(
                lp.double_value(&[]) == f64::NEG_INFINITY,
                "{}: log_prob {} outside the support",
                d.name(),
                lp.double_value(&[])
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn continuous_families(
        loc in -5.0f64..5.0,
        scale in 0.05f64..5.0,
        conc in 0.2f64..8.0,
        conc2 in 0.2f64..8.0,
    ) {
        check(&Normal::new(loc, scale).expect("normal"), None)?;
        check(&LogNormal::new(loc / 2.0, scale / 2.0).expect("lognormal"), Some(-1.0))?;
        check(&Gamma::new(conc, scale).expect("gamma"), Some(-1.0))?;
        check(&Beta::new(conc, conc2).expect("beta"), Some(1.5))?;
        check(&Exponential::new(scale).expect("exponential"), Some(-1.0))?;
        check(&StudentT::new(conc + 1.0, loc, scale).expect("student t"), None)?;
        check(&Cauchy::new(loc, scale).expect("cauchy"), None)?;
        check(&Laplace::new(loc, scale).expect("laplace"), None)?;
        check(&HalfNormal::new(scale).expect("half normal"), Some(-1.0))?;
        check(&HalfCauchy::new(scale).expect("half cauchy"), Some(-1.0))?;
        check(&Weibull::new(scale, conc).expect("weibull"), Some(-1.0))?;
        check(&InverseGamma::new(conc, scale).expect("inverse gamma"), Some(-1.0))?;
        check(&Uniform::new(loc, loc + scale).expect("uniform"), Some(loc + 2.0 * scale))?;
        check(&Gumbel::new(loc, scale).expect("gumbel"), None)?;
        check(&Chi2::new(conc).expect("chi2"), Some(-1.0))?;
    }

    #[test]
    fn discrete_families(p in 0.02f64..0.98, rate in 0.1f64..20.0, n in 1u32..30) {
        check(&Bernoulli::new(p).expect("bernoulli"), Some(0.5))?;
        check(&Geometric::new(p).expect("geometric"), Some(-1.0))?;
        check(&Poisson::new(rate).expect("poisson"), Some(-1.0))?;
        check(&Binomial::new(f64::from(n), p).expect("binomial"), Some(f64::from(n) + 1.0))?;
    }

    #[test]
    fn elementwise_transforms(u in prop::collection::vec(-6.0f64..6.0, 1..8), a in -3.0f64..3.0, w in 0.5f64..4.0) {
        let cs: Vec<Constraint> = vec![
            constraints::real(),
            constraints::positive(),
            constraints::unit_interval(),
            constraints::interval(a, a + w),
            constraints::greater_than(a),
            constraints::less_than(a),
        ];
        for c in cs {
            let t = biject_to(&c).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ut = Tensor::from_slice(&u).set_requires_grad(true);
            let x = t.forward(&ut).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let inside = c.check(&x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(all(&inside), "{c}: {x:?} from {u:?}");
            let back = t.inverse(&x.detach()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let err = f64::try_from((&back - &ut.detach()).abs().max()).unwrap_or(f64::NAN);
            // Saturated points (sigmoid near 0 or 1) lose the inverse to rounding; the check is
            // for the points the transform resolves.
            let resolved = all(&x.detach().isfinite()) && u.iter().all(|v| v.abs() < 6.0);
            prop_assert!(!resolved || err < 1e-6 * 64.0, "{c}: inverse off by {err}");
            let ladj = t.log_abs_det_jacobian(&ut, &x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let g = Tensor::run_backward(&[&x.sum(Kind::Double)], &[&ut], false, false);
            let by_autograd: Vec<f64> = Vec::try_from(g[0].abs().log()).unwrap_or_default();
            let ours: Vec<f64> = Vec::try_from(ladj.expand_as(&ut).detach()).unwrap_or_default();
            for (i, (a, b)) in ours.iter().zip(&by_autograd).enumerate() {
                prop_assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "{c}: log|det J|[{i}] {a} vs autograd {b}");
            }
        }
    }
}

/// A random positive-definite `k × k` matrix from `seed` (A Aᵀ + k I, float64).
fn random_pd(k: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let a = Tensor::randn([k, k], (Kind::Double, Device::Cpu));
    a.matmul(&a.transpose(0, 1)) + Tensor::eye(k, (Kind::Double, Device::Cpu)) * k as f64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Issue 17's scalar families: draws in the support with finite log-density; a value outside
    /// refused or -inf.
    #[test]
    fn new_scalar_families(
        loc in -5.0f64..5.0,
        scale in 0.1f64..4.0,
        conc in 0.3f64..6.0,
        conc2 in 0.3f64..6.0,
        p in 0.05f64..0.95,
    ) {
        let t = |v: f64| Tensor::from(v);
        check(&Pareto::new(t(scale), conc).expect("pareto"), Some(scale / 2.0))?;
        check(&Logistic::new(t(loc), scale).expect("logistic"), None)?;
        check(&SoftLaplace::new(t(loc), scale).expect("soft laplace"), None)?;
        check(&AsymmetricLaplace::new(t(loc), scale, conc).expect("asymmetric laplace"), None)?;
        check(&SkewLogistic::new(t(loc), scale, conc).expect("skew logistic"), None)?;
        check(&LogUniform::new(t(scale), scale + conc).expect("log uniform"), Some(scale / 2.0))?;
        check(&Kumaraswamy::new(t(conc), conc2).expect("kumaraswamy"), Some(1.5))?;
        check(&FisherSnedecor::new(t(conc), conc2).expect("fisher snedecor"), Some(-1.0))?;
        check(
            &TruncatedNormal::new(t(loc), scale, loc - conc, loc + conc2).expect("truncated normal"),
            Some(loc + conc2 + 1.0),
        )?;
        check(&ContinuousBernoulli::new(t(p)).expect("continuous bernoulli"), Some(1.5))?;
        check(&BetaNegativeBinomial::new(t(conc), conc2 + 1.0, scale).expect("bnb"), Some(0.5))?;
    }

    /// Vector and matrix families: draws in the support with finite log-density.
    #[test]
    fn multivariate_families(
        k in 2i64..5,
        seed in 0i64..1000,
        conc in 0.3f64..5.0,
        df in 0.5f64..10.0,
    ) {
        let opts = (Kind::Double, Device::Cpu);
        tch::manual_seed(seed);
        let loc = Tensor::randn([k], opts);
        let cov = random_pd(k, seed);
        let tril = cov.linalg_cholesky(false);
        check(&MultivariateNormal::new(&loc, &cov).expect("mvn"), None)?;
        check(&MultivariateStudentT::new(&Tensor::from(df), &loc, &tril).expect("mvt"), None)?;
        check(&Dirichlet::new(Tensor::rand([k], opts) * conc + 0.1).expect("dirichlet"), None)?;
        check(&LKJCholesky::new(k, Tensor::from(conc)).expect("lkj cholesky"), None)?;
        check(&LKJ::new(k, Tensor::from(conc)).expect("lkj"), None)?;
        check(&Wishart::new(&Tensor::from(k as f64 + df), &cov).expect("wishart"), None)?;
        check(&InverseWishart::new(&Tensor::from(k as f64 + 1.0 + df), &cov).expect("inverse wishart"), None)?;
        check(&GaussianRandomWalk::new(Tensor::from(conc), k).expect("grw"), None)?;
        check(&ProjectedNormal::new(&(Tensor::randn([k], opts) * conc)).expect("projected normal"), None)?;
        check(&VonMises3D::new(&(Tensor::randn([3], opts) * conc)).expect("von mises 3d"), None)?;
        check(
            &MixtureOfDiagNormals::new(&Tensor::randn([3, k], opts), &(Tensor::rand([3, k], opts) + 0.2), &Tensor::randn([3], opts))
                .expect("mixture of diag normals"),
            None,
        )?;
        check(&DirichletMultinomial::new(Tensor::rand([k], opts) * conc + 0.1, 7).expect("dm"), None)?;
    }

    /// Vector transforms: `biject_to(c)` lands in `c` and inverts; Ordered's log|det J| is
    /// autograd's (its Jacobian is square).
    #[test]
    fn vector_transforms(u in prop::collection::vec(-3.0f64..3.0, 6..7)) {
        let x = Tensor::from_slice(&u);
        for c in [
            constraints::simplex(),
            constraints::ordered_vector(),
            constraints::positive_ordered_vector(),
            constraints::lower_cholesky(),
            constraints::corr_cholesky(),
            constraints::softplus_lower_cholesky(),
            constraints::positive_definite(),
        ] {
            let t = biject_to(&c).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let y = t.forward(&x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ok = c.check(&y).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(all(&ok), "{c}: {y:?}");
            let back = t.inverse(&y).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let d = (back - &x).abs().max().double_value(&[]);
            prop_assert!(d < 1e-6, "{c}: round trip off by {d}");
        }
        let t = ppl::transforms::OrderedTransform;
        use ppl::transforms::Transform;
        let xg = x.detach().set_requires_grad(true);
        let y = t.forward(&xg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rows: Vec<Tensor> = (0..6)
            .map(|i| Tensor::run_backward(&[y.get(i)], &[&xg], true, false).remove(0))
            .collect();
        let (_, logdet) = Tensor::linalg_slogdet(&Tensor::stack(&rows, 0));
        let ladj = t.log_abs_det_jacobian(&x, &y.detach()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!((ladj.double_value(&[]) - logdet.double_value(&[])).abs() < 1e-8);
    }

    /// MixtureSameFamily (of normals, and of Poissons) and DiscreteHmm: draws in the support
    /// with finite log-density, and the log-density equals the brute-force sum over the discrete
    /// states: the mixture's K components, the HMM's K^(T+1) state paths (initial state, then
    /// one per step, as in Pyro's `DiscreteHMM`).
    #[test]
    fn mixtures_and_hmms(k in 2i64..4, steps in 1i64..4, seed in 0i64..1000, spread in 0.3f64..3.0) {
        let opts = (Kind::Double, Device::Cpu);
        tch::manual_seed(seed);
        let fail = |e: ppl::Error| TestCaseError::fail(e.to_string());
        let v = |t: &Tensor| Vec::<f64>::try_from(t.reshape([-1])).expect("values");
        let normal_lp = |x: f64, m: f64, s: f64| {
            -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
        };
        let logsumexp = |xs: &[f64]| {
            let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
        };

        let logits = Tensor::randn([k], opts);
        let locs = Tensor::randn([k], opts) * 3.0;
        let scales = Tensor::rand([k], opts) * spread + 0.1;
        let mix = MixtureSameFamily::new(
            Categorical::from_logits(&logits).map_err(fail)?,
            Normal::new(&locs, &scales).map_err(fail)?.boxed(),
        ).map_err(fail)?;
        check(&mix, None)?;
        let x = Tensor::randn([5], opts) * 4.0;
        let lp = v(&mix.log_prob(&x).map_err(fail)?);
        let (w, m, s) = (v(&logits.log_softmax(-1, Kind::Double)), v(&locs), v(&scales));
        for (i, xi) in v(&x).into_iter().enumerate() {
            let terms: Vec<f64> = (0..k as usize).map(|j| w[j] + normal_lp(xi, m[j], s[j])).collect();
            let exact = logsumexp(&terms);
            prop_assert!((lp[i] - exact).abs() < 1e-9 * (1.0 + exact.abs()), "mixture at {xi}: {} vs {exact}", lp[i]);
        }
        let rates = Tensor::rand([k], opts) * 10.0 * spread + 0.1;
        check(
            &MixtureSameFamily::new(
                Categorical::from_logits(&logits).map_err(fail)?,
                Poisson::new(&rates).map_err(fail)?.boxed(),
            ).map_err(fail)?,
            Some(-1.0),
        )?;

        let init = Tensor::randn([k], opts);
        let trans = Tensor::randn([steps, k, k], opts);
        let obs_locs = Tensor::randn([steps, k], opts) * 2.0;
        let obs_scales = Tensor::rand([steps, k], opts) * spread + 0.2;
        let hmm = DiscreteHmm::new(&init, &trans, Normal::new(&obs_locs, &obs_scales).map_err(fail)?.boxed())
            .map_err(fail)?;
        check(&hmm, None)?;
        let y = Tensor::randn([steps], opts) * 2.0;
        let lp = hmm.log_prob(&y).map_err(fail)?.double_value(&[]);
        let (ku, tu) = (k as usize, steps as usize);
        let init = v(&init.log_softmax(-1, Kind::Double));
        let trans = v(&trans.log_softmax(-1, Kind::Double)); // [t][from][to]
        let (ol, os, yv) = (v(&obs_locs), v(&obs_scales), v(&y));
        let mut terms = Vec::new();
        for code in 0..ku.pow(tu as u32 + 1) {
            // path[0] is the initial state, path[t + 1] the state at step t.
            let path: Vec<usize> = (0..=tu).map(|i| code / ku.pow(i as u32) % ku).collect();
            let mut total = init[path[0]];
            for t in 0..tu {
                total += trans[(t * ku + path[t]) * ku + path[t + 1]];
                total += normal_lp(yv[t], ol[t * ku + path[t + 1]], os[t * ku + path[t + 1]]);
            }
            terms.push(total);
        }
        let exact = logsumexp(&terms);
        prop_assert!((lp - exact).abs() < 1e-9 * (1.0 + exact.abs()), "hmm: {lp} vs brute force {exact}");
    }
}
