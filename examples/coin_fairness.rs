//! The seed's SVI tutorial: is a coin fair? Prior Beta(10, 10) on the fairness, 6 heads and
//! 4 tails, a Beta guide with positive-constrained params, Adam (lr 0.0005, betas 0.90, 0.999),
//! 2000 steps. The exact posterior is Beta(16, 14): mean 0.5333, std 0.0896.
//!
//!     cargo run --example coin_fairness [-- --device cuda --steps 2000 --jit --threads N
//!         --save-params PATH.safetensors --load-params PATH.safetensors
//!         --checkpoint PATH[.safetensors]]
//!
//! `--jit` compiles the SVI step (`Svi::jit_compile`): same model, several times faster steps,
//! different random draws (the compiled program has its own generator).

use ppl::prelude::*;

#[model]
fn model(data: &Tensor) -> ppl::Result<()> {
    let opts = (data.kind(), data.device());
    let alpha0 = Tensor::full([], 10.0, opts);
    let beta0 = Tensor::full([], 10.0, opts);
    let latent_fairness = sample!(Beta::new(&alpha0, &beta0)?);
    let _data = plate!("data", data.size()[0]);
    sample!("obs", Bernoulli::new(&latent_fairness)?, obs = data);
    Ok(())
}

#[guide]
fn guide(data: &Tensor) -> ppl::Result<()> {
    let opts = (data.kind(), data.device());
    let alpha_q = param!(Tensor::full([], 15.0, opts), constraint = positive);
    let beta_q = param!(Tensor::full([], 15.0, opts), constraint = positive);
    let _latent_fairness = sample!(Beta::new(&alpha_q, &beta_q)?);
    Ok(())
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let steps: usize = ppl_examples::arg("steps", 2000);
    // torch's intra-op threads: 0 lets SVI pick by the work (one thread for this small model).
    let threads: usize = ppl_examples::arg("threads", 0);
    // A param store as safetensors to start from (`--load-params`, e.g. written by Pyro through
    // scripts/pyro_param_store.py) and to write at the end (`--save-params`).
    let load: String = ppl_examples::arg("load-params", String::new());
    let save: String = ppl_examples::arg("save-params", String::new());
    // A checkpoint (params, Adam's state, the random streams) written at the end; safetensors
    // when the path ends in `.safetensors`, a libtorch archive otherwise.
    let checkpoint: String = ppl_examples::arg("checkpoint", String::new());
    set_rng_seed(0);
    clear_param_store();
    if !load.is_empty() {
        with_param_store(|ps| ps.load_safetensors(&load, None))?;
        println!(
            "loaded {load}: alpha_q {:.6}  beta_q {:.6}",
            get_param("alpha_q")?.double_value(&[]),
            get_param("beta_q")?.double_value(&[])
        );
    }
    let data = Tensor::from_slice(&[1.0f32, 1., 1., 1., 1., 1., 0., 0., 0., 0.]).to_device(device);
    let adam = Adam::new(AdamConfig {
        lr: 0.0005,
        betas: (0.90, 0.999),
        ..Default::default()
    });
    let svi = Svi::new(|| model(&data), || guide(&data), adam, TraceElbo::default());
    let svi = if threads > 0 {
        svi.num_threads(Some(threads))
    } else {
        svi
    };
    let mut svi = svi.jit_compile(ppl_examples::jit_from_args());
    let start = std::time::Instant::now();
    for step in 0..steps {
        let loss = svi.step()?;
        if step % 500 == 0 {
            println!("step {step:>5}  loss {loss:>8.4}");
        }
    }
    let elapsed = start.elapsed();
    let a = get_param("alpha_q")?.double_value(&[]);
    let b = get_param("beta_q")?.double_value(&[]);
    let mean = a / (a + b);
    let std = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
    println!("alpha_q {a:.3}  beta_q {b:.3}");
    if !save.is_empty() {
        with_param_store(|ps| ps.save_safetensors(&save))?;
        println!("wrote {save}: alpha_q {a:.6}  beta_q {b:.6}");
    }
    if !checkpoint.is_empty() {
        ppl::optim::save_checkpoint(&checkpoint, &svi.optim)?;
        println!("wrote checkpoint {checkpoint}");
    }
    println!("inferred fairness {mean:.4} ± {std:.4}   (exact posterior 0.5333 ± 0.0896)");
    println!(
        "{steps} steps in {:.3} s ({:.3} ms/step, debug or release as built)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / steps as f64
    );
    Ok(())
}
