//! Compiled potentials (`jit_compile`): the host program that `CompiledPotential` builds from a
//! traced model must give libtorch's value and gradient, for every continuous family and
//! transform a model can use; a model that branches on a latent value must be refused; and NUTS
//! on a compiled potential must still recover analytic posteriors.
//!
//! Tolerances: the model's tensors are float32 in libtorch and float64 in the host program, so
//! they agree to float32 rounding: relative 1e-4 of the value, and 1e-4 of the largest gradient
//! component (sums of tens of float32 terms carry errors of a few 1e-6 relative).

use ppl::infer::mcmc::{CompiledPotential, ModelSpec, Potential, PotentialFn};
use ppl::prelude::*;

fn t(v: &[f32]) -> Tensor {
    Tensor::from_slice(v)
}

/// Compiles `model`'s potential and compares it with libtorch's at `points` pseudo-random points.
fn check(name: &str, model: &dyn Fn() -> ppl::Result<()>) {
    set_rng_seed(0);
    let spec = ModelSpec::discover(model).expect("discover");
    let dim = spec.dim;
    let mut eager = Potential::new(model, spec.clone()).expect("potential");
    let z0: Vec<f64> = (0..dim).map(|i| 0.3 * ((i as f64) * 0.9).cos()).collect();
    let mut jit = CompiledPotential::new(&mut Potential::new(model, spec).expect("potential"), &z0)
        .unwrap_or_else(|e| panic!("{name}: compile: {e}"));
    let mut ge = vec![0.0; dim];
    let mut gj = vec![0.0; dim];
    for k in 0..5 {
        let z: Vec<f64> = (0..dim)
            .map(|i| 1.2 * ((i * 7 + k * 13) as f64 * 0.37).sin())
            .collect();
        let ue = eager.value_and_grad(&z, &mut ge).expect("eager");
        let uj = jit.value_and_grad(&z, &mut gj).expect("jit");
        assert!(
            (ue - uj).abs() <= 1e-4 * (1.0 + ue.abs()),
            "{name}: U {uj} against libtorch's {ue} at {z:?}"
        );
        let scale = ge.iter().fold(1.0f64, |m, g| m.max(g.abs()));
        for (i, (a, b)) in ge.iter().zip(&gj).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{name}: dU/dz[{i}] {b} against libtorch's {a} at {z:?}"
            );
        }
        let vj = jit.value(&z).expect("value");
        assert!(
            (vj - uj).abs() <= 1e-12 * (1.0 + uj.abs()),
            "{name}: value {vj} vs {uj}"
        );
    }
}

#[test]
fn compiled_potentials_match_libtorch() {
    let y = t(&[0.3, -1.2, 2.5, 0.8]);
    let pos = t(&[0.3, 1.2, 2.5, 0.8]);
    let unit = t(&[0.3, 0.7, 0.55, 0.1]);
    check("normal + half_cauchy (eight schools)", &|| {
        let mu = sample!("mu", Normal::new(0.0, 5.0)?);
        let tau = sample!("tau", HalfCauchy::new(5.0)?);
        let _p = plate!("J", 4);
        let th = sample!("th", Normal::new(0.0, 1.0)?);
        let theta = &mu + &tau * &th;
        let _ = sample!(
            "obs",
            Normal::new(&theta, t(&[15., 10., 16., 11.]))?,
            obs = y.shallow_clone()
        );
        Ok(())
    });
    check("half_normal, log_normal, gamma, exponential", &|| {
        let s = sample!("s", HalfNormal::new(2.0)?);
        let l = sample!("l", LogNormal::new(0.5, 0.7)?);
        let g = sample!("g", Gamma::new(2.0, 3.0)?);
        let e = sample!("e", Exponential::new(1.5)?);
        let _p = plate!("d", 4);
        let _ = sample!("o1", Gamma::new(&g + 1.0, &e)?, obs = pos.shallow_clone());
        let _ = sample!("o2", LogNormal::new(&l, &s)?, obs = pos.shallow_clone());
        Ok(())
    });
    check("beta, uniform, inverse_gamma, weibull", &|| {
        let b = sample!("b", Beta::new(2.0, 3.0)?);
        let u = sample!("u", Uniform::new(-1.0, 3.0)?);
        let ig = sample!("ig", InverseGamma::new(3.0, 2.0)?);
        let w = sample!("w", Weibull::new(1.5, 2.0)?);
        let _p = plate!("d", 4);
        let _ = sample!("o1", Beta::new(&b * 4.0, &ig)?, obs = unit.shallow_clone());
        let _ = sample!("o2", Normal::new(&u, &w)?, obs = y.shallow_clone());
        Ok(())
    });
    check("student_t, cauchy, laplace, gumbel", &|| {
        let df = sample!("df", Gamma::new(3.0, 0.5)?);
        let m = sample!("m", Cauchy::new(0.0, 2.0)?);
        let s = sample!("s", HalfCauchy::new(1.0)?);
        let _p = plate!("d", 4);
        let _ = sample!("o1", StudentT::new(&df, &m, &s)?, obs = y.shallow_clone());
        let _ = sample!("o2", Laplace::new(&m, &s)?, obs = y.shallow_clone());
        let _ = sample!("o3", Gumbel::new(&m, &s)?, obs = y.shallow_clone());
        Ok(())
    });
    check(
        "dirichlet with categorical and multinomial-like data",
        &|| {
            let p = sample!("p", Dirichlet::new(t(&[1., 2., 3.]))?);
            let _p = plate!("d", 4);
            let _ = sample!(
                "o",
                Categorical::new(&p)?,
                obs = Tensor::from_slice(&[0i64, 2, 2, 1])
            );
            Ok(())
        },
    );
    check("logistic regression with to_event and matmul", &|| {
        let x = t(&[0.5, -1.0, 0.3, 2.0, -0.7, 0.1, 1.1, 0.4]).reshape([4, 2]);
        let w = sample!(
            "w",
            Normal::new(Tensor::zeros([2], (Kind::Float, Device::Cpu)), 1.0)?.to_event(1)?
        );
        let b = sample!("b", Normal::new(0.0, 1.0)?);
        let _p = plate!("d", 4);
        let _ = sample!(
            "o",
            Bernoulli::from_logits(x.matmul(&w) + &b)?,
            obs = t(&[1., 0., 0., 1.])
        );
        Ok(())
    });
    check("poisson and binomial observations", &|| {
        let r = sample!("r", Gamma::new(2.0, 1.0)?);
        let q = sample!("q", Beta::new(1.0, 1.0)?);
        let _p = plate!("d", 4);
        let _ = sample!("o1", Poisson::new(&r)?, obs = t(&[0., 3., 1., 2.]));
        let _ = sample!("o2", Binomial::new(5.0, &q)?, obs = t(&[0., 3., 5., 2.]));
        Ok(())
    });
    check("multivariate normal, scale_tril", &|| {
        let scale_tril = t(&[1.0, 0.0, 0.5, 2.0]).reshape([2, 2]);
        let z = sample!(
            "z",
            MultivariateNormal::from_scale_tril(&t(&[0.0, 1.0]), &scale_tril)?
        );
        let _p = plate!("d", 4);
        let _ = sample!(
            "o",
            Normal::new(z.sum(Kind::Float), 1.0)?,
            obs = y.shallow_clone()
        );
        Ok(())
    });
    check(
        "multivariate normal with a latent scale_tril, batched observations",
        &|| {
            let s = sample!(
                "s",
                HalfNormal::new(Tensor::ones([2], (Kind::Float, Device::Cpu)))?.to_event(1)?
            );
            let l = t(&[1.0, 0.0, 0.5, 1.0]).reshape([2, 2]) * s.unsqueeze(-1);
            let obs = t(&[0.3, -0.2, 1.0, 0.4, -0.5, 0.9]).reshape([3, 2]);
            let _p = plate!("d", 3);
            let _ = sample!(
                "o",
                MultivariateNormal::from_scale_tril(&t(&[0.1, 0.2]), &l)?,
                obs = obs
            );
            Ok(())
        },
    );
    check(
        "chi2, low-rank multivariate normal, mixture of normals",
        &|| {
            let c = sample!("c", Chi2::new(3.0)?);
            let z = sample!(
                "z",
                LowRankMultivariateNormal::new(
                    &t(&[0.0, 1.0]),
                    &t(&[0.5, -0.3, 0.2, 0.8]).reshape([2, 2]),
                    &t(&[1.0, 0.5]),
                )?
            );
            let _p = plate!("d", 4);
            let mix = MixtureSameFamily::new(
                Categorical::new(t(&[0.3, 0.7]))?,
                std::rc::Rc::new(Normal::new(z.shallow_clone(), &c + 0.5)?),
            )?;
            let _ = sample!("o", mix, obs = y.shallow_clone());
            Ok(())
        },
    );
    check("von mises", &|| {
        let loc = sample!("loc", Normal::new(0.0, 1.0)?);
        let k = sample!("k", Gamma::new(2.0, 1.0)?);
        let _p = plate!("d", 4);
        let _ = sample!(
            "o",
            VonMises::new(&loc, &k)?,
            obs = t(&[0.3, -1.2, 2.5, 0.8])
        );
        Ok(())
    });
    check("lkj cholesky", &|| {
        let l = sample!("l", LKJCholesky::new(3, 2.0)?);
        let obs = t(&[0.3, -0.2, 1.0, 0.4, -0.5, 0.9]).reshape([2, 3]);
        let _p = plate!("d", 2);
        let zeros = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let _ = sample!(
            "o",
            MultivariateNormal::from_scale_tril(&zeros, &l)?,
            obs = obs
        );
        Ok(())
    });
}

/// A model whose ops depend on a latent value: the trace is only valid on one side of the branch,
/// and `compile` must notice at its check points and say why.
#[test]
fn branching_on_a_latent_value_is_refused() {
    let model = || -> ppl::Result<()> {
        let mu = sample!("mu", Normal::new(0.0, 1.0)?);
        let loc = if mu.double_value(&[]) > 0.0 {
            &mu * 2.0
        } else {
            &mu * -3.0
        };
        let _ = sample!("obs", Normal::new(&loc, 1.0)?, obs = Tensor::from(0.5f32));
        Ok(())
    };
    let spec = ModelSpec::discover(&model).expect("discover");
    let mut pot = Potential::new(&model, spec).expect("potential");
    // z = 0.05 and the nearby check points straddle 0.
    let err = CompiledPotential::new(&mut pot, &[0.05]).expect_err("branching model");
    let msg = err.to_string();
    assert!(
        msg.contains("branch on the value of a latent site"),
        "{msg}"
    );
    // The eager potential is still there and works.
    let mut g = [0.0];
    assert!(pot
        .value_and_grad(&[0.05], &mut g)
        .expect("eager")
        .is_finite());
}

/// An op the compiler does not know is an error naming it, and leaves the potential on libtorch.
#[test]
fn unsupported_op_is_named() {
    let model = || -> ppl::Result<()> {
        let mu = sample!("mu", Normal::new(0.0, 1.0)?);
        let _ = sample!(
            "obs",
            Normal::new(mu.sinc(), 1.0)?,
            obs = Tensor::from(0.5f32)
        );
        Ok(())
    };
    let spec = ModelSpec::discover(&model).expect("discover");
    let mut pot = Potential::new(&model, spec).expect("potential");
    let err = CompiledPotential::new(&mut pot, &[0.1]).expect_err("sinc is not compiled");
    assert!(err.to_string().contains("aten::sinc"), "{err}");
    let mut g = [0.0];
    assert!(pot
        .value_and_grad(&[0.1], &mut g)
        .expect("eager")
        .is_finite());
}

/// `auto_compile` runs a potential the compiler refuses on libtorch, drawing exactly what the
/// eager run draws; `jit_compile(true)` refuses it.
#[test]
fn auto_compile_runs_refused_potentials_eagerly() {
    let model = || -> ppl::Result<()> {
        let mu = sample!("mu", Normal::new(0.0, 1.0)?);
        let _ = sample!(
            "obs",
            Normal::new(mu.sinc() * 0.0 + &mu, 1.0)?,
            obs = Tensor::from(0.5f32)
        );
        Ok(())
    };
    let draws = |kernel: Nuts| -> ppl::Result<Vec<f64>> {
        let mut mcmc = Mcmc::new(kernel).num_samples(20).warmup_steps(20).seed(1);
        mcmc.run(model)?;
        Ok(Vec::<f64>::try_from(
            mcmc.get_samples()?["mu"].to_kind(Kind::Double),
        )?)
    };
    let eager = draws(Nuts::new()).expect("eager");
    let auto = draws(Nuts::new().auto_compile()).expect("auto");
    assert_eq!(eager, auto);
    let err = draws(Nuts::new().jit_compile(true)).expect_err("refused");
    assert!(err.to_string().contains("aten::sinc"), "{err}");
}
