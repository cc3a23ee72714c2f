//! ppl's side of the GPU anchors in `../shared/bench/gpu/` (issue 18), runnable on any device:
//!
//! - `covtype_hmc`: logistic regression on covtype-sized synthetic data (N = 581 012, D = 55
//!   with the intercept, float32), HMC with 10 fixed leapfrog steps of size 0.0015, no
//!   adaptation, 20 warmup + 50 draws; ms per leapfrog step. `covtype_nuts`: the same with NUTS
//!   (adapted), ms per leapfrog and leapfrog steps per draw.
//! - `big_linreg_svi`: Bayesian linear regression, N = 10⁶, D = 100, AutoNormal, Trace ELBO,
//!   Adam 0.01, full-batch plate; 20 warm-up steps, then 200 timed; ms per step.
//!
//! The data are the peers' (numpy's generators with their seeds), written once as `.npy` by
//! `scripts/make-gpu-bench-data.py DIR` (`covtype_X.npy`, `covtype_y.npy`, `linreg_X.npy`,
//! `linreg_y.npy`), so every system reads the same numbers.
//!
//!     cargo run --release --example gpu_bench -- --workload covtype_hmc --data DIR \
//!         [--device cuda] [--jit] [--warmup 20 --samples 50] [--steps 200]
//!
//! Prints one JSON line with the peer scripts' fields. On a GPU, times include a device
//! synchronization at the end.

use std::path::PathBuf;
use std::time::Instant;

use ppl::infer::mcmc::{Hmc, Mcmc, Nuts};
use ppl::infer::AutoNormal;
use ppl::prelude::*;

fn load(dir: &str, name: &str, device: Device) -> Tensor {
    let path = PathBuf::from(dir).join(format!("{name}.npy"));
    Tensor::read_npy(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (write the data with scripts/make-gpu-bench-data.py)",
                path.display()
            )
        })
        .to_kind(Kind::Float)
        .to_device(device)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn logreg(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let d = x.size()[1];
    let w = sample(
        "w",
        Normal::new(Tensor::zeros([d], (Kind::Float, x.device())), 1.0)?.to_event(1)?,
        None,
    )?;
    let _ = sample(
        "y",
        Bernoulli::from_logits(x.matmul(&w))?.to_event(1)?,
        Some(y.shallow_clone()),
    )?;
    Ok(())
}

fn linreg(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let d = x.size()[1];
    let opts = (Kind::Float, x.device());
    let w = sample(
        "w",
        Normal::new(Tensor::zeros([d], opts), 1.0)?.to_event(1)?,
        None,
    )?;
    let b = sample("b", Normal::new(Tensor::zeros([], opts), 1.0)?, None)?;
    let s = sample("sigma", HalfNormal::new(Tensor::ones([], opts))?, None)?;
    let _p = Plate::new("data", x.size()[0]).device(x.device()).enter()?;
    let _ = sample(
        "y",
        Normal::new(x.matmul(&w) + &b, &s)?,
        Some(y.shallow_clone()),
    )?;
    Ok(())
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let workload: String = ppl_examples::arg("workload", "covtype_hmc".to_string());
    let dir: String = ppl_examples::arg("data", "out/gpu-bench".to_string());
    let jit = ppl_examples::jit_from_args();
    let dev_name = match device {
        Device::Cuda(_) => "cuda",
        _ => "cpu",
    };
    match workload.as_str() {
        "covtype_hmc" | "covtype_nuts" => {
            let warmup: usize = ppl_examples::arg("warmup", 20);
            let samples: usize = ppl_examples::arg("samples", 50);
            let (x, y) = (
                load(&dir, "covtype_X", device),
                load(&dir, "covtype_y", device),
            );
            let nuts = workload == "covtype_nuts";
            let kernel: ppl::infer::mcmc::Kernel = if nuts {
                Nuts::new().jit_compile(jit).into()
            } else {
                Hmc::new()
                    .num_steps(10)
                    .step_size(0.0015)
                    .adapt_step_size(false)
                    .adapt_mass_matrix(false)
                    .jit_compile(jit)
                    .into()
            };
            let mut mcmc = Mcmc::new(kernel)
                .num_samples(samples)
                .warmup_steps(warmup)
                .seed(0)
                .progress_bar(false)
                // Large tensors: let libtorch use its threads on a CPU.
                .num_threads(None);
            let t = Instant::now();
            mcmc.run(|| logreg(&x, &y))?;
            sync(device);
            let total = t.elapsed().as_secs_f64();
            let ch = &mcmc.chains()[0];
            let leapfrogs = ch.warmup_grad_evals + ch.sample_grad_evals;
            println!(
                "{{\"system\": \"ppl\", \"workload\": \"{workload}\", \"device\": \"{dev_name}\", \
                 \"jit\": {jit}, \"N\": {}, \"D\": {}, \"leapfrogs\": {leapfrogs}, \
                 \"total_s\": {total:.4}, \"ms_per_leapfrog\": {:.4}, \
                 \"leapfrog_per_draw\": {:.2}}}",
                x.size()[0],
                x.size()[1],
                1e3 * total / leapfrogs.max(1) as f64,
                leapfrogs as f64 / (warmup + samples).max(1) as f64
            );
        }
        "big_linreg_svi" => {
            let warm: usize = ppl_examples::arg("warm", 20);
            let steps: usize = ppl_examples::arg("steps", 200);
            let (x, y) = (
                load(&dir, "linreg_X", device),
                load(&dir, "linreg_y", device),
            );
            clear_param_store();
            set_rng_seed(0);
            let guide = AutoNormal::new(|| linreg(&x, &y));
            let adam = Adam::new(AdamConfig {
                lr: 0.01,
                ..Default::default()
            });
            let mut svi = Svi::new(
                || linreg(&x, &y),
                || guide.call(),
                adam,
                TraceElbo::default(),
            )
            .num_threads(None)
            .jit_compile(jit);
            svi.run(warm)?;
            sync(device);
            let t = Instant::now();
            let losses = svi.run(steps)?;
            sync(device);
            let ms = 1e3 * t.elapsed().as_secs_f64() / steps.max(1) as f64;
            println!(
                "{{\"system\": \"ppl\", \"workload\": \"big_linreg_svi\", \"device\": \
                 \"{dev_name}\", \"jit\": {jit}, \"N\": {}, \"D\": {}, \"ms_per_step\": {ms:.4}, \
                 \"final_loss\": {:.2}}}",
                x.size()[0],
                x.size()[1],
                losses.last().copied().unwrap_or(f64::NAN)
            );
        }
        other => {
            return Err(ppl::Error::Invalid(format!(
                "--workload {other}: expected covtype_hmc, covtype_nuts or big_linreg_svi"
            )))
        }
    }
    Ok(())
}
