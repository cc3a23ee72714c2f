//! The seed's "scale" model fitted by SVI with a parametrized guide: `a` (unconstrained) and `b`
//! (positive-constrained) are the guide's mean and standard deviation of the weight. The exact
//! posterior given guess 8.5 and measurement 9.5 is Normal(9.14, 0.6).
//!
//!     cargo run --example scale_svi [-- --device cuda --steps 2500]

use ppl::prelude::*;

#[model]
fn scale(guess: &Tensor, measurement: &Tensor) -> ppl::Result<()> {
    let weight = sample!(Normal::new(guess, 1.0)?);
    sample!(
        "measurement",
        Normal::new(&weight, 0.75)?,
        obs = measurement
    );
    Ok(())
}

#[guide]
fn scale_parametrized_guide(guess: &Tensor, _measurement: &Tensor) -> ppl::Result<()> {
    let a = param!(guess.copy());
    let b = param!(guess.ones_like(), constraint = positive);
    let _weight = sample!(Normal::new(&a, &b)?);
    Ok(())
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let steps: usize = ppl_examples::arg("steps", 2500);
    set_rng_seed(0);
    clear_param_store();
    let guess = Tensor::from(8.5f32).to_device(device);
    let measurement = Tensor::from(9.5f32).to_device(device);
    // The seed uses SGD(lr 0.001, momentum 0.1) for 2500 steps; Adam converges as well here.
    let adam = Adam::new(AdamConfig {
        lr: 0.003,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || scale(&guess, &measurement),
        || scale_parametrized_guide(&guess, &measurement),
        adam,
        TraceElbo::default(),
    );
    let losses = svi.run(steps)?;
    let tail = &losses[losses.len().saturating_sub(100)..];
    println!(
        "mean loss over the last 100 steps: {:.4}",
        tail.iter().sum::<f64>() / tail.len() as f64
    );
    let a = get_param("a")?.double_value(&[]);
    let b = get_param("b")?.double_value(&[]);
    println!("a = {a:.3}, b = {b:.3}   (exact posterior: mean 9.14, sd 0.6)");
    Ok(())
}
