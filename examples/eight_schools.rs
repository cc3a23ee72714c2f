//! Eight schools (Rubin 1981), non-centered, with NUTS: 4 chains of 1000 warmup + 1000 samples,
//! run in parallel on OS threads, then Pyro's summary table.
//!
//! `cargo run --release --example eight_schools [-- --num-samples 1000 --warmup 1000 --chains 4
//! --device cuda --npz out/eight_schools.npz --jit]`
//!
//! `--jit` compiles the potential energy (`Nuts::jit_compile`).
//!
//! `--distributed` spreads the chains over the ranks that torchrun starts
//! (`ppl::distributed::run_chains`): with `--chains 8` and two ranks, each runs 4 on its own
//! threads; rank 0 prints the summary of all 8 (chain `c` draws what it would in one process).
//!
//!     torchrun --nproc-per-node 2 --no-python \
//!         target/x86_64-unknown-linux-gnu/release/examples/eight_schools --distributed --chains 8

use std::time::Instant;

use ppl::infer::mcmc::{Mcmc, Nuts};
use ppl::prelude::*;

use ppl_examples::eight_schools::{hierarchical as eight_schools, load};

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let num_samples = ppl_examples::arg("num-samples", 1000usize);
    let warmup = ppl_examples::arg("warmup", 1000usize);
    let chains = ppl_examples::arg("chains", 4usize);
    let npz: String = ppl_examples::arg("npz", String::new());
    let (y, sigma) = load();
    let y: Vec<f32> = y.iter().map(|v| *v as f32).collect();
    let sigma: Vec<f32> = sigma.iter().map(|v| *v as f32).collect();

    let mut mcmc = Mcmc::new(Nuts::new().jit_compile(ppl_examples::jit_from_args()))
        .num_samples(num_samples)
        .warmup_steps(warmup)
        .num_chains(chains)
        .seed(0);
    let t0 = Instant::now();
    // Tensors stay on their thread: each chain builds its own copies of the data.
    let make = |_chain| {
        let y = Tensor::from_slice(&y).to_device(device);
        let sigma = Tensor::from_slice(&sigma).to_device(device);
        move || eight_schools(&sigma, &y)
    };
    if std::env::args().any(|a| a == "--distributed") {
        let pg = ppl::distributed::init()?;
        ppl::distributed::run_chains(&pg, &mut mcmc, make)?;
        let done = pg.barrier();
        if !pg.is_main() {
            return done;
        }
        println!(
            "{chains} chains over {} ranks ({} on each thread pool)",
            pg.world_size(),
            pg.shard(chains).len()
        );
    } else {
        mcmc.run_parallel(make)?;
    }
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
