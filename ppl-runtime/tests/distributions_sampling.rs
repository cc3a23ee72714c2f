//! Samplers: moments of fixed-seed draws against the families' mean and variance, and
//! reparameterized gradients against closed forms.
//!
//! Tolerances come from Monte Carlo error. With `n` independent draws, a sample mean has
//! standard error `se = sd / √n`; a sample variance has `se = sd((x - x̄)²) / √n` (estimated
//! from the same draws, so heavy tails widen it). Each check allows 5 standard errors: under a
//! normal approximation a single check fails with probability 6e-7, so the few hundred checks
//! here fail by chance with probability below 1e-3 — and with fixed seeds they are deterministic.

use std::rc::Rc;

use ppl::distributions::*;
use ppl::transforms::{AffineTransform, ExpTransform, TransformRef};
use tch::{Kind, Tensor};

const N: i64 = 20_000;

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

/// Checks `|x̄ - mean| <= 5 se` and `|s² - variance| <= 5 se` elementwise over `x`'s draws.
fn check_moments(name: &str, x: &Tensor, mean: &Tensor, var: &Tensor) {
    let n = x.size()[0] as f64;
    let xbar = x.mean_dim(0, false, Kind::Double);
    let dev2 = (x - &xbar).square();
    let s2 = dev2.mean_dim(0, false, Kind::Double);
    let se_mean = (var / n).sqrt();
    let se_var = dev2.std_dim(0, true, false) / n.sqrt();
    let bad_mean = (&xbar - mean)
        .abs()
        .gt_tensor(&(se_mean * 5.0 + 1e-12))
        .any();
    assert!(
        !bool::try_from(bad_mean).expect("bool"),
        "{name} mean: {xbar} vs {mean}"
    );
    let bad_var = (&s2 - var).abs().gt_tensor(&(se_var * 5.0 + 1e-12)).any();
    assert!(
        !bool::try_from(bad_var).expect("bool"),
        "{name} variance: {s2} vs {var}"
    );
}

fn check(name: &str, d: &dyn Distribution) {
    let x = d.sample(&[N]).expect("sample").to_kind(Kind::Double);
    let mut shape = vec![N];
    shape.extend_from_slice(d.batch_shape());
    shape.extend_from_slice(d.event_shape());
    assert_eq!(x.size(), shape, "{name}: sample shape");
    let lp = d
        .log_prob(&x.to_kind(d.sample(&[]).expect("s").kind()))
        .expect("log_prob");
    assert!(
        bool::try_from(lp.isfinite().all()).expect("bool"),
        "{name}: draws outside support"
    );
    let m = d.mean().expect("mean").to_kind(Kind::Double);
    let v = d.variance().expect("variance").to_kind(Kind::Double);
    check_moments(name, &x, &m.expand_as(&x.get(0)), &v.expand_as(&x.get(0)));
}

#[test]
fn continuous_moments() {
    ppl::set_rng_seed(0);
    check(
        "Normal",
        &Normal::new(t(&[0.0, 3.0]), t(&[1.0, 0.1])).expect("d"),
    );
    check(
        "LogNormal",
        &LogNormal::new(t(&[0.0, 1.0]), t(&[0.25, 0.5])).expect("d"),
    );
    check("HalfNormal", &HalfNormal::new(t(&[1.0, 3.0])).expect("d"));
    check(
        "Laplace",
        &Laplace::new(t(&[0.0, -2.0]), t(&[1.0, 0.5])).expect("d"),
    );
    check(
        "Gumbel",
        &Gumbel::new(t(&[0.0, -2.0]), t(&[1.0, 0.5])).expect("d"),
    );
    check(
        "Uniform",
        &Uniform::new(t(&[0.0, -2.0]), t(&[1.0, 5.0])).expect("d"),
    );
    check("Exponential", &Exponential::new(t(&[1.0, 4.0])).expect("d"));
    check(
        "Gamma",
        &Gamma::new(t(&[0.3, 1.0, 8.0]), t(&[1.0, 2.0, 0.5])).expect("d"),
    );
    check(
        "InverseGamma",
        &InverseGamma::new(t(&[6.0, 9.0]), t(&[1.0, 3.0])).expect("d"),
    );
    check(
        "Beta",
        &Beta::new(t(&[0.5, 2.0, 9.0]), t(&[0.5, 5.0, 1.0])).expect("d"),
    );
    check("Chi2", &Chi2::new(t(&[1.0, 7.0])).expect("d"));
    check(
        "Weibull",
        &Weibull::new(t(&[1.0, 2.0]), t(&[0.8, 3.0])).expect("d"),
    );
    check(
        "StudentT",
        &StudentT::new(t(&[9.0, 30.0]), t(&[1.0, 0.0]), t(&[1.0, 2.0])).expect("d"),
    );
    check(
        "Dirichlet",
        &Dirichlet::new(t(&[0.5, 1.0, 4.0]).reshape([1, 3])).expect("d"),
    );
    let loc = t(&[1.0, -1.0]);
    let cov = t(&[2.0, 0.6, 0.6, 1.0]).reshape([2, 2]);
    check(
        "MultivariateNormal",
        &MultivariateNormal::new(&loc, &cov).expect("d"),
    );
    let w = t(&[1.0, 0.5, -0.5, 0.2]).reshape([2, 2]);
    let lr = LowRankMultivariateNormal::new(&loc, &w, &t(&[0.5, 1.0])).expect("d");
    check("LowRankMultivariateNormal", &lr);
    // Issue 17's families (parameters where the fourth moment exists, so the variance check's
    // own standard error is finite).
    check(
        "Pareto",
        &Pareto::new(t(&[1.0, 0.5]), t(&[6.0, 9.0])).expect("d"),
    );
    check(
        "Logistic",
        &Logistic::new(t(&[0.0, 3.0]), t(&[1.0, 0.2])).expect("d"),
    );
    check(
        "SoftLaplace",
        &SoftLaplace::new(t(&[0.0, 3.0]), t(&[1.0, 0.2])).expect("d"),
    );
    check(
        "AsymmetricLaplace",
        &AsymmetricLaplace::new(t(&[0.0, 1.0]), t(&[1.0, 0.5]), t(&[0.5, 2.0])).expect("d"),
    );
    check(
        "LogUniform",
        &LogUniform::new(t(&[0.1, 2.0]), t(&[10.0, 3.0])).expect("d"),
    );
    check(
        "Kumaraswamy",
        &Kumaraswamy::new(t(&[0.5, 3.0]), t(&[2.0, 0.7])).expect("d"),
    );
    check(
        "FisherSnedecor",
        &FisherSnedecor::new(t(&[3.0, 10.0]), t(&[12.0, 20.0])).expect("d"),
    );
    check(
        "TruncatedNormal",
        &TruncatedNormal::new(
            t(&[0.0, 1.0, 0.0]),
            t(&[1.0, 2.0, 1.0]),
            t(&[-1.0, f64::NEG_INFINITY, 4.0]),
            t(&[2.0, 0.0, 6.0]),
        )
        .expect("d"),
    );
    check(
        "MultivariateStudentT",
        &MultivariateStudentT::new(
            &t(&[7.0]),
            &t(&[1.0, -1.0]),
            &t(&[1.0, 0.0, 0.5, 2.0]).reshape([2, 2]),
        )
        .expect("d"),
    );
    check(
        "GaussianRandomWalk",
        &GaussianRandomWalk::new(t(&[0.5, 2.0]), 4).expect("d"),
    );
    let mix = Categorical::new(t(&[0.3, 0.7])).expect("mix");
    let comp = Normal::new(t(&[-2.0, 1.0]), t(&[0.5, 1.0])).expect("comp");
    check(
        "MixtureSameFamily",
        &MixtureSameFamily::new(mix, comp.boxed()).expect("d"),
    );
}

#[test]
fn discrete_moments() {
    ppl::set_rng_seed(0);
    check("Bernoulli", &Bernoulli::new(t(&[0.1, 0.6])).expect("d"));
    check(
        "Binomial",
        &Binomial::new(t(&[10.0, 3.0]), t(&[0.3, 0.9])).expect("d"),
    );
    check("Poisson", &Poisson::new(t(&[0.5, 12.0])).expect("d"));
    check("Geometric", &Geometric::new(t(&[0.2, 0.7])).expect("d"));
    check(
        "NegativeBinomial",
        &NegativeBinomial::new(t(&[2.5, 10.0]), t(&[0.3, 0.6])).expect("d"),
    );
    check(
        "BetaBinomial",
        &BetaBinomial::new(t(&[2.0, 0.5]), t(&[3.0, 0.5]), t(&[10.0, 4.0])).expect("d"),
    );
    check(
        "GammaPoisson",
        &GammaPoisson::new(t(&[2.0, 10.0]), t(&[0.5, 2.0])).expect("d"),
    );
    check(
        "ZeroInflatedPoisson",
        &ZeroInflatedPoisson::new(t(&[0.2, 0.7]), t(&[3.0, 1.0])).expect("d"),
    );
    check(
        "OneHotCategorical",
        &OneHotCategorical::new(t(&[0.2, 0.3, 0.5])).expect("d"),
    );
    check(
        "Multinomial",
        &Multinomial::new(7, t(&[0.2, 0.3, 0.5])).expect("d"),
    );
    check(
        "DiscreteUniform",
        &DiscreteUniform::new(t(&[0.0, -3.0]), t(&[1.0, 4.0])).expect("d"),
    );
    check(
        "ZeroInflatedNegativeBinomial",
        &ZeroInflatedNegativeBinomial::new(t(&[2.0, 5.0]), t(&[0.3, 0.6]), t(&[0.2, 0.5]))
            .expect("d"),
    );
    check(
        "NegativeBinomial2",
        &NegativeBinomial2::new(t(&[3.0, 0.5]), t(&[2.0, 10.0])).expect("d"),
    );
    check(
        "BetaNegativeBinomial",
        &BetaNegativeBinomial::new(t(&[2.0, 5.0]), t(&[9.0, 12.0]), t(&[3.0, 1.0])).expect("d"),
    );
    check(
        "DirichletMultinomial",
        &DirichletMultinomial::new(t(&[0.5, 1.0, 2.0]), 6).expect("d"),
    );
}

/// Heavy-tailed and circular families: check the CDF at a few points instead (the fraction of
/// draws below `x` has standard error `√(F(1-F)/n)`), and the circular moments of VonMises.
#[test]
fn cdf_and_circular_checks() {
    ppl::set_rng_seed(0);
    let base = Normal::new(t(&[0.0, 1.0]), t(&[1.0, 0.5])).expect("base");
    let ts: Vec<TransformRef> = vec![
        Rc::new(ExpTransform),
        Rc::new(AffineTransform::new(1.0, 2.0)),
    ];
    let dists: Vec<(&str, DistRef)> = vec![
        (
            "Cauchy",
            Cauchy::new(t(&[0.0, 2.0]), t(&[1.0, 0.5]))
                .expect("d")
                .boxed(),
        ),
        (
            "HalfCauchy",
            HalfCauchy::new(t(&[1.0, 3.0])).expect("d").boxed(),
        ),
        (
            "StudentT",
            StudentT::new(t(&[1.5, 3.0]), 0.0, 1.0).expect("d").boxed(),
        ),
        (
            "Transformed",
            TransformedDistribution::new(base.boxed(), ts)
                .expect("d")
                .boxed(),
        ),
    ];
    for (name, d) in dists {
        let x = d.sample(&[N]).expect("sample");
        let median = d.sample(&[1]).expect("probe").get(0);
        for probe in [median.shallow_clone(), &median * 2.0 + 0.5] {
            let Ok(f) = d.cdf(&probe) else { continue };
            let frac = x
                .le_tensor(&probe)
                .to_kind(Kind::Double)
                .mean_dim(0, false, Kind::Double);
            let se = (&f * (-&f + 1.0) / N as f64).sqrt();
            let bad = (&frac - &f).abs().gt_tensor(&(se * 5.0 + 1e-12)).any();
            assert!(
                !bool::try_from(bad).expect("bool"),
                "{name} cdf: {frac} vs {f}"
            );
        }
    }
    // VonMises: E[cos(x - loc)] = 1 - circular variance; E[sin(x - loc)] = 0.
    let d = VonMises::new(t(&[0.5, -3.0]), t(&[0.3, 8.0])).expect("d");
    let x = d.sample(&[N]).expect("sample");
    let c = (&x - d.loc()).cos();
    let s = (&x - d.loc()).sin();
    check_moments(
        "VonMises cos",
        &c,
        &(-d.variance().expect("v") + 1.0),
        &c.var_dim(0, true, false),
    );
    check_moments(
        "VonMises sin",
        &s,
        &s.get(0).zeros_like(),
        &s.var_dim(0, true, false),
    );
    // LKJCholesky: L Lᵀ is a correlation matrix; an off-diagonal entry has mean 0 and
    // variance 1 / (2η + d - 1) (its marginal is a stretched Beta(η - 1 + d/2, η - 1 + d/2)).
    let (dim, eta) = (3, 2.0);
    let d = LKJCholesky::new(dim, eta).expect("d");
    let l = d.sample(&[N]).expect("sample");
    let c = l.matmul(&l.transpose(-2, -1));
    let diag = c.diagonal(0, -2, -1);
    assert!(
        bool::try_from((diag - 1.0).abs().lt(1e-5).all()).expect("bool"),
        "unit diagonal"
    );
    // Every off-diagonal entry has that marginal (torch 2.11's sampler gets rows >= 2 wrong).
    let v = Tensor::from(1.0 / (2.0 * eta + dim as f64 - 1.0));
    for (i, j) in [(1, 0), (2, 0), (2, 1)] {
        let r = c.select(-2, i).select(-1, j).to_kind(Kind::Double);
        check_moments("LKJCholesky corr", &r, &Tensor::from(0.0), &v);
    }
}
