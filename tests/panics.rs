//! A panic inside a model (a bug in user code) during SVI, MCMC (parallel chains included),
//! Predictive and Importance leaves the handler stack empty and the param store usable: the
//! handlers' guards unwind with it, and the next inference runs as if nothing had happened.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ppl::infer::Importance;
use ppl::prelude::*;

fn flips() -> Tensor {
    Tensor::from_slice(&[1f32, 1., 1., 0., 0., 1., 0., 1.])
}

/// A coin model that panics on its `n`th run (counting from 1) when `n > 0`.
fn coin(x: &Tensor, runs: &Cell<u32>, panic_at: u32) -> ppl::Result<()> {
    runs.set(runs.get() + 1);
    let f = sample!("f", Beta::new(2.0, 2.0)?);
    if runs.get() == panic_at {
        panic!("a bug in the model");
    }
    let _p = plate!("data", x.size()[0]);
    let _o = sample!("obs", Bernoulli::new(&f)?, obs = x);
    Ok(())
}

fn guide() -> ppl::Result<()> {
    let a = param!("a", 3.0, constraint = positive);
    let b = param!("b", 3.0, constraint = positive);
    let _f = sample!("f", Beta::new(&a, &b)?);
    Ok(())
}

/// After a caught panic: no handler is left on the stack, and a fresh SVI run works and reads
/// the params the panicked run left.
fn still_usable(x: &Tensor) {
    assert_eq!(
        poutine::runtime::stack_depth(),
        0,
        "handlers left on the stack"
    );
    let runs = Cell::new(0);
    let mut svi = Svi::new(
        || coin(x, &runs, 0),
        guide,
        Adam::new(AdamConfig::default()),
        TraceElbo::default(),
    );
    for _ in 0..5 {
        let loss = svi.step().expect("SVI after the panic");
        assert!(loss.is_finite());
    }
}

#[test]
fn a_panicking_model_leaves_inference_usable() {
    let x = flips();
    clear_param_store();
    set_rng_seed(0);

    // SVI: the panic on the third run of the model (second step).
    let runs = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut svi = Svi::new(
            || coin(&x, &runs, 3),
            guide,
            Adam::new(AdamConfig::default()),
            TraceElbo::default(),
        );
        for _ in 0..5 {
            svi.step().expect("step");
        }
    }));
    assert!(r.is_err(), "the model panicked");
    assert!(get_param("a").is_ok(), "the params survive");
    still_usable(&x);

    // Predictive with the guide.
    let runs = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut p = ppl::infer::Predictive::with_guide(|| coin(&x, &runs, 2), guide, 4);
        let _ = p.run();
    }));
    assert!(r.is_err());
    still_usable(&x);

    // Importance.
    let runs = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = Importance::new(|| coin(&x, &runs, 2), 10).run();
    }));
    assert!(r.is_err());
    still_usable(&x);

    // MCMC, one chain on this thread.
    let runs = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = Mcmc::new(Nuts::new())
            .num_samples(5)
            .warmup_steps(5)
            .run(|| coin(&x, &runs, 8));
    }));
    assert!(r.is_err());
    still_usable(&x);

    // MCMC, chains on their own threads: the chain's panic is an error here, not a panic.
    let err = Mcmc::new(Nuts::new())
        .num_samples(5)
        .warmup_steps(5)
        .num_chains(2)
        .run_parallel(|c| {
            let x = flips();
            let runs = Cell::new(0);
            move || coin(&x, &runs, if c == 1 { 8 } else { 0 })
        })
        .expect_err("chain 1 panicked");
    assert!(err.to_string().contains("chain 1 panicked"), "{err}");
    still_usable(&x);
}
