//! The K=3, N=1000 mixture of `data/gmm.csv` (true weights 0.2/0.5/0.3, locs -4/0/5, scale 1;
//! `data/gmm_truth.csv`) with its assignments enumerated: MAP by `AutoDelta` + `TraceEnumElbo`,
//! then NUTS.
//!
//!     cargo run --release --example gmm_large [-- --steps 500 --samples 500 --warmup 500 --jit]

use std::time::Instant;

use ppl::infer::autoguide::init_to_value;
use ppl::prelude::*;
use ppl_examples::gmm::{gmm, values};

const K: i64 = 3;

fn main() -> ppl::Result<()> {
    let steps: usize = ppl_examples::arg("steps", 500);
    let samples: usize = ppl_examples::arg("samples", 500);
    let warmup: usize = ppl_examples::arg("warmup", 500);
    let jit = ppl_examples::jit_from_args();
    let (_, rows) = ppl_examples::read_numeric_csv("gmm.csv");
    let ys: Vec<f32> = rows.iter().map(|r| r[0] as f32).collect();
    let y = Tensor::from_slice(&ys);
    let (_, truth) = ppl_examples::read_csv("gmm_truth.csv");
    let truth: Vec<String> = truth.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    println!("truth: {}", truth.join(", "));

    clear_param_store();
    set_rng_seed(0);
    // Equal weights, unit scale, locs spread over the data: the benchmark's (and peers') start.
    let init = [
        (
            "weights",
            Tensor::full([K], 1.0 / K as f64, (Kind::Float, Device::Cpu)),
        ),
        ("scale", Tensor::from(1.0f32)),
        ("locs", Tensor::from_slice(&[-2.0f32, 0.0, 2.0])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let guide = AutoDelta::new(|| gmm(&y, K)).init_loc_fn(init_to_value(init));
    let adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    let elbo = TraceEnumElbo::default().max_plate_nesting(1);
    let mut svi = Svi::new(|| gmm(&y, K), || guide.call(), adam, elbo).jit_compile(jit);
    let t0 = Instant::now();
    for step in 0..steps {
        let loss = svi.step()?;
        if step % 100 == 0 || step + 1 == steps {
            println!("step {step:>4}  loss {loss:>10.3}");
        }
    }
    let map = guide.median()?;
    println!(
        "MAP (AutoDelta + TraceEnumElbo, {steps} steps in {:.2} s): weights {:.3?}, locs {:.3?}, scale {:.3}",
        t0.elapsed().as_secs_f64(),
        values(&map["weights"]),
        values(&map["locs"]),
        map["scale"].double_value(&[])
    );

    set_rng_seed(0);
    let t0 = Instant::now();
    let mut mcmc = Mcmc::new(
        Nuts::new()
            .jit_compile(jit)
            .init_strategy(ppl::infer::mcmc::InitStrategy::Median { num_samples: 15 }),
    )
    .num_samples(samples)
    .warmup_steps(warmup)
    .seed(0);
    mcmc.run(|| gmm(&y, K))?;
    let post = mcmc.get_samples()?;
    let mean = |n: &str| {
        values(
            &post[n]
                .to_kind(Kind::Double)
                .mean_dim(0, false, Kind::Double),
        )
    };
    println!(
        "NUTS ({warmup} + {samples}, assignments summed out, {:.1} s): weights {:.3?}, locs {:.3?}, scale {:.3?}, {} divergences",
        t0.elapsed().as_secs_f64(),
        mean("weights"),
        mean("locs"),
        mean("scale"),
        mcmc.num_divergences()
    );
    Ok(())
}
