//! Argument and support validation, the switch that turns it off, and dtype/device inheritance.
//! One test function: the validation switch is process-wide, so nothing may run beside it.

use ppl::distributions::*;
use ppl::Error;
use tch::{Device, Kind, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

fn bad_param<T: std::fmt::Debug>(r: ppl::Result<T>, dist: &str, param: &str) {
    match r {
        Err(Error::InvalidParameter {
            dist: d, param: p, ..
        }) => {
            assert_eq!((d, p), (dist, param));
        }
        other => panic!("{dist}.{param}: expected InvalidParameter, got {other:?}"),
    }
}

fn outside<T: std::fmt::Debug>(r: ppl::Result<T>, what: &str) {
    assert!(
        matches!(r, Err(Error::OutsideSupport { .. })),
        "{what}: {r:?}"
    );
}

/// `(name, distribution)` built from float32 parameters on `dev`, one of each family.
fn f32_families(dev: Device) -> Vec<(&'static str, DistRef)> {
    let f = |v: &[f32]| Tensor::from_slice(v).to_device(dev);
    let eye = Tensor::eye(2, (Kind::Float, dev));
    vec![
        (
            "Normal",
            Normal::new(f(&[0.0, 1.0]), 1.0).expect("d").boxed(),
        ),
        (
            "LogNormal",
            LogNormal::new(f(&[0.0, 1.0]), 1.0).expect("d").boxed(),
        ),
        (
            "HalfNormal",
            HalfNormal::new(f(&[1.0, 2.0])).expect("d").boxed(),
        ),
        (
            "HalfCauchy",
            HalfCauchy::new(f(&[1.0, 2.0])).expect("d").boxed(),
        ),
        (
            "Cauchy",
            Cauchy::new(f(&[0.0, 1.0]), 1.0).expect("d").boxed(),
        ),
        (
            "StudentT",
            StudentT::new(f(&[3.0, 5.0]), 0.0, 1.0).expect("d").boxed(),
        ),
        (
            "Laplace",
            Laplace::new(f(&[0.0, 1.0]), 1.0).expect("d").boxed(),
        ),
        (
            "Gumbel",
            Gumbel::new(f(&[0.0, 1.0]), 1.0).expect("d").boxed(),
        ),
        (
            "Uniform",
            Uniform::new(f(&[0.0, 1.0]), 2.0).expect("d").boxed(),
        ),
        (
            "Exponential",
            Exponential::new(f(&[1.0, 2.0])).expect("d").boxed(),
        ),
        ("Gamma", Gamma::new(f(&[1.0, 2.0]), 1.0).expect("d").boxed()),
        (
            "InverseGamma",
            InverseGamma::new(f(&[3.0, 2.0]), 1.0).expect("d").boxed(),
        ),
        ("Beta", Beta::new(f(&[1.0, 2.0]), 1.0).expect("d").boxed()),
        ("Chi2", Chi2::new(f(&[1.0, 2.0])).expect("d").boxed()),
        (
            "Weibull",
            Weibull::new(f(&[1.0, 2.0]), 1.5).expect("d").boxed(),
        ),
        (
            "VonMises",
            VonMises::new(f(&[0.0, 1.0]), 2.0).expect("d").boxed(),
        ),
        (
            "Dirichlet",
            Dirichlet::new(f(&[1.0, 2.0, 3.0])).expect("d").boxed(),
        ),
        (
            "Bernoulli",
            Bernoulli::new(f(&[0.3, 0.6])).expect("d").boxed(),
        ),
        (
            "Binomial",
            Binomial::new(5.0, f(&[0.3, 0.6])).expect("d").boxed(),
        ),
        (
            "OneHotCategorical",
            OneHotCategorical::new(f(&[0.3, 0.7])).expect("d").boxed(),
        ),
        (
            "Multinomial",
            Multinomial::new(4, f(&[0.3, 0.7])).expect("d").boxed(),
        ),
        ("Poisson", Poisson::new(f(&[0.3, 6.0])).expect("d").boxed()),
        (
            "Geometric",
            Geometric::new(f(&[0.3, 0.6])).expect("d").boxed(),
        ),
        (
            "NegativeBinomial",
            NegativeBinomial::new(f(&[2.0, 3.0]), 0.5)
                .expect("d")
                .boxed(),
        ),
        (
            "BetaBinomial",
            BetaBinomial::new(f(&[2.0, 3.0]), 1.0, 6.0)
                .expect("d")
                .boxed(),
        ),
        (
            "GammaPoisson",
            GammaPoisson::new(f(&[2.0, 3.0]), 1.0).expect("d").boxed(),
        ),
        (
            "ZeroInflatedPoisson",
            ZeroInflatedPoisson::new(f(&[0.2, 0.5]), 2.0)
                .expect("d")
                .boxed(),
        ),
        (
            "MultivariateNormal",
            MultivariateNormal::new(&f(&[0.0, 1.0]), &eye)
                .expect("d")
                .boxed(),
        ),
        (
            "LowRankMultivariateNormal",
            LowRankMultivariateNormal::new(
                &f(&[0.0, 1.0]),
                &f(&[1.0, 0.5]).reshape([2, 1]),
                &f(&[1.0, 1.0]),
            )
            .expect("d")
            .boxed(),
        ),
        (
            "LKJCholesky",
            LKJCholesky::new(3, f(&[1.0, 2.0])).expect("d").boxed(),
        ),
    ]
}

#[test]
fn validation_and_dtypes() {
    // Constructors name the offending parameter.
    bad_param(Normal::new(0.0, -1.0), "Normal", "scale");
    bad_param(Gamma::new(0.0, 1.0), "Gamma", "concentration");
    bad_param(Gamma::new(1.0, -1.0), "Gamma", "rate");
    bad_param(Uniform::new(1.0, 1.0), "Uniform", "high");
    bad_param(
        Dirichlet::new(t(&[1.0, -1.0])),
        "Dirichlet",
        "concentration",
    );
    bad_param(Binomial::new(2.5, 0.5), "Binomial", "total_count");
    bad_param(Binomial::new(3.0, 1.5), "Binomial", "probs");
    bad_param(Poisson::new(-1.0), "Poisson", "rate");
    bad_param(StudentT::new(0.0, 0.0, 1.0), "StudentT", "df");
    bad_param(LKJCholesky::new(1, 1.0), "LKJCholesky", "dim");
    let not_pd = t(&[1.0, 2.0, 2.0, 1.0]).reshape([2, 2]);
    bad_param(
        MultivariateNormal::new(&t(&[0.0, 0.0]), &not_pd),
        "MultivariateNormal",
        "covariance_matrix",
    );
    bad_param(
        MultivariateNormal::from_scale_tril(&t(&[0.0, 0.0]), &not_pd),
        "MultivariateNormal",
        "scale_tril",
    );
    // Issue 17's families.
    bad_param(Pareto::new(1.0, -2.0), "Pareto", "alpha");
    bad_param(
        TruncatedNormal::new(0.0, 1.0, 2.0, 1.0),
        "TruncatedNormal",
        "high",
    );
    bad_param(
        DiscreteUniform::new(0.5, 3.0),
        "DiscreteUniform",
        "low and high",
    );
    bad_param(LogUniform::new(0.0, 1.0), "LogUniform", "low");
    bad_param(
        GaussianRandomWalk::new(1.0, 0),
        "GaussianRandomWalk",
        "num_steps",
    );
    bad_param(
        MultivariateStudentT::new(
            &t(&[0.0]),
            &t(&[0.0, 0.0]),
            &Tensor::eye(2, (Kind::Double, Device::Cpu)),
        ),
        "MultivariateStudentT",
        "df",
    );
    bad_param(
        DirichletMultinomial::new(t(&[1.0, 1.0]), -1),
        "DirichletMultinomial",
        "total_count",
    );
    let e = ZeroInflatedDistribution::new(Dirichlet::new(t(&[1.0, 1.0])).expect("d").boxed(), 0.5)
        .expect_err("vector base")
        .to_string();
    assert!(e.contains("scalar events"), "{e}");
    // Per-element supports: the second element's lower bound is 3, so 2 is outside.
    outside(
        Pareto::new(t(&[1.0, 3.0]), 2.0)
            .expect("d")
            .log_prob(&t(&[2.0, 2.0])),
        "Pareto",
    );
    outside(
        TruncatedNormal::new(0.0, 1.0, t(&[-1.0, 0.0]), 1.0)
            .expect("d")
            .log_prob(&t(&[-0.5, -0.5])),
        "TruncatedNormal",
    );
    outside(
        DirichletMultinomial::new(t(&[1.0, 1.0]), 3)
            .expect("d")
            .log_prob(&t(&[1.0, 1.0])),
        "DirichletMultinomial",
    );
    // log_prob outside the support is an error under validation.
    outside(
        Gamma::new(1.0, 1.0)
            .expect("d")
            .log_prob(&Tensor::from(-1.0f32)),
        "Gamma",
    );
    outside(
        Beta::new(1.0, 1.0)
            .expect("d")
            .log_prob(&Tensor::from(1.5f32)),
        "Beta",
    );
    outside(
        Poisson::new(1.0)
            .expect("d")
            .log_prob(&Tensor::from(0.5f32)),
        "Poisson",
    );
    outside(
        Binomial::new(3.0, 0.5)
            .expect("d")
            .log_prob(&Tensor::from(4.0f32)),
        "Binomial",
    );
    outside(
        Uniform::new(0.0, 1.0)
            .expect("d")
            .log_prob(&Tensor::from(2.0f32)),
        "Uniform",
    );
    outside(
        Dirichlet::new(t(&[1.0, 1.0]))
            .expect("d")
            .log_prob(&t(&[0.5, 0.6])),
        "Dirichlet",
    );

    // With validation off, the same calls go through.
    enable_validation(false);
    let ok = Normal::new(0.0, -1.0).is_ok()
        && Gamma::new(1.0, 1.0)
            .expect("d")
            .log_prob(&Tensor::from(-1.0f32))
            .is_ok();
    enable_validation(true);
    assert!(ok, "validation switch");

    // Every family keeps float32 parameters in float32 and on their device (the CPU, and the
    // first GPU where there is one), with torch's shapes.
    let mut devices = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        devices.push(Device::Cuda(0));
    }
    for (dev, (name, d)) in devices
        .into_iter()
        .flat_map(|dev| f32_families(dev).into_iter().map(move |f| (dev, f)))
    {
        let x = d.sample(&[3]).expect("sample");
        let mut shape = vec![3];
        shape.extend_from_slice(d.batch_shape());
        shape.extend_from_slice(d.event_shape());
        assert_eq!(x.size(), shape, "{name}: sample shape");
        assert_eq!(x.device(), dev, "{name}: device");
        let lp = d.log_prob(&x).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(lp.kind(), Kind::Float, "{name}: log_prob dtype");
        assert_eq!(lp.device(), dev, "{name}: log_prob device");
        let mut bs = vec![3];
        bs.extend_from_slice(d.batch_shape());
        assert_eq!(lp.size(), bs, "{name}: log_prob shape");
        if d.has_rsample() {
            assert_eq!(
                d.rsample(&[2]).expect("rsample").kind(),
                Kind::Float,
                "{name}: rsample dtype"
            );
        }
        // expand: a new leading batch dim.
        let mut big = vec![4];
        big.extend_from_slice(d.batch_shape());
        let e = d
            .expand(&big)
            .unwrap_or_else(|e| panic!("{name} expand: {e}"));
        assert_eq!(e.batch_shape(), big.as_slice(), "{name}: expand");
        let lp = e
            .log_prob(&x.unsqueeze(1))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut want = vec![3];
        want.extend_from_slice(&big);
        assert_eq!(lp.size(), want, "{name}: expanded log_prob");
    }
}
