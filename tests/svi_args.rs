//! SVI with models and guides that take their data as arguments (`Svi::step_with`, Pyro's
//! `svi.step(x, y)`): the same fit as the closure form, minibatches that change every step, and
//! compiled steps that take the data as inputs.

use ppl::infer::{bind, AutoDelta};
use ppl::prelude::*;

/// w ~ N(0, 1), b ~ N(0, 1); y_i ~ N(w x_i + b, 0.5).
#[model]
fn regression(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let w = sample!(Normal::new(0.0, 1.0)?);
    let b = sample!(Normal::new(0.0, 1.0)?);
    let _d = plate!("data", x.size()[0]);
    sample!("y", Normal::new(&(x * &w + &b), 0.5)?, obs = y);
    Ok(())
}

#[guide]
fn regression_guide(_x: &Tensor, _y: &Tensor) -> ppl::Result<()> {
    let w_loc = param!(0.0);
    let w_scale = param!(0.5, constraint = positive);
    let b_loc = param!(0.0);
    let b_scale = param!(0.5, constraint = positive);
    sample!("w", Normal::new(&w_loc, &w_scale)?);
    sample!("b", Normal::new(&b_loc, &b_scale)?);
    Ok(())
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::linspace(-2.0, 2.0, 40, (Kind::Float, Device::Cpu));
    let y =
        &x * 1.5 - 0.5 + Tensor::linspace(-1.0, 1.0, 40, (Kind::Float, Device::Cpu)).sin() * 0.3;
    (x, y)
}

fn adam() -> Adam {
    Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
}

fn params() -> Vec<f64> {
    ["w_loc", "w_scale", "b_loc", "b_scale"]
        .iter()
        .map(|n| get_param(n).expect("param").double_value(&[]))
        .collect()
}

/// The same seed gives the same losses and params, bit for bit, whether the data are passed at
/// each step or captured by closures: `step_with` adds no randomness and no different op.
#[test]
fn step_with_matches_the_closure_form() {
    let (x, y) = data();
    clear_param_store();
    set_rng_seed(3);
    let mut svi = Svi::new(
        || regression(&x, &y),
        || regression_guide(&x, &y),
        adam(),
        TraceElbo::default(),
    );
    let closure_losses = svi.run(50).expect("closure steps");
    let closure_params = params();

    clear_param_store();
    set_rng_seed(3);
    let mut svi = Svi::new(regression, regression_guide, adam(), TraceElbo::default());
    let arg_losses: Vec<f64> = (0..50)
        .map(|_| svi.step_with((&x, &y)).expect("step_with"))
        .collect();
    assert_eq!(closure_losses, arg_losses);
    assert_eq!(closure_params, params());
    // run_with and evaluate_loss_with take the same arguments.
    assert_eq!(svi.run_with(3, (&x, &y)).expect("run_with").len(), 3);
    assert!(svi.evaluate_loss_with((&x, &y)).expect("loss").is_finite());
}

/// mu ~ N(0, 10²); x_i ~ N(mu, 1).
#[model]
fn location(x: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 10.0)?);
    let _d = plate!("data", x.size()[0]);
    sample!("x", Normal::new(&mu, 1.0)?, obs = x);
    Ok(())
}

/// `-log p(x, mu)` for the location model.
fn neg_log_joint(x: &[f64], mu: f64) -> f64 {
    let c = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let prior = 0.5 * (mu / 10.0).powi(2) + 10f64.ln() + c;
    prior + x.iter().map(|xi| 0.5 * (xi - mu).powi(2) + c).sum::<f64>()
}

/// A compiled step takes the data arguments as inputs: compiled on one batch, it computes the
/// loss of every later batch of the same shape (no recompiling, no stale constants), and a batch
/// of a new shape compiles again. With a point guide (AutoDelta) and learning rate 0 the loss is
/// exactly `-log p(batch, mu)`, so every step is checked against the closed form (to float32
/// precision: the first step runs libtorch on the float32 param).
#[test]
fn compiled_steps_take_the_data_as_inputs() {
    clear_param_store();
    set_rng_seed(0);
    let x: Vec<f64> = (0..12).map(|i| (i as f64) * 0.7 - 2.0).collect();
    let xt = Tensor::from_slice(&x);
    let guide = AutoDelta::new(bind(location, &xt));
    let sgd = Sgd::new(SgdConfig {
        lr: 0.0,
        ..Default::default()
    });
    let mut svi = Svi::new(
        location,
        |_x: &Tensor| guide.call(),
        sgd,
        TraceElbo::default(),
    )
    .jit_compile(true);
    let mu = guide.median().expect("median")["mu"].double_value(&[]);
    for step in 0..9 {
        // Batches of 4, then (from step 6 on) of 6: a new shape compiles once more.
        let (start, len) = if step < 6 {
            (4 * (step % 3), 4)
        } else {
            (6 * (step % 2), 6)
        };
        let batch = xt.narrow(0, start as i64, len as i64);
        let loss = svi.step_with(&batch).expect("step");
        assert!(svi.is_compiled(), "step {step} ran eagerly");
        let want = neg_log_joint(&x[start..start + len], mu);
        assert!(
            (loss - want).abs() < 1e-6 * want.abs(),
            "step {step}: loss {loss}, want {want}"
        );
        let eval = svi.evaluate_loss_with(&batch).expect("evaluate");
        assert!((eval - want).abs() < 1e-6 * want.abs());
    }
}

/// Integer data cannot be a compiled program's input: the first compiled step says so, naming
/// the argument, and `auto_compile` runs such a model eagerly instead.
#[test]
fn integer_data_arguments_are_refused_with_the_reason() {
    #[model]
    fn counts(k: &Tensor) -> ppl::Result<()> {
        let rate = sample!(Gamma::new(2.0, 1.0)?);
        let _d = plate!("data", k.size()[0]);
        sample!("k", Poisson::new(&rate)?, obs = &k.to_kind(Kind::Float));
        Ok(())
    }
    #[guide]
    fn counts_guide(_k: &Tensor) -> ppl::Result<()> {
        let a = param!(2.0, constraint = positive);
        let b = param!(1.0, constraint = positive);
        sample!("rate", Gamma::new(&a, &b)?);
        Ok(())
    }
    let k = Tensor::from_slice(&[1i64, 3, 2]);
    clear_param_store();
    let mut svi = Svi::new(counts, counts_guide, adam(), TraceElbo::default()).jit_compile(true);
    let err = svi
        .step_with(&k)
        .expect_err("int data cannot be an input")
        .to_string();
    assert!(
        err.contains("argument tensor 0") && err.contains("Int64"),
        "{err}"
    );

    clear_param_store();
    let mut svi = Svi::new(counts, counts_guide, adam(), TraceElbo::default()).auto_compile();
    svi.step_with(&k).expect("eager step");
    assert!(!svi.is_compiled());
}
