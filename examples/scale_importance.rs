//! The seed's "scale" model conditioned on a measurement of 9.5 with a guess of 8.5: the
//! posterior mean of the weight by importance sampling from the prior, one run per sample and
//! vectorized (all samples at once in an outer plate). The exact posterior is Normal(9.14, 0.6).
//!
//!     cargo run --example scale_importance [-- --num-samples 2000]

use ppl::infer::{EmpiricalMarginal, Importance};
use ppl::prelude::*;

#[model]
fn scale(guess: f64) -> ppl::Result<Tensor> {
    let weight = sample!(Normal::new(guess, 1.0)?);
    let measurement = sample!(Normal::new(&weight, 0.75)?);
    let _ = measurement;
    Ok(weight)
}

fn main() -> ppl::Result<()> {
    let num_samples: usize = ppl_examples::arg("num-samples", 2000);
    let (guess, measurement) = (8.5, 9.5);
    set_rng_seed(0);
    let data = poutine::data([("measurement", Tensor::from(measurement as f32))]);
    let conditioned = || poutine::condition(data.clone(), || scale(guess));

    // Exact: precision 1 + 1/0.75^2; mean (0.75^2 guess + measurement) / (1 + 0.75^2).
    let s2: f64 = 0.75 * 0.75;
    let exact_mean = (s2 * guess + measurement) / (1.0 + s2);
    let exact_sd = (s2 / (1.0 + s2)).sqrt();

    let post = Importance::new(conditioned, num_samples).run()?;
    let weight = EmpiricalMarginal::from_site(&post, "weight")?;
    println!(
        "one run per sample: {num_samples} samples, ESS {:.0}, posterior mean {:.3}, sd {:.3}, \
         log-evidence {:.3}",
        post.ess(),
        weight.mean()?.double_value(&[]),
        weight.variance()?.sqrt().double_value(&[]),
        post.log_evidence()
    );

    let n_vec = 50 * num_samples;
    let post = Importance::new(conditioned, n_vec).run_vectorized(0)?;
    let weight = EmpiricalMarginal::from_return(&post)?;
    println!(
        "vectorized:         {n_vec} samples, ESS {:.0}, posterior mean {:.3}, sd {:.3}, \
         log-evidence {:.3}",
        post.ess(),
        weight.mean()?.double_value(&[]),
        weight.variance()?.sqrt().double_value(&[]),
        post.log_evidence()
    );
    // log p(9.5) = log N(9.5; guess, sqrt(1 + 0.75^2)).
    let v = 1.0 + s2;
    let exact_log_evidence = -0.5 * (measurement - guess) * (measurement - guess) / v
        - 0.5 * (2.0 * std::f64::consts::PI * v).ln();
    println!(
        "exact:              posterior Normal({exact_mean:.3}, {exact_sd:.3}), \
         log-evidence {exact_log_evidence:.3}"
    );
    Ok(())
}
