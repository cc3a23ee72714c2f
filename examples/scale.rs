//! The seed's "scale" model: a guess of an object's weight and a noisy measurement of it,
//! conditioned on a measurement of 9.5 in three ways. The posterior of the weight given guess
//! 8.5 is exactly Normal(9.14, 0.6).
//!
//!     cargo run --example scale [-- --device cuda]

use ppl::prelude::*;

#[model]
fn scale(guess: &Tensor) -> ppl::Result<Tensor> {
    let weight = sample!(Normal::new(guess, 1.0)?);
    let measurement = sample!(Normal::new(&weight, 0.75)?);
    let _ = measurement;
    Ok(weight)
}

/// Conditioning written into the model with `obs =`.
#[model]
fn scale_obs(guess: &Tensor, measurement: &Tensor) -> ppl::Result<Tensor> {
    let weight = sample!(Normal::new(guess, 1.0)?);
    let _measurement = sample!(Normal::new(&weight, 0.75)?, obs = measurement);
    Ok(weight)
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    set_rng_seed(0);
    let guess = Tensor::from(8.5f32).to_device(device);
    let measurement = Tensor::from(9.5f32).to_device(device);
    let data = poutine::data([("measurement", measurement.shallow_clone())]);

    // 1. `poutine::condition` around a call.
    let (_, mut tr1) = poutine::trace(|| poutine::condition(data.clone(), || scale(&guess)))?;
    // 2. A deferred conditioned function: a model of the same signature, conditioned each call.
    let conditioned_scale =
        poutine::ConditionMessenger::new(data.clone()).wrap(|g: &Tensor| scale(g));
    let (_, mut tr2) = poutine::trace(|| conditioned_scale(&guess))?;
    // 3. `obs =` in the model.
    let (_, mut tr3) = poutine::trace(|| scale_obs(&guess, &measurement))?;

    for (how, tr) in [
        ("condition(...)", &mut tr1),
        ("deferred conditioned fn", &mut tr2),
        ("obs =", &mut tr3),
    ] {
        let (observed, value) = {
            let m = tr.site("measurement")?;
            (m.is_observed, m.value.double_value(&[]))
        };
        let lp = tr.log_prob_sum()?.double_value(&[]);
        println!(
            "{how:<24} measurement observed: {observed}  value {value:.2}  \
             log p(weight, measurement) {lp:.4}"
        );
    }
    println!("exact posterior of the weight given measurement 9.5: Normal(9.14, 0.6)");
    Ok(())
}
