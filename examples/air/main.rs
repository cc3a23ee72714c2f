//! Attend-Infer-Repeat on multi-digit images (Pyro's `examples/air`).
//!
//! ```text
//! cargo run --release --example air -- --steps 12000 --eval-every 250 --baseline-lr 0.1
//! ```
//!
//! Flags: `--steps N` (default 1000), `--batch-size 64`, `--lr 1e-4`, `--baseline-lr 1e-3`,
//! `--decoder-lr` (default: the lr),
//! `--eval-every N` (default 100), `--out-dir out/air`, `--checkpoint PATH` (default
//! `OUT_DIR/checkpoint.pt`; written at every evaluation and at the end), `--resume` (load it
//! first; the checkpoint's learning rates are kept unless `--lr` / `--baseline-lr` /
//! `--decoder-lr` are given),
//! `--device cpu|cuda`, `--data PATH` (an AIRD file; default `examples/air/data/multi_digits.bin`),
//! `--mnist-dir DIR` (compose canvases from MNIST IDX files instead), `--threads N`, `--seed N`,
//! `--eval-size N` (held-out images, default 1000), `--z-pres-prior K`.

use std::io::IsTerminal;
use std::time::Instant;

use ppl::optim::{load_checkpoint_to, save_checkpoint};
use ppl::tch;
use ppl_examples::air::{data, train, Air, AirConfig};
use ppl_examples::{arg, device_from_args};

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == format!("--{name}"))
}

fn main() -> ppl::Result<()> {
    let device = device_from_args();
    let steps: usize = arg("steps", 1000);
    let batch_size: i64 = arg("batch-size", 64);
    let lr: f64 = arg("lr", 1e-4);
    let baseline_lr: f64 = arg("baseline-lr", 1e-3);
    let eval_every: usize = arg("eval-every", 100);
    let eval_size: i64 = arg("eval-size", 1000);
    let threads: i32 = arg("threads", 0);
    let seed: u64 = arg("seed", 0);
    let out_dir = std::path::PathBuf::from(arg("out-dir", "out/air".to_string()));
    let checkpoint = std::path::PathBuf::from(arg(
        "checkpoint",
        out_dir.join("checkpoint.pt").display().to_string(),
    ));
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    ppl::set_rng_seed(seed);

    let mnist_dir: String = arg("mnist-dir", String::new());
    let all = if mnist_dir.is_empty() {
        let path: String = arg("data", data::default_path().display().to_string());
        data::load_multi_digits(&path).expect("read the data file")
    } else {
        data::load_mnist_multi(&mnist_dir, 60_000, 42).expect("read MNIST")
    };
    // The last `eval_size` images are held out for the count accuracy.
    let n_train = all.len() - eval_size;
    let train_set = all.slice(0, n_train).to_device(device);
    let eval_set = all.slice(n_train, eval_size).to_device(device);
    println!(
        "{} training images, {} held out; always answering the most common count scores {:.3}",
        n_train,
        eval_size,
        train::trivial_accuracy(&eval_set)
    );

    let cfg = AirConfig {
        z_pres_prior: arg("z-pres-prior", AirConfig::default().z_pres_prior),
        ..AirConfig::default()
    };
    let air = Air::new(cfg, device);
    let decoder_lr: f64 = arg("decoder-lr", lr);
    let mut adam = train::optimizer(lr, baseline_lr, decoder_lr);
    let mut elbo = train::loss();
    let mut first = 1;
    if flag("resume") && checkpoint.exists() {
        // Register the networks' params so that the loaded values are copied into them.
        ppl::module("decode", &air.decode_vs)?;
        ppl::module("guide", &air.guide_vs)?;
        ppl::module("baseline", &air.baseline_vs)?;
        load_checkpoint_to(&checkpoint, &mut adam, Some(device))?;
        ppl::module("decode", &air.decode_vs)?;
        ppl::module("guide", &air.guide_vs)?;
        ppl::module("baseline", &air.baseline_vs)?;
        // The checkpoint restores each param's learning rate; `--lr` / `--baseline-lr` given
        // on the command line replace them.
        if flag("lr") || flag("baseline-lr") || flag("decoder-lr") {
            use ppl::optim::LrScheduled;
            adam.for_each_lr(&mut |name, l| {
                *l = train::lr_for(name, lr, baseline_lr, decoder_lr);
            });
        }
        let step_file = checkpoint.with_extension("step");
        first = std::fs::read_to_string(step_file)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0)
            + 1;
        println!("resumed from {} at step {first}", checkpoint.display());
    }

    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(steps as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_position(first as u64 - 1);
    let start = Instant::now();
    let n = train_set.len() as f64;
    let mut recent = Vec::new();
    let mut train_secs = 0.0;
    for i in first..=steps {
        let t0 = Instant::now();
        let loss = train::step(&air, &train_set.images, batch_size, &mut elbo, &mut adam)?;
        train_secs += t0.elapsed().as_secs_f64();
        recent.push(loss / n);
        bar.set_position(i as u64);
        bar.set_message(format!("elbo {:.1}", -loss / n));
        if (eval_every > 0 && i % eval_every == 0) || i == steps {
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            recent.clear();
            let (acc, confusion) = train::count_accuracy(&air, &eval_set, 250)?;
            let secs = start.elapsed().as_secs_f64();
            bar.suspend(|| {
                println!(
                    "step {i:6}  elbo/image {:9.2}  count accuracy {acc:.3}  {:.3} s/step (training)  \
                     elapsed {secs:.0} s  confusion {confusion:?}",
                    -mean,
                    train_secs / (i + 1 - first) as f64,
                )
            });
            train::visualize(&air, &eval_set, out_dir.join(format!("step_{i:06}.png")))?;
            save_checkpoint(&checkpoint, &adam)?;
            std::fs::write(checkpoint.with_extension("step"), i.to_string())
                .expect("write the step file");
        }
    }
    bar.finish_and_clear();
    Ok(())
}
