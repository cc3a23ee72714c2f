//! Distributions against torch.distributions 2.11.0: fixtures written by
//! `scripts/make_fixtures.py` (log_prob, mean, variance, entropy, cdf and KL divergences), in
//! float64 (1e-6 relative) and float32 (1e-5 relative, against torch's own float32 results).

use std::collections::BTreeMap;
use std::rc::Rc;

use ppl::distributions::*;
use ppl::transforms::{AffineTransform, ExpTransform, TransformRef};
use serde_json::Value;
use tch::{Kind, Tensor};

const FIXTURES: &str = include_str!("fixtures/distributions.json");

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => f64::NAN,
        },
        v => v.as_f64().expect("a number"),
    }
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<i64> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|s| s.as_i64().expect("int"))
        .collect();
    let data: Vec<f64> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(num)
        .collect();
    Tensor::from_slice(&data).reshape(shape.as_slice())
}

type Params = BTreeMap<String, Tensor>;

fn params(v: &Value, kind: Kind) -> Params {
    v.as_object()
        .expect("params")
        .iter()
        .map(|(k, t)| (k.clone(), tensor(t).to_kind(kind)))
        .collect()
}

fn int(p: &Params, k: &str) -> i64 {
    p[k].double_value(&[]) as i64
}

/// The distribution a fixture case describes; `None` for families not implemented yet.
fn build(family: &str, p: &Params) -> Option<ppl::Result<DistRef>> {
    let g = |k: &str| &p[k];
    let has = |k: &str| p.contains_key(k);
    fn rc<D: Distribution + 'static>(d: ppl::Result<D>) -> Option<ppl::Result<DistRef>> {
        Some(d.map(|d| Rc::new(d) as DistRef))
    }
    match family {
        "Normal" => rc(Normal::new(g("loc"), g("scale"))),
        "LogNormal" => rc(LogNormal::new(g("loc"), g("scale"))),
        "HalfNormal" => rc(HalfNormal::new(g("scale"))),
        "HalfCauchy" => rc(HalfCauchy::new(g("scale"))),
        "Cauchy" => rc(Cauchy::new(g("loc"), g("scale"))),
        "StudentT" => rc(StudentT::new(g("df"), g("loc"), g("scale"))),
        "Laplace" => rc(Laplace::new(g("loc"), g("scale"))),
        "Gumbel" => rc(Gumbel::new(g("loc"), g("scale"))),
        "Uniform" => rc(Uniform::new(g("low"), g("high"))),
        "Exponential" => rc(Exponential::new(g("rate"))),
        "Gamma" => rc(Gamma::new(g("concentration"), g("rate"))),
        "InverseGamma" => rc(InverseGamma::new(g("concentration"), g("rate"))),
        "Beta" => rc(Beta::new(g("concentration1"), g("concentration0"))),
        "Chi2" => rc(Chi2::new(g("df"))),
        "Weibull" => rc(Weibull::new(g("scale"), g("concentration"))),
        "Bernoulli" if has("logits") => rc(Bernoulli::from_logits(g("logits"))),
        "Bernoulli" => rc(Bernoulli::new(g("probs"))),
        "Categorical" if has("logits") => rc(Categorical::from_logits(g("logits"))),
        "Categorical" => rc(Categorical::new(g("probs"))),
        "Dirichlet" => rc(Dirichlet::new(g("concentration"))),
        "Poisson" => rc(Poisson::new(g("rate"))),
        "ZeroInflatedPoisson" => rc(ZeroInflatedPoisson::new(g("gate"), g("rate"))),
        "Binomial" if has("logits") => rc(Binomial::from_logits(g("total_count"), g("logits"))),
        "Binomial" => rc(Binomial::new(g("total_count"), g("probs"))),
        "Geometric" if has("logits") => rc(Geometric::from_logits(g("logits"))),
        "Geometric" => rc(Geometric::new(g("probs"))),
        "NegativeBinomial" if has("logits") => {
            rc(NegativeBinomial::from_logits(g("total_count"), g("logits")))
        }
        "NegativeBinomial" => rc(NegativeBinomial::new(g("total_count"), g("probs"))),
        "GammaPoisson" => rc(GammaPoisson::new(g("concentration"), g("rate"))),
        "BetaBinomial" => rc(BetaBinomial::new(
            g("concentration1"),
            g("concentration0"),
            g("total_count"),
        )),
        "MultivariateNormal" if has("covariance_matrix") => {
            rc(MultivariateNormal::new(g("loc"), g("covariance_matrix")))
        }
        "MultivariateNormal" if has("precision_matrix") => rc(MultivariateNormal::from_precision(
            g("loc"),
            g("precision_matrix"),
        )),
        "MultivariateNormal" => rc(MultivariateNormal::from_scale_tril(
            g("loc"),
            g("scale_tril"),
        )),
        "LowRankMultivariateNormal" => rc(LowRankMultivariateNormal::new(
            g("loc"),
            g("cov_factor"),
            g("cov_diag"),
        )),
        "OneHotCategorical" if has("logits") => rc(OneHotCategorical::from_logits(g("logits"))),
        "OneHotCategorical" => rc(OneHotCategorical::new(g("probs"))),
        "Multinomial" if has("logits") => {
            rc(Multinomial::from_logits(int(p, "total_count"), g("logits")))
        }
        "Multinomial" => rc(Multinomial::new(int(p, "total_count"), g("probs"))),
        "VonMises" => rc(VonMises::new(g("loc"), g("concentration"))),
        "RelaxedBernoulli" if has("logits") => {
            rc(RelaxedBernoulli::from_logits(g("temperature"), g("logits")))
        }
        "RelaxedBernoulli" => rc(RelaxedBernoulli::new(g("temperature"), g("probs"))),
        "RelaxedOneHotCategorical" if has("logits") => rc(RelaxedOneHotCategorical::from_logits(
            g("temperature"),
            g("logits"),
        )),
        "RelaxedOneHotCategorical" => {
            rc(RelaxedOneHotCategorical::new(g("temperature"), g("probs")))
        }
        "LKJCholesky" => rc(LKJCholesky::new(int(p, "dim"), g("concentration"))),
        "MixtureSameFamily" => {
            let mix = Categorical::from_logits(g("mixture_logits")).expect("mixture");
            let comp = Normal::new(g("loc"), g("scale")).expect("components");
            rc(MixtureSameFamily::new(mix, comp.boxed()))
        }
        "Pareto" => rc(Pareto::new(g("scale"), g("alpha"))),
        "Kumaraswamy" => rc(Kumaraswamy::new(g("concentration1"), g("concentration0"))),
        "FisherSnedecor" => rc(FisherSnedecor::new(g("df1"), g("df2"))),
        "Logistic" => rc(Logistic::new(g("loc"), g("scale"))),
        "LogUniform" => rc(LogUniform::new(g("low"), g("high"))),
        "TruncatedNormal" => rc(TruncatedNormal::new(
            g("loc"),
            g("scale"),
            g("low"),
            g("high"),
        )),
        "DiscreteUniform" => rc(DiscreteUniform::new(g("low"), g("high"))),
        "SoftLaplace" => rc(SoftLaplace::new(g("loc"), g("scale"))),
        "AsymmetricLaplace" => rc(AsymmetricLaplace::new(g("loc"), g("scale"), g("asymmetry"))),
        "ZeroInflatedNegativeBinomial" => rc(ZeroInflatedNegativeBinomial::new(
            g("total_count"),
            g("probs"),
            g("gate"),
        )),
        "MultivariateStudentT" => rc(MultivariateStudentT::new(
            g("df"),
            g("loc"),
            g("scale_tril"),
        )),
        "DirichletMultinomial" => rc(DirichletMultinomial::new(
            g("concentration"),
            int(p, "total_count"),
        )),
        "GaussianRandomWalk" => rc(GaussianRandomWalk::new(g("scale"), int(p, "num_steps"))),
        "Wishart" => rc(Wishart::from_scale_tril(g("df"), g("scale_tril"))),
        "ContinuousBernoulli" if has("logits") => rc(ContinuousBernoulli::from_logits(g("logits"))),
        "ContinuousBernoulli" => rc(ContinuousBernoulli::new(g("probs"))),
        "LogisticNormal" => rc(LogisticNormal::new(g("loc"), g("scale"))),
        "LKJ" => rc(LKJ::new(int(p, "dim"), g("concentration"))),
        "OrderedLogistic" => rc(OrderedLogistic::new(g("predictor"), g("cutpoints"))),
        "SkewLogistic" => rc(SkewLogistic::new(g("loc"), g("scale"), g("asymmetry"))),
        "BetaNegativeBinomial" => rc(BetaNegativeBinomial::new(
            g("concentration1"),
            g("concentration0"),
            g("n"),
        )),
        "TruncatedCauchy" => rc(TruncatedCauchy::new(
            g("loc"),
            g("scale"),
            g("low"),
            g("high"),
        )),
        "LeftCensored" | "RightCensored" | "IntervalCensored" => {
            let base = Normal::new(g("loc"), g("scale"))
                .expect("base")
                .expand_to(&[4])
                .expect("expand");
            match family {
                "LeftCensored" => rc(CensoredDistribution::left(base, g("censored"))),
                "RightCensored" => rc(CensoredDistribution::right(base, g("censored"))),
                _ => rc(IntervalCensoredDistribution::new(
                    base,
                    g("left"),
                    g("right"),
                )),
            }
        }
        "InverseWishart" => rc(InverseWishart::new(g("concentration"), g("scale_matrix"))),
        "MatrixNormal" => rc(MatrixNormal::new(
            g("loc"),
            g("scale_tril_row"),
            g("scale_tril_column"),
        )),
        "ProjectedNormal" => rc(ProjectedNormal::new(g("concentration"))),
        "VonMises3D" => rc(VonMises3D::new(g("concentration"))),
        "MixtureOfDiagNormals" => rc(MixtureOfDiagNormals::new(
            g("locs"),
            g("coord_scale"),
            g("component_logits"),
        )),
        "SineBivariateVonMises" => rc(SineBivariateVonMises::new(
            g("phi_loc"),
            g("psi_loc"),
            g("phi_concentration"),
            g("psi_concentration"),
            g("correlation"),
        )),
        "Stable" => rc(Stable::new(g("stability"), g("skew"), g("scale"), g("loc"))),
        "TransformedDistribution" => {
            let base = Normal::new(g("loc"), g("scale")).expect("base");
            let ts: Vec<TransformRef> = vec![
                Rc::new(ExpTransform),
                Rc::new(AffineTransform::new(1.0, 2.0)),
            ];
            rc(TransformedDistribution::new(base.boxed(), ts))
        }
        _ => None,
    }
}

fn close(what: &str, ours: &Tensor, theirs: &Tensor, rtol: f64, atol: f64) {
    let ours = ours.to_kind(Kind::Double);
    let theirs = theirs.to_kind(Kind::Double);
    assert_eq!(ours.size(), theirs.size(), "{what}: shape");
    let a: Vec<f64> = Vec::try_from(ours.reshape([-1])).expect("vec");
    let b: Vec<f64> = Vec::try_from(theirs.reshape([-1])).expect("vec");
    // Absolute slack scaled by the largest finite entry: float32 results that come from
    // differences of large terms (lgamma(70) - ...) keep only ~1e-7 of those terms.
    let big = b
        .iter()
        .filter(|y| y.is_finite())
        .fold(0.0f64, |m, y| m.max(y.abs()));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let ok = (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= rtol * y.abs() + atol * (1.0 + big);
        assert!(
            ok,
            "{what}[{i}]: ours {x} vs torch {y}\n ours: {a:?}\n torch: {b:?}"
        );
    }
}

type Stat = fn(&dyn Distribution, &Tensor) -> ppl::Result<Tensor>;

const STATS: [(&str, Stat); 5] = [
    ("log_prob", |d, v| d.log_prob(v)),
    ("mean", |d, _| d.mean()),
    ("variance", |d, _| d.variance()),
    ("entropy", |d, _| d.entropy()),
    ("cdf", |d, v| d.cdf(v)),
];

fn value_kind(family: &str, kind: Kind) -> Kind {
    if family == "Categorical" || family == "OrderedLogistic" {
        Kind::Int64
    } else {
        kind
    }
}

#[test]
fn fixtures_match_torch() {
    let checked = check_fixtures(FIXTURES);
    assert!(checked > 100);
}

/// The families torch lacks, against scipy.stats and Pyro (`scripts/make_extra_fixtures.py`),
/// float64 only.
#[test]
fn extra_fixtures_match_scipy_and_pyro() {
    let checked = check_fixtures(include_str!("fixtures/distributions_extra.json"));
    assert!(checked >= 30, "{checked}");
}

/// Checks every case of a fixture file; returns the number of statistics compared.
fn check_fixtures(text: &str) -> usize {
    let root: Value = serde_json::from_str(text).expect("json");
    let (mut checked, mut skipped) = (0, Vec::new());
    for case in root["cases"].as_array().expect("cases") {
        let family = case["family"].as_str().expect("family");
        // torch's VonMises uses Abramowitz–Stegun polynomial approximations of log I₀ and
        // log I₁ (about 1e-7 relative in I₀); ours uses libtorch's exact i0e/i1e.
        let (rtol64, atol64) = if family == "VonMises" {
            (1e-6, 1e-6)
        } else {
            (1e-6, 1e-10)
        };
        for (kind, rtol, atol, refs) in [
            (Kind::Double, rtol64, atol64, case),
            (Kind::Float, 1e-5, 1e-5, &case["f32"]),
        ] {
            if refs.is_null() {
                continue;
            }
            let p = params(&case["params"], kind);
            let Some(d) = build(family, &p) else {
                skipped.push(family);
                break;
            };
            let d = d.unwrap_or_else(|e| panic!("{family}: {e}"));
            let value = tensor(&case["value"]).to_kind(value_kind(family, kind));
            for (stat, f) in STATS {
                if refs.get(stat).is_none() {
                    continue;
                }
                let what = format!("{family} {stat} ({kind:?}, params {:?})", case["params"]);
                let ours = f(&*d, &value).unwrap_or_else(|e| panic!("{what}: {e}"));
                close(&what, &ours, &tensor(&refs[stat]), rtol, atol);
                checked += 1;
            }
            if let Some(theirs) = refs.get("icdf") {
                let at = tensor(&refs["icdf_at"]).to_kind(kind);
                let what = format!("{family} icdf ({kind:?}, params {:?})", case["params"]);
                let ours = d.icdf(&at).unwrap_or_else(|e| panic!("{what}: {e}"));
                close(&what, &ours, &tensor(theirs), rtol, atol);
                checked += 1;
            }
        }
    }
    skipped.dedup();
    eprintln!("checked {checked} statistics; families not implemented: {skipped:?}");
    assert!(
        skipped.is_empty(),
        "fixture families without a constructor: {skipped:?}"
    );
    checked
}

#[test]
fn kl_fixtures_match_torch() {
    let root: Value = serde_json::from_str(FIXTURES).expect("json");
    let pairs = root["kl"].as_array().expect("kl");
    for pair in pairs {
        let side = |k: &str, kind| {
            let fam = pair[k]["family"].as_str().expect("family");
            let d = build(fam, &params(&pair[k]["params"], kind)).expect("implemented");
            d.unwrap_or_else(|e| panic!("{fam}: {e}"))
        };
        let theirs = tensor(&pair["kl"]);
        for (kind, rtol) in [(Kind::Double, 1e-6), (Kind::Float, 1e-5)] {
            let (p, q) = (side("p", kind), side("q", kind));
            let what = format!("KL({} || {}) {kind:?}", p.name(), q.name());
            let ours = kl_divergence(&*p, &*q).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(ours.kind(), kind, "{what}: dtype follows the parameters");
            close(&what, &ours, &theirs, rtol, rtol * 1e-2);
        }
    }
    assert_eq!(pairs.len(), 34);
}

#[test]
fn kl_of_independent_and_delta() {
    let opts = (Kind::Double, tch::Device::Cpu);
    let (m1, s1) = (
        Tensor::randn([3, 2], opts),
        Tensor::rand([3, 2], opts) + 0.5,
    );
    let (m2, s2) = (
        Tensor::randn([3, 2], opts),
        Tensor::rand([3, 2], opts) + 0.5,
    );
    let p = Normal::new(&m1, &s1).expect("p");
    let q = Normal::new(&m2, &s2).expect("q");
    let elementwise = kl_divergence(&p, &q).expect("kl");
    let (pi, qi) = (
        Normal::new(&m1, &s1).expect("p").to_event(1).expect("pi"),
        Normal::new(&m2, &s2).expect("q").to_event(1).expect("qi"),
    );
    let summed = kl_divergence(&pi, &qi).expect("kl independent");
    close(
        "Independent KL",
        &summed,
        &elementwise.sum_dim_intlist(-1, false, Kind::Double),
        1e-12,
        0.0,
    );
    // Delta against anything with a log-density: -log q(v).
    let v = Tensor::randn([3, 2], opts);
    let d = Delta::new(&v, 0).expect("delta");
    close(
        "Delta KL",
        &kl_divergence(&d, &q).expect("kl"),
        &(-q.log_prob(&v).expect("lp")),
        1e-12,
        0.0,
    );
    // Poisson at rate 0 is a point mass at 0: KL = -log q(0) = q.rate (torch gives NaN).
    let p0 = Poisson::new(0.0).expect("p");
    let kl = kl_divergence(&p0, &Poisson::new(0.5).expect("q")).expect("kl");
    assert!((kl.double_value(&[]) - 0.5).abs() < 1e-6, "{kl}");
    // No rule: an error naming both families.
    let e = kl_divergence(&q, &Cauchy::new(0.0, 1.0).expect("cauchy")).expect_err("no rule");
    assert!(
        e.to_string().contains("Normal") && e.to_string().contains("Cauchy"),
        "{e}"
    );
}
