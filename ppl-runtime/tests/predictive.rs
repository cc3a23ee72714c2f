//! `Predictive`: shapes, return sites and posterior predictive means.
//!
//! Tolerances: a mean of `n` independent draws with standard deviation `sd` has standard error
//! `sd / sqrt(n)`; the checks allow 4 standard errors (a false failure below 1e-4; seeds are
//! fixed anyway).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use ppl::infer::{AutoDelta, AutoNormal, Predictive, PREDICTIVE_PLATE};
use ppl::prelude::*;

fn setup(seed: u64) {
    tch::set_num_threads(1);
    set_rng_seed(seed);
    clear_param_store();
}

/// mu ~ N(0, 1); y_i ~ N(mu, 0.5) for 3 points (observed when `y` is given).
fn model(y: Option<&Tensor>) -> ppl::Result<()> {
    let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
    let _p = Plate::new("data", 3).enter()?;
    let _ = sample("y", Normal::new(&mu, 0.5)?, y.map(Tensor::shallow_clone))?;
    Ok(())
}

/// Sets the AutoNormal posterior of `mu` to N(2, 0.1²).
fn set_guide(guide: &AutoNormal<'_>) {
    guide.call().unwrap();
    with_param_store(|ps| {
        ps.set(
            "AutoNormal.locs.mu",
            &Tensor::from(2.0f32),
            Constraint::Real,
            Some(0),
        )
        .unwrap();
        ps.set(
            "AutoNormal.scales.mu",
            &Tensor::from(0.1f32),
            Constraint::Positive,
            Some(0),
        )
        .unwrap();
    });
}

fn mean(t: &Tensor) -> f64 {
    t.mean(Kind::Double).double_value(&[])
}

fn std(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).std(true).double_value(&[])
}

#[test]
fn from_a_guide_returns_all_sites() {
    setup(0);
    let y = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let guide = AutoNormal::new(|| model(Some(&y)));
    set_guide(&guide);
    let n = 2000;
    let pred = Predictive::with_guide(|| model(None), || guide.call(), n)
        .run()
        .unwrap();
    assert_eq!(pred.keys().collect::<Vec<_>>(), vec!["mu", "y"]);
    assert_eq!(pred["mu"].size(), vec![n as i64]);
    assert_eq!(pred["y"].size(), vec![n as i64, 3]);
    // mu ~ N(2, 0.1): mean within 4 * 0.1 / sqrt(n); y ~ N(2, 0.1² + 0.5²).
    assert!((mean(&pred["mu"]) - 2.0).abs() < 0.4 / (n as f64).sqrt());
    assert!((std(&pred["mu"]) - 0.1).abs() < 0.01);
    let sd_y = (0.01f64 + 0.25).sqrt();
    assert!((mean(&pred["y"]) - 2.0).abs() < 4.0 * sd_y / (n as f64).sqrt());
    assert!((std(&pred["y"]) - sd_y).abs() < 0.03);
    // Each y row is centred on its own mu draw.
    let resid = &pred["y"] - pred["mu"].unsqueeze(-1);
    assert!((std(&resid) - 0.5).abs() < 0.02);
    assert!(!pred["y"].requires_grad());
}

#[test]
fn observed_sites_keep_their_data_and_return_sites_filter() {
    setup(1);
    let y = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let guide = AutoNormal::new(|| model(Some(&y)));
    set_guide(&guide);
    let pred = Predictive::with_guide(|| model(Some(&y)), || guide.call(), 10)
        .return_sites(&["y"])
        .run()
        .unwrap();
    assert_eq!(pred.len(), 1);
    assert!(pred["y"].equal(&y.unsqueeze(0).expand([10, 3], false)));
    let err = Predictive::with_guide(|| model(None), || guide.call(), 2)
        .return_sites(&["nope"])
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn from_posterior_samples() {
    setup(2);
    let n = 500i64;
    let mu = Tensor::linspace(-3.0, 3.0, n, (Kind::Float, Device::Cpu));
    let samples = HashMap::from([("mu".to_string(), mu.shallow_clone())]);
    let pred = Predictive::with_posterior_samples(|| model(None), samples)
        .unwrap()
        .run()
        .unwrap();
    // By default only the sites not given are returned.
    assert_eq!(pred.keys().collect::<Vec<_>>(), vec!["y"]);
    assert_eq!(pred["y"].size(), vec![n, 3]);
    // Run i used mu[i]: the residuals are N(0, 0.5) draws.
    let resid = &pred["y"] - mu.unsqueeze(-1);
    assert!(mean(&resid).abs() < 4.0 * 0.5 / ((3 * n) as f64).sqrt());
    assert!((std(&resid) - 0.5).abs() < 0.04);
    // Fewer samples than given: the first ones.
    let samples = HashMap::from([("mu".to_string(), mu.shallow_clone())]);
    let pred = Predictive::with_posterior_samples(|| model(None), samples)
        .unwrap()
        .num_samples(7)
        .return_sites(&["mu", "y"])
        .run()
        .unwrap();
    assert!(pred["mu"].equal(&mu.narrow(0, 0, 7)));
}

#[test]
fn vectorized_matches_sequential_shapes_and_means() {
    setup(3);
    let y = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let guide = AutoNormal::new(|| model(Some(&y)));
    set_guide(&guide);
    let n = 4000;
    let pred = Predictive::with_guide(|| model(None), || guide.call(), n)
        .parallel(1)
        .run()
        .unwrap();
    assert_eq!(pred["mu"].size(), vec![n as i64]);
    assert_eq!(pred["y"].size(), vec![n as i64, 3]);
    assert!((mean(&pred["mu"]) - 2.0).abs() < 0.4 / (n as f64).sqrt());
    assert!((std(&pred["mu"]) - 0.1).abs() < 0.01);
    let resid = &pred["y"] - pred["mu"].unsqueeze(-1);
    assert!((std(&resid) - 0.5).abs() < 0.02);
    // From posterior samples, vectorized.
    let mu = Tensor::linspace(-1.0, 1.0, 50, (Kind::Float, Device::Cpu));
    let samples = HashMap::from([("mu".to_string(), mu.shallow_clone())]);
    let pred = Predictive::with_posterior_samples(|| model(None), samples)
        .unwrap()
        .parallel(1)
        .return_sites(&["mu", "y"])
        .run()
        .unwrap();
    assert_eq!(pred["y"].size(), vec![50, 3]);
    assert!(pred["mu"].equal(&mu));
    let resid = &pred["y"] - mu.unsqueeze(-1);
    assert!(mean(&resid).abs() < 4.0 * 0.5 / 150f64.sqrt());
    assert!(!PREDICTIVE_PLATE.is_empty());
}

/// z_i ~ N(0, 1) local, y_i ~ N(z_i, 1), subsampled 2 of 5.
fn local_model(y: Option<&Tensor>) -> ppl::Result<()> {
    let p = Plate::new("data", 5).subsample_size(2).enter()?;
    let z = sample("z", Normal::new(0.0, 1.0)?, None)?;
    let obs = y.map(|y| y.index_select(0, p.indices()));
    let _ = sample("y", Normal::new(&z, 1.0)?, obs)?;
    Ok(())
}

#[test]
fn subsampled_local_latents_from_a_guide() {
    setup(4);
    let y = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0]);
    let guide = AutoDelta::new(|| local_model(Some(&y)));
    guide.call().unwrap();
    let pred = Predictive::with_guide(|| local_model(None), || guide.call(), 20)
        .run()
        .unwrap();
    assert_eq!(pred["z"].size(), vec![20, 2]);
    assert_eq!(pred["y"].size(), vec![20, 2]);
    // The subsample-index site is not returned.
    assert!(!pred.contains_key("data"));
}
