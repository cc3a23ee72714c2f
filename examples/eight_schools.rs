//! Eight schools (Rubin 1981), non-centered, with NUTS: 4 chains of 1000 warmup + 1000 samples,
//! run in parallel on OS threads, then Pyro's summary table.
//!
//! `cargo run --release --example eight_schools [-- --num-samples 1000 --warmup 1000 --chains 4
//! --device cuda --npz out/eight_schools.npz --jit]`
//!
//! `--jit` compiles the potential energy (`Nuts::jit_compile`).

use std::time::Instant;

use ppl::infer::mcmc::{Mcmc, Nuts};
use ppl::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/eight_schools.csv");

/// mu ~ N(0, 5); tau ~ HalfCauchy(5); theta_tilde_j ~ N(0, 1); y_j ~ N(mu + tau theta_tilde_j,
/// sigma_j).
#[model]
fn eight_schools(sigma: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 5.0)?);
    let tau = sample!(HalfCauchy::new(5.0)?);
    let _schools = plate!("J", sigma.size()[0]);
    let theta_tilde = sample!(Normal::new(0.0, 1.0)?);
    let theta = &mu + &tau * &theta_tilde;
    sample!("obs", Normal::new(&theta, sigma)?, obs = y);
    Ok(())
}

/// `(y, sigma)` from the CSV (`school,y,sigma`).
fn load() -> (Vec<f32>, Vec<f32>) {
    let text = std::fs::read_to_string(DATA).expect("data/eight_schools.csv");
    let mut y = Vec::new();
    let mut sigma = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse().expect("a number"))
            .collect();
        y.push(f[1]);
        sigma.push(f[2]);
    }
    (y, sigma)
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let num_samples = ppl_examples::arg("num-samples", 1000usize);
    let warmup = ppl_examples::arg("warmup", 1000usize);
    let chains = ppl_examples::arg("chains", 4usize);
    let npz: String = ppl_examples::arg("npz", String::new());
    let (y, sigma) = load();

    let mut mcmc = Mcmc::new(Nuts::new().jit_compile(ppl_examples::jit_from_args()))
        .num_samples(num_samples)
        .warmup_steps(warmup)
        .num_chains(chains)
        .seed(0);
    let t0 = Instant::now();
    // Tensors stay on their thread: each chain builds its own copies of the data.
    mcmc.run_parallel(|_chain| {
        let y = Tensor::from_slice(&y).to_device(device);
        let sigma = Tensor::from_slice(&sigma).to_device(device);
        move || eight_schools(&sigma, &y)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    mcmc.print_summary(0.9)?;
    for (c, ch) in mcmc.chains().iter().enumerate() {
        println!(
            "chain {c}: step size {:.3}, mean accept prob {:.3}, {} leapfrog steps, \
             warmup {:.2} s, sampling {:.2} s",
            ch.step_size,
            ch.mean_accept_prob(),
            ch.warmup_grad_evals + ch.sample_grad_evals,
            ch.warmup_seconds,
            ch.sample_seconds
        );
    }
    println!("{chains} chains in parallel: {secs:.2} s in all");
    if !npz.is_empty() {
        mcmc.write_npz(&npz)?;
        println!("samples written to {npz}");
    }
    Ok(())
}
