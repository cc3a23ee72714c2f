//! Bayesian logistic regression with NUTS on the shared data (`data/logreg.csv`: 1000 rows, 10
//! features), compared with the true coefficients (`data/logreg_truth.csv`).
//!
//! `cargo run --release --example logistic_regression [-- --num-samples 500 --warmup 500
//! --chains 1 --device cuda --csv out/logreg.csv --jit]`
//!
//! `--jit` compiles the potential energy (`Nuts::jit_compile`).

use std::time::Instant;

use ppl::infer::mcmc::{Mcmc, Nuts};
use ppl::prelude::*;

/// w ~ N(0, I); b ~ N(0, 1); y_i ~ Bernoulli(logits = x_i · w + b).
#[model]
fn logreg(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let d = x.size()[1];
    let w = sample!(Normal::new(Tensor::zeros([d], (Kind::Float, x.device())), 1.0)?.to_event(1)?);
    let b = sample!(Normal::new(0.0, 1.0)?);
    let _data = plate!("data", x.size()[0]);
    sample!("obs", Bernoulli::from_logits(x.matmul(&w) + &b)?, obs = y);
    Ok(())
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let num_samples = ppl_examples::arg("num-samples", 500usize);
    let warmup = ppl_examples::arg("warmup", 500usize);
    let chains = ppl_examples::arg("chains", 1usize);
    let csv: String = ppl_examples::arg("csv", String::new());

    let (_, rows) = ppl_examples::read_numeric_csv("logreg.csv");
    let n = rows.len() as i64;
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|r| r[..10].iter().map(|&v| v as f32))
        .collect();
    let ys: Vec<f32> = rows.iter().map(|r| r[10] as f32).collect();
    let truth: Vec<f64> = ppl_examples::read_csv("logreg_truth.csv")
        .1
        .iter()
        .map(|r| r[1].parse().expect("a number"))
        .collect();

    let mut mcmc = Mcmc::new(Nuts::new().jit_compile(ppl_examples::jit_from_args()))
        .num_samples(num_samples)
        .warmup_steps(warmup)
        .num_chains(chains)
        .seed(0);
    let t0 = Instant::now();
    mcmc.run_parallel(|_chain| {
        let x = Tensor::from_slice(&xs).reshape([n, 10]).to_device(device);
        let y = Tensor::from_slice(&ys).to_device(device);
        move || logreg(&x, &y)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    mcmc.print_summary(0.9)?;

    let s = mcmc.get_samples()?;
    let w: Vec<f64> = Vec::try_from(
        s["w"]
            .to_kind(Kind::Double)
            .mean_dim(0, false, Kind::Double)
            .to_device(Device::Cpu),
    )
    .map_err(ppl::Error::from)?;
    let b = s["b"]
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    println!("{:>6} {:>9} {:>9}", "", "posterior", "truth");
    for (k, (m, t)) in w.iter().chain([b].iter()).zip(&truth).enumerate() {
        let name = if k < 10 {
            format!("w[{k}]")
        } else {
            "b".into()
        };
        println!("{name:>6} {m:>9.3} {t:>9.3}");
    }
    let ch = &mcmc.chains()[0];
    println!(
        "{secs:.2} s in all; chain 0: step size {:.3}, mean accept prob {:.3}, {} leapfrog steps",
        ch.step_size,
        ch.mean_accept_prob(),
        ch.warmup_grad_evals + ch.sample_grad_evals
    );
    if !csv.is_empty() {
        mcmc.write_csv(&csv)?;
        println!("samples written to {csv}");
    }
    Ok(())
}
