//! Pyro's VAE tutorial: a variational autoencoder on handwritten digits, trained by SVI with the
//! minibatch passed to every step (`svi.step_with(&batch)`, Pyro's `svi.step(x)`).
//!
//!     cargo run --release --example vae -- [--epochs 30] [--z-dim 2] [--hidden 200]
//!         [--batch 128] [--lr 0.001] [--threads N] [--out vae.png] [--mnist-dir DIR] [--jit]
//!         [--device cuda]
//!
//! Data: `data/digits.csv` (scikit-learn's 8×8 digits, binarized; the first 1500 images train,
//! the other 297 test), or with `--mnist-dir` the MNIST IDX files in DIR
//! (`train-images-idx3-ubyte` and `t10k-images-idx3-ubyte`, optionally `.gz`), binarized at 0.5.
//! Prints the train and test ELBO per image every epoch and writes a PNG: test images, their
//! reconstructions, and images decoded from codes drawn from the prior.

use std::io::Read;

use ppl::prelude::*;
use ppl_examples::vae::{load_digits, Vae};
use rand::seq::SliceRandom;
use rand::SeedableRng;

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let epochs: usize = ppl_examples::arg("epochs", 30);
    let z_dim: i64 = ppl_examples::arg("z-dim", 2);
    let hidden: i64 = ppl_examples::arg("hidden", 200);
    let batch: i64 = ppl_examples::arg("batch", 128);
    let lr: f64 = ppl_examples::arg("lr", 1e-3);
    // torch's intra-op threads: 0 lets SVI pick by the work (one thread for these batches).
    let threads: usize = ppl_examples::arg("threads", 0);
    let out: String = ppl_examples::arg("out", "vae.png".to_string());
    let mnist = Some(ppl_examples::arg("mnist-dir", String::new())).filter(|d| !d.is_empty());
    set_rng_seed(0);
    clear_param_store();

    let (train, test, side) = match &mnist {
        Some(dir) => (
            read_idx(dir, "train-images-idx3-ubyte")?,
            read_idx(dir, "t10k-images-idx3-ubyte")?,
            28,
        ),
        None => {
            let (x, _) = load_digits();
            let n = x.size()[0];
            (x.narrow(0, 0, 1500), x.narrow(0, 1500, n - 1500), 8)
        }
    };
    let (train, test) = (train.to_device(device), test.to_device(device));
    let pixels = train.size()[1];
    let vae = Vae::new(pixels, z_dim, hidden, device);
    let adam = Adam::new(AdamConfig {
        lr,
        ..Default::default()
    });
    let mut svi = Svi::new(
        |x: &Tensor| vae.model(x),
        |x: &Tensor| vae.guide(x),
        adam,
        TraceElbo::default(),
    )
    .num_threads((threads > 0).then_some(threads))
    .jit_compile(ppl_examples::jit_from_args());

    let n_train = train.size()[0];
    let n_test = test.size()[0] as f64;
    let mut order: Vec<i64> = (0..n_train).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let start = std::time::Instant::now();
    for epoch in 0..epochs {
        order.shuffle(&mut rng);
        let shuffled = train.index_select(0, &Tensor::from_slice(&order).to_device(device));
        // Batches of `batch`; the last, smaller one is dropped (a compiled step would compile
        // once more for its shape).
        let mut total = 0.0;
        let mut seen = 0;
        for b in 0..n_train / batch {
            let x = shuffled.narrow(0, b * batch, batch);
            total += svi.step_with(&x)?;
            seen += batch;
        }
        let test_loss = svi.evaluate_loss_with(&test)?;
        println!(
            "epoch {epoch:>3}  train ELBO per image {:>8.3}  test ELBO per image {:>8.3}",
            -total / seen as f64,
            -test_loss / n_test
        );
    }
    println!(
        "{epochs} epochs in {:.2} s{}",
        start.elapsed().as_secs_f64(),
        if svi.is_compiled() { " (compiled)" } else { "" }
    );

    // Originals, reconstructions, and decodings of prior draws.
    let shown = 10.min(test.size()[0]);
    let originals = test.narrow(0, 0, shown);
    let recon = vae.reconstruct(&originals);
    let codes = Tensor::randn([shown, z_dim], (Kind::Float, device));
    let samples = tch::no_grad(|| vae.decoder.probs(&codes));
    let rows = [originals, recon, samples];
    write_png(&out, &rows, side)?;
    println!("wrote {out} (rows: test images, reconstructions, samples from the prior)");
    Ok(())
}

/// Reads an IDX image file (`NAME` or `NAME.gz` in `dir`) as `[n, rows * cols]` float32 pixels,
/// binarized at half intensity.
fn read_idx(dir: &str, name: &str) -> ppl::Result<Tensor> {
    let base = std::path::Path::new(dir).join(name);
    let gz = std::path::Path::new(dir).join(format!("{name}.gz"));
    let io = |p: &std::path::Path| {
        let path = p.display().to_string();
        move |source| Error::Io { path, source }
    };
    let bytes = if base.exists() {
        std::fs::read(&base).map_err(io(&base))?
    } else {
        let mut v = Vec::new();
        std::fs::File::open(&gz)
            .and_then(|f| flate2::read::GzDecoder::new(f).read_to_end(&mut v))
            .map_err(io(&gz))?;
        v
    };
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 16 || be(0) != 0x0803 {
        return Err(Error::Invalid(format!(
            "{} is not an IDX image file (magic 0x00000803)",
            base.display()
        )));
    }
    let (n, r, c) = (be(4) as i64, be(8) as i64, be(12) as i64);
    let px: Vec<f32> = bytes[16..]
        .iter()
        .map(|&b| if b >= 128 { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_slice(&px).reshape([n, r * c]))
}

/// Writes rows of images (`[k, side * side]` values in [0, 1]) as one grayscale PNG, each pixel
/// drawn as a 4×4 block with a 1-block border between images.
fn write_png(path: &str, rows: &[Tensor], side: i64) -> ppl::Result<()> {
    let zoom = 4usize;
    let side = side as usize;
    let cols = rows.iter().map(|r| r.size()[0] as usize).max().unwrap_or(0);
    let cell = (side + 1) * zoom;
    let (w, h) = (cols * cell + zoom, rows.len() * cell + zoom);
    let mut img = vec![64u8; w * h];
    for (ri, row) in rows.iter().enumerate() {
        let vals: Vec<f32> = Vec::try_from(
            row.to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )?;
        for ci in 0..row.size()[0] as usize {
            for p in 0..side * side {
                let v = (vals[ci * side * side + p].clamp(0.0, 1.0) * 255.0) as u8;
                let (py, px) = (p / side, p % side);
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        let y = zoom + ri * cell + py * zoom + dy;
                        let x = zoom + ci * cell + px * zoom + dx;
                        img[y * w + x] = v;
                    }
                }
            }
        }
    }
    ppl_examples::write_gray_png(path, w, h, &img)
}
