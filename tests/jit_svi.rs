//! Compiled SVI steps (`Svi::jit_compile`): what they must do beyond the conjugate tests in
//! `elbo_conjugate.rs` (which fit every conjugate pair with compiled steps too): draw fresh
//! randomness every step, including subsample indices, and refuse what a traced program cannot
//! replay, with an error saying why.

use std::cell::Cell;

use ppl::infer::{AutoDelta, TraceGraphElbo};
use ppl::prelude::*;

/// mu ~ N(0, 10²); x_i ~ N(mu, 1) for 40 points, seen 8 at a time.
#[model]
fn subsampled(x: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 10.0)?);
    let batch = plate!("data", x.size()[0], subsample_size = 8);
    let xb = x.index_select(0, batch.indices());
    sample!("x", Normal::new(&mu, 1.0)?, obs = &xb);
    Ok(())
}

/// With a point guide the only randomness is the subsample. The compiled loss must vary from
/// step to step (fresh indices, not the traced ones replayed), and its mean must be the
/// full-data loss `-log p(x, mu)` (subsampling is unbiased).
///
/// Tolerance: each loss is `-log N(mu; 0, 10) - 5 Σ_{i in batch} log N(x_i; mu, 1)`; over draws of
/// the batch its standard deviation `s` is measured from the draws themselves; the mean of 3000
/// draws has standard error `s / √3000`, and the check allows 4 of them.
#[test]
fn subsample_indices_are_drawn_afresh_each_step() {
    clear_param_store();
    set_rng_seed(0);
    let x = (Tensor::arange(40, (Kind::Float, Device::Cpu)) / 4.0).to_kind(Kind::Float);
    let guide = AutoDelta::new(|| subsampled(&x));
    let sgd = Sgd::new(SgdConfig {
        lr: 0.0,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || subsampled(&x),
        || guide.call(),
        sgd,
        TraceElbo::default(),
    )
    .jit_compile(true);
    svi.step().expect("first (eager) step");
    let losses: Vec<f64> = (0..3000).map(|_| svi.step().expect("step")).collect();
    assert!(svi.is_compiled());
    let distinct = losses
        .windows(2)
        .filter(|w| (w[0] - w[1]).abs() > 1e-9)
        .count();
    assert!(
        distinct > 2500,
        "only {distinct} changes of the loss in 3000 steps"
    );

    let mu = guide.median().expect("median")["mu"].double_value(&[]);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let prior = 0.5 * (mu / 10.0).powi(2) + 10f64.ln() + half_log_2pi;
    let xs: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double)).expect("x");
    let lik: f64 = xs
        .iter()
        .map(|v| 0.5 * (v - mu).powi(2) + half_log_2pi)
        .sum();
    let exact = prior + lik;
    let n = losses.len() as f64;
    let mean = losses.iter().sum::<f64>() / n;
    let sd = (losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!(
        (mean - exact).abs() < 4.0 * sd / n.sqrt(),
        "mean compiled loss {mean}, full-data loss {exact}, sd {sd}"
    );
}

#[model]
fn coin(flips: &Tensor) -> ppl::Result<()> {
    let f = sample!(Beta::new(10.0, 10.0)?);
    let _d = plate!("data", flips.size()[0]);
    sample!("obs", Bernoulli::new(&f)?, obs = flips);
    Ok(())
}

#[guide]
fn coin_guide(_flips: &Tensor) -> ppl::Result<()> {
    let a = param!(15.0, constraint = positive);
    let b = param!(15.0, constraint = positive);
    let _f = sample!(Beta::new(&a, &b)?);
    Ok(())
}

fn flips() -> Tensor {
    Tensor::from_slice(&[1f32, 1., 1., 1., 1., 1., 0., 0., 0., 0.])
}

/// TraceGraphElbo keeps baselines between steps: refused before any step is taken.
#[test]
fn losses_with_state_are_refused() {
    clear_param_store();
    let x = flips();
    let adam = Adam::new(AdamConfig::default());
    let mut svi = Svi::new(
        || coin(&x),
        || coin_guide(&x),
        adam,
        TraceGraphElbo::default(),
    )
    .jit_compile(true);
    let err = svi.step().expect_err("TraceGraphElbo cannot be compiled");
    assert!(
        err.to_string().contains("TraceElbo or TraceMeanFieldElbo"),
        "{err}"
    );
    assert!(!ppl::params::with_param_store(|ps| ps.contains("a")));
}

/// The error of the first step of compiled SVI with Adam and TraceElbo.
fn first_compiled_step_error(
    model: impl FnMut() -> ppl::Result<()>,
    guide: impl FnMut() -> ppl::Result<()>,
) -> String {
    let adam = Adam::new(AdamConfig::default());
    let mut svi = Svi::new(model, guide, adam, TraceElbo::default()).jit_compile(true);
    svi.step().expect_err("compiling must fail").to_string()
}

/// Data made from a counter changes every run: the two traces differ and compiling says so.
#[test]
fn host_data_that_changes_between_runs_is_refused() {
    clear_param_store();
    let runs = Cell::new(0u32);
    let model = || -> ppl::Result<()> {
        runs.set(runs.get() + 1);
        let f = sample!("f", Beta::new(10.0, 10.0)?);
        let obs = Tensor::from_slice(&[f32::from(runs.get().is_multiple_of(2))]);
        let _ = sample!("obs", Bernoulli::new(&f)?, obs = obs);
        Ok(())
    };
    let guide = || -> ppl::Result<()> {
        let a = param!("a", 15.0, constraint = positive);
        let _f = sample!("f", Beta::new(&a, 15.0)?);
        Ok(())
    };
    let err = first_compiled_step_error(model, guide);
    assert!(err.contains("ran different ops"), "{err}");
}

/// A model whose sites depend on sampled values: eight coin flips choose eight branches, so two
/// traces (almost surely, and for this seed surely) take different paths.
#[test]
fn control_flow_on_sampled_values_is_refused() {
    clear_param_store();
    set_rng_seed(3);
    let model = || -> ppl::Result<()> {
        let z = sample!(
            "z",
            Normal::new(Tensor::zeros([8], (Kind::Float, Device::Cpu)), 1.0)?.to_event(1)?
        );
        let signs: Vec<f64> = Vec::try_from(z.to_kind(Kind::Double))?;
        for (i, s) in signs.iter().enumerate() {
            let scale = if *s > 0.0 { 1.0 } else { 2.0 };
            let _ = sample!(
                format!("y{i}"),
                Normal::new(z.get(i as i64), scale)?,
                obs = 0.5
            );
        }
        Ok(())
    };
    let guide = || -> ppl::Result<()> {
        let loc = param!("loc", Tensor::zeros([8], (Kind::Float, Device::Cpu)));
        let _z = sample!("z", Normal::new(&loc, 1.0)?.to_event(1)?);
        Ok(())
    };
    let err = first_compiled_step_error(model, guide);
    assert!(err.contains("control flow"), "{err}");
}

/// y_i ~ N(mu + x_i · w, s) with mu ~ N(0, 1), w ~ N(0, 1)^3, s ~ HalfNormal(1).
#[model]
fn regression(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 1.0)?);
    let w = sample!(Normal::new(Tensor::zeros([3], (Kind::Float, Device::Cpu)), 1.0)?.to_event(1)?);
    let s = sample!(HalfNormal::new(1.0)?);
    let _d = plate!("data", x.size()[0]);
    sample!("y", Normal::new(x.matmul(&w) + &mu, &s)?, obs = y);
    Ok(())
}

/// Every autoguide's ELBO compiles: `jit_compile` itself checks the compiled loss and gradient
/// against libtorch's on the traced run (1e-3 relative in float32), so a wrong vector-Jacobian
/// product for any op these guides use fails here. Also with TraceMeanFieldElbo's analytic KL.
#[test]
fn every_autoguide_compiles() {
    use ppl::infer::{
        AutoDiagonalNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
        AutoMultivariateNormal, AutoNormal, TraceMeanFieldElbo,
    };
    let x = Tensor::from_slice(&[
        0.5f32, -1.0, 0.3, 2.0, -0.7, 0.1, 1.1, 0.4, -0.2, 0.9, 0.0, -1.5,
    ])
    .reshape([4, 3]);
    let y = Tensor::from_slice(&[0.2f32, -1.3, 1.9, 0.4]);
    let model = || regression(&x, &y);
    // Each fit starts from an empty param store (the guides create their params lazily).
    let fit = |name: &str, guide: &dyn Fn() -> ppl::Result<()>, mean_field: bool| {
        clear_param_store();
        let adam = Adam::new(AdamConfig::default());
        let result = if mean_field {
            let mut svi =
                Svi::new(model, guide, adam, TraceMeanFieldElbo::default()).jit_compile(true);
            (0..5)
                .try_for_each(|_| svi.step().map(|_| ()))
                .map(|_| svi.is_compiled())
        } else {
            let mut svi = Svi::new(model, guide, adam, TraceElbo::default()).jit_compile(true);
            (0..5)
                .try_for_each(|_| svi.step().map(|_| ()))
                .map(|_| svi.is_compiled())
        };
        match result {
            Ok(compiled) => assert!(compiled, "{name}: not compiled"),
            Err(e) => panic!("{name}: {e}"),
        }
    };
    set_rng_seed(0);
    let normal = AutoNormal::new(model);
    fit("AutoNormal", &|| normal.call().map(|_| ()), false);
    let normal = AutoNormal::new(model);
    fit(
        "AutoNormal, TraceMeanFieldElbo",
        &|| normal.call().map(|_| ()),
        true,
    );
    let diag = AutoDiagonalNormal::new(model);
    fit("AutoDiagonalNormal", &|| diag.call().map(|_| ()), false);
    let mvn = AutoMultivariateNormal::new(model);
    fit("AutoMultivariateNormal", &|| mvn.call().map(|_| ()), false);
    let low_rank = AutoLowRankMultivariateNormal::new(model).rank(2);
    fit(
        "AutoLowRankMultivariateNormal",
        &|| low_rank.call().map(|_| ()),
        false,
    );
    let delta = AutoDelta::new(model);
    fit("AutoDelta", &|| delta.call().map(|_| ()), false);
    let laplace = AutoLaplaceApproximation::new(model);
    fit(
        "AutoLaplaceApproximation",
        &|| laplace.call().map(|_| ()),
        false,
    );
}

/// Loading a checkpoint replaces the param store's tensors; compiled steps must follow the store
/// (compile again), not keep updating the tensors they were compiled with.
#[test]
fn compiled_steps_follow_a_loaded_checkpoint() {
    clear_param_store();
    set_rng_seed(0);
    let x = flips();
    let path = std::env::temp_dir().join("ppl-jit-svi-checkpoint.pt");
    let adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let mut svi =
        Svi::new(|| coin(&x), || coin_guide(&x), adam, TraceElbo::default()).jit_compile(true);
    // Saved after the first (compiling) step, a is near its initial 15; the posterior is
    // Beta(16, 14), so later steps take it towards 16.
    svi.step().expect("step");
    ppl::optim::save_checkpoint(&path, &svi.optim).expect("save");
    let saved = get_param("a").expect("a").double_value(&[]);
    for _ in 0..400 {
        svi.step().expect("step");
    }
    assert!(svi.is_compiled());
    let moved = get_param("a").expect("a").double_value(&[]);
    assert!(
        // Farther than the bound on one step checked below (0.035), so the two cases differ.
        (moved.ln() - saved.ln()).abs() > 0.04,
        "{saved} -> {moved}: too close to tell"
    );
    ppl::optim::load_checkpoint(&path, &mut svi.optim).expect("load");
    assert_eq!(get_param("a").expect("a").double_value(&[]), saved);
    // The next step starts from the loaded value and moves it, by at most Adam's largest step in
    // unconstrained (log) space, lr (1 - β1) / √(1 - β2) ≈ 3.2 lr. Stepping the tensors the
    // program was compiled with would leave the loaded value where it is.
    svi.step().expect("step after loading");
    let after = get_param("a").expect("a").double_value(&[]);
    assert!(
        (after.ln() - saved.ln()).abs() < 0.035,
        "stepped from {saved} to {after}"
    );
    assert!(after != saved, "the loaded param did not move");
    svi.step().expect("compiled again");
    assert!(svi.is_compiled());
    std::fs::remove_file(&path).ok();
}

/// `auto_compile` compiles what it can and runs the rest eagerly, where `jit_compile(true)`
/// refuses: a guide with an op the compiler does not know (`sinc`) trains eagerly (its steps move
/// the params as eager steps do; the failed compile attempt drew random numbers, so the runs are
/// not draw for draw the same); the coin model compiles.
#[test]
fn auto_compile_falls_back_to_eager_steps() {
    let x = flips();
    let sinc_guide = || -> ppl::Result<()> {
        let a = param!("a", 15.0, constraint = positive);
        let b = param!("b", 15.0, constraint = positive);
        let _f = sample!("f", Beta::new(a.sinc() * 0.0 + &a, &b)?);
        Ok(())
    };
    let run = |auto: bool, jit: bool| -> (f64, bool, Option<String>) {
        clear_param_store();
        set_rng_seed(4);
        let adam = Adam::new(AdamConfig {
            lr: 0.01,
            ..Default::default()
        });
        let svi = Svi::new(|| coin(&x), sinc_guide, adam, TraceElbo::default());
        let mut svi = if auto {
            svi.auto_compile()
        } else {
            svi.jit_compile(jit)
        };
        let mut err = None;
        for _ in 0..20 {
            if let Err(e) = svi.step() {
                err = Some(e.to_string());
                break;
            }
        }
        let a = get_param("a").expect("a").double_value(&[]);
        (a, svi.is_compiled(), err)
    };
    let (eager_a, eager_compiled, eager_err) = run(false, false);
    assert!(eager_err.is_none() && !eager_compiled);
    let (auto_a, auto_compiled, auto_err) = run(true, false);
    assert!(auto_err.is_none(), "{auto_err:?}");
    assert!(!auto_compiled, "sinc cannot compile");
    // 20 Adam steps at lr 0.01 move log a by at most 20 · 3.2 · 0.01 = 0.64 from log 15; both
    // runs must have moved it (the posterior mean of a is 16), and by comparable amounts.
    for a in [auto_a, eager_a] {
        assert!(a != 15.0 && (a.ln() - 15f64.ln()).abs() <= 0.64, "a = {a}");
    }
    let (_, _, required_err) = run(false, true);
    let required_err = required_err.expect("jit_compile(true) refuses");
    assert!(required_err.contains("aten::sinc"), "{required_err}");

    clear_param_store();
    let adam = Adam::new(AdamConfig::default());
    let mut svi =
        Svi::new(|| coin(&x), || coin_guide(&x), adam, TraceElbo::default()).auto_compile();
    svi.run(3).expect("steps");
    assert!(svi.is_compiled());
}

/// Guides whose draws the compiled program makes with `exponential_` (Exponential, Weibull),
/// `uniform_` (Laplace) or through `tan` (Cauchy) compile, and their fresh compiled draws have
/// the right law: with the guide's param held fixed (SGD at lr 0), the mean of 4000 compiled
/// losses is `KL(q || p)` for `q` the guide's and `p` the model's distribution of one site.
///
/// Tolerance: each loss is one draw of `log q(z) - log p(z)`, `z ~ q`; over 4000 independent
/// draws their mean has standard error `sd / √4000`, with `sd` measured from the losses; the
/// check allows 4 of them.
#[test]
fn compiled_draws_of_exponential_laplace_and_cauchy_guides_have_their_law() {
    macro_rules! kl_check {
        ($name:expr, $exact:expr, |$a:ident| $q:expr, $p:expr) => {{
            clear_param_store();
            set_rng_seed(1);
            let model = || -> ppl::Result<()> {
                let _z = sample!("z", $p);
                Ok(())
            };
            let guide = || -> ppl::Result<()> {
                let $a = param!("a", 2.0, constraint = positive);
                let _z = sample!("z", $q);
                Ok(())
            };
            let sgd = Sgd::new(SgdConfig {
                lr: 0.0,
                ..Default::default()
            });
            let mut svi = Svi::new(model, guide, sgd, TraceElbo::default()).jit_compile(true);
            svi.step().expect("first step");
            let losses: Vec<f64> = (0..4000).map(|_| svi.step().expect("step")).collect();
            assert!(svi.is_compiled(), "{}", $name);
            let n = losses.len() as f64;
            let mean = losses.iter().sum::<f64>() / n;
            let sd = (losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert!(
                (mean - $exact).abs() < 4.0 * sd / n.sqrt(),
                "{}: mean compiled loss {mean}, KL {}, sd {sd}",
                $name,
                $exact
            );
        }};
    }
    // KL(Exp(2) || Exp(1)) = ln 2 + 1/2 - 1.
    kl_check!(
        "Exponential",
        2f64.ln() - 0.5,
        |a| Exponential::new(&a)?,
        Exponential::new(1.0)?
    );
    // KL(Laplace(0, 2) || Laplace(0, 1)) = -ln 2 - 1 + 2.
    kl_check!(
        "Laplace",
        1.0 - 2f64.ln(),
        |a| Laplace::new(0.0, &a)?,
        Laplace::new(0.0, 1.0)?
    );
    // KL(Cauchy(0, 2) || Cauchy(0, 1)) = ln((2 + 1)² / (4 · 2)).
    kl_check!(
        "Cauchy",
        (9.0f64 / 8.0).ln(),
        |a| Cauchy::new(0.0, &a)?,
        Cauchy::new(0.0, 1.0)?
    );
    // KL(Weibull(2, 1.5) || Weibull(1, 1.5)) = ln(1/2^1.5) ... via the general formula
    // KL = ln(k1/λ1^k1) - ln(k2/λ2^k2) + (k1 - k2)(ln λ1 - γ/k1) + (λ1/λ2)^k2 Γ(k2/k1 + 1) - 1,
    // here k1 = k2 = 1.5: -1.5 ln 2 + 2^1.5 - 1.
    kl_check!(
        "Weibull",
        -1.5 * 2f64.ln() + 2f64.powf(1.5) - 1.0,
        |a| Weibull::new(&a, 1.5)?,
        Weibull::new(1.0, 1.5)?
    );
}

/// SVI picks torch's intra-op threads by the work: one for a small model (the pool's wake-ups
/// cost more than they save, 3x more on a busy machine), restored when the `Svi` is dropped;
/// `num_threads(None)` leaves torch's setting, `Some(n)` sets `n`.
#[test]
fn svi_picks_torch_threads_by_the_work_and_restores_them() {
    clear_param_store();
    let x = flips();
    let before = tch::get_num_threads();
    tch::set_num_threads(2);
    {
        let adam = Adam::new(AdamConfig::default());
        let mut svi = Svi::new(|| coin(&x), || coin_guide(&x), adam, TraceElbo::default());
        svi.step().expect("step");
        assert_eq!(
            tch::get_num_threads(),
            1,
            "a ten-flip model runs single-threaded"
        );
    }
    assert_eq!(
        tch::get_num_threads(),
        2,
        "restored when the Svi is dropped"
    );
    {
        let adam = Adam::new(AdamConfig::default());
        let mut svi =
            Svi::new(|| coin(&x), || coin_guide(&x), adam, TraceElbo::default()).num_threads(None);
        svi.step().expect("step");
        assert_eq!(tch::get_num_threads(), 2, "left alone");
    }
    {
        let adam = Adam::new(AdamConfig::default());
        let mut svi = Svi::new(|| coin(&x), || coin_guide(&x), adam, TraceElbo::default())
            .num_threads(Some(1));
        svi.step().expect("step");
        assert_eq!(tch::get_num_threads(), 1);
    }
    assert_eq!(tch::get_num_threads(), 2);
    // 40 000 data points, above libtorch's grain size (32 768): torch's setting stays.
    {
        let data = Tensor::zeros([40_000], (Kind::Float, Device::Cpu));
        let model = || -> ppl::Result<()> {
            let loc = sample!("loc", Normal::new(0.0, 1.0)?);
            let _p = plate!("data", 40_000);
            let _x = sample!("x", Normal::new(&loc, 1.0)?, obs = &data);
            Ok(())
        };
        let guide = || -> ppl::Result<()> {
            let m = param!("m", 0.0);
            let _loc = sample!("loc", Normal::new(&m, 1.0)?);
            Ok(())
        };
        let mut svi = Svi::new(
            model,
            guide,
            Adam::new(AdamConfig::default()),
            TraceElbo::default(),
        );
        svi.step().expect("step");
        assert_eq!(
            tch::get_num_threads(),
            2,
            "a large model keeps torch's threads"
        );
    }
    tch::set_num_threads(before);
}

/// Predictive and Importance pick torch's threads by the work of their first run, as SVI does:
/// a small model runs its later draws single-threaded, and the setting is restored afterwards.
#[test]
fn predictive_and_importance_pick_threads_by_the_work() {
    use std::cell::Cell;
    clear_param_store();
    let x = flips();
    let seen = Cell::new(0);
    let model = || -> ppl::Result<()> {
        seen.set(tch::get_num_threads());
        coin(&x)
    };
    let before = tch::get_num_threads();
    tch::set_num_threads(2);
    ppl::infer::Predictive::with_guide(model, || coin_guide(&x), 3)
        .run()
        .expect("predictive");
    assert_eq!(
        seen.get(),
        1,
        "later draws of a small model run single-threaded"
    );
    assert_eq!(tch::get_num_threads(), 2, "restored");
    seen.set(0);
    Importance::new(model, 3).run().expect("importance");
    assert_eq!(seen.get(), 1);
    assert_eq!(tch::get_num_threads(), 2, "restored");
    tch::set_num_threads(before);
}
