//! Importance sampling on conjugate models, against analytic posteriors.
//!
//! Tolerances. The self-normalized estimate of a posterior mean has standard deviation about
//! `sd_post / sqrt(ESS)` (the effective sample size accounts for the spread of the weights), so
//! each test asserts `|estimate - exact| < 4 sd_post / sqrt(ESS)` with the ESS of the run itself:
//! a false failure has probability below 1e-4, and the seed is fixed anyway.

use ppl::infer::{EmpiricalMarginal, Importance};
use ppl::prelude::*;

const DATA: [f64; 3] = [1.2, 0.4, 2.0];

/// z ~ N(0, 1); x_i ~ N(z, 1). Posterior: N(sum x / (1 + n), 1 / (1 + n)).
fn exact_normal() -> (f64, f64) {
    let n = DATA.len() as f64;
    (
        DATA.iter().sum::<f64>() / (1.0 + n),
        (1.0 / (1.0 + n)).sqrt(),
    )
}

#[model]
fn normal_model() -> ppl::Result<Tensor> {
    let z = sample!(Normal::new(0.0, 1.0)?);
    for (i, x) in DATA.iter().enumerate() {
        sample!("x_{i}", Normal::new(&z, 1.0)?, obs = *x);
    }
    Ok(z)
}

#[guide]
fn normal_guide() -> ppl::Result<()> {
    let z = sample!(Normal::new(0.5, 1.0)?);
    let _ = z;
    Ok(())
}

fn assert_mean(est: f64, exact: f64, sd_post: f64, ess: f64) {
    let tol = 4.0 * sd_post / ess.sqrt();
    assert!(
        (est - exact).abs() < tol,
        "estimate {est}, exact {exact}, tolerance {tol} (ESS {ess})"
    );
}

#[test]
fn prior_proposal_matches_normal_posterior() -> ppl::Result<()> {
    set_rng_seed(0);
    let post = Importance::new(normal_model, 3000).run()?;
    let (mean, sd) = exact_normal();
    let ess = post.ess();
    assert!(ess > 100.0 && ess <= 3000.0, "{ess}");
    let m = EmpiricalMarginal::from_site(&post, "z")?;
    assert_mean(m.mean()?.double_value(&[]), mean, sd, ess);
    // The return value is z itself.
    let r = EmpiricalMarginal::from_return(&post)?;
    assert!((r.mean()?.double_value(&[]) - m.mean()?.double_value(&[])).abs() < 1e-9);
    // The variance: its estimate has relative sd about sqrt(2 / ESS).
    let var = m.variance()?.double_value(&[]);
    assert!(
        (var - sd * sd).abs() < 4.0 * (2.0 / ess).sqrt() * sd * sd,
        "{var}"
    );
    Ok(())
}

#[test]
fn guide_proposal_matches_normal_posterior() -> ppl::Result<()> {
    set_rng_seed(1);
    let post = Importance::new(normal_model, 3000)
        .guide(normal_guide)
        .run()?;
    let (mean, sd) = exact_normal();
    let m = EmpiricalMarginal::from_site(&post, "z")?;
    assert_mean(m.mean()?.double_value(&[]), mean, sd, post.ess());
    Ok(())
}

#[test]
fn log_evidence_of_a_single_observation() -> ppl::Result<()> {
    // z ~ N(0, 1), x ~ N(z, 1), x = 1: p(x) = N(1; 0, sqrt 2), log p = -1/4 - ln(2 sqrt(pi)).
    // sd(log Z_hat) ≈ sd(w) / (sqrt(n) E w) = sqrt((n / ESS - 1) / n) <= 1 / sqrt(ESS).
    set_rng_seed(2);
    let post = Importance::new(
        || {
            sample(
                "x",
                Normal::new(&sample("z", Normal::new(0.0, 1.0)?, None)?, 1.0)?,
                Some(Tensor::from(1.0f32)),
            )
        },
        4000,
    )
    .run()?;
    let exact = -0.25 - (2.0 * std::f64::consts::PI.sqrt()).ln();
    let tol = 4.0 / post.ess().sqrt();
    assert!(
        (post.log_evidence() - exact).abs() < tol,
        "{}",
        post.log_evidence()
    );
    Ok(())
}

#[test]
fn weights_without_observations_are_uniform() -> ppl::Result<()> {
    let post = Importance::new(|| sample("z", Normal::new(0.0, 1.0)?, None), 50).run()?;
    assert!((post.ess() - 50.0).abs() < 1e-9);
    assert!(post.log_evidence().abs() < 1e-12);
    assert!(post
        .normalized_weights()
        .iter()
        .all(|w| (w - 0.02).abs() < 1e-12));
    Ok(())
}

#[model]
fn beta_bernoulli(flips: &Tensor) -> ppl::Result<Tensor> {
    let fairness = sample!(Beta::new(2.0, 2.0)?);
    let _data = plate!("data", flips.size()[0]);
    sample!("obs", Bernoulli::new(&fairness)?, obs = flips);
    Ok(fairness)
}

#[test]
fn beta_bernoulli_posterior_mean() -> ppl::Result<()> {
    // 7 heads in 10: posterior Beta(2 + 7, 2 + 3) = Beta(9, 5), mean 9/14,
    // sd sqrt(9 * 5 / (14^2 * 15)) = 0.1239.
    set_rng_seed(3);
    let flips = Tensor::from_slice(&[1.0f32, 1., 1., 0., 1., 1., 0., 1., 0., 1.]);
    let post = Importance::new(|| beta_bernoulli(&flips), 3000).run()?;
    let m = EmpiricalMarginal::from_site(&post, "fairness")?;
    let sd = (45.0f64 / (196.0 * 15.0)).sqrt();
    assert_mean(m.mean()?.double_value(&[]), 9.0 / 14.0, sd, post.ess());
    // A draw from the empirical marginal is one of the samples.
    let d = m.sample()?.double_value(&[]);
    assert!((0.0..=1.0).contains(&d));
    Ok(())
}

#[model]
fn normal_plate_model(data: &Tensor) -> ppl::Result<Tensor> {
    let z = sample!(Normal::new(0.0, 1.0)?);
    let _data = plate!("data", data.size()[0]);
    sample!("x", Normal::new(&z, 1.0)?, obs = data);
    Ok(z)
}

#[test]
fn vectorized_matches_normal_posterior() -> ppl::Result<()> {
    set_rng_seed(4);
    let data = Tensor::from_slice(&DATA);
    // One plate in the model, so the particles go to dim -2.
    let post = Importance::new(|| normal_plate_model(&data), 20_000).run_vectorized(1)?;
    assert_eq!(post.particle_dim(), Some(-2));
    assert_eq!(post.log_weights().len(), 20_000);
    let (mean, sd) = exact_normal();
    let m = EmpiricalMarginal::from_site(&post, "z")?;
    assert_eq!(m.samples().size(), vec![20_000, 1]);
    assert_mean(m.mean()?.double_value(&[0]), mean, sd, post.ess());
    Ok(())
}

#[test]
fn vectorized_with_guide() -> ppl::Result<()> {
    set_rng_seed(5);
    let data = Tensor::from_slice(&DATA);
    let post = Importance::new(|| normal_plate_model(&data), 20_000)
        .guide(|| sample("z", Normal::new(0.5, 1.0)?, None))
        .run_vectorized(1)?;
    let (mean, sd) = exact_normal();
    let m = EmpiricalMarginal::from_site(&post, "z")?;
    assert_mean(m.mean()?.double_value(&[0]), mean, sd, post.ess());
    Ok(())
}

#[test]
fn nested_importance_is_hidden_from_outer_handlers() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        let post = Importance::new(normal_model, 5).run()?;
        let _ = sample("outer", Normal::new(0.0, 1.0)?, None)?;
        Ok(post.num_samples())
    })?;
    assert_eq!(tr.names().collect::<Vec<_>>(), vec!["outer"]);
    Ok(())
}

#[test]
fn missing_site_is_named() {
    let post = Importance::new(normal_model, 5).run().expect("run");
    let err = EmpiricalMarginal::from_site(&post, "nope").expect_err("no such site");
    assert!(err.to_string().contains("nope"), "{err}");
}
