//! Training helpers shared by the binary and the smoke test.

use std::path::Path;

use ppl::infer::TraceGraphElbo;
use ppl::optim::{Adam, AdamConfig};
use ppl::tch::{Kind, Tensor};

use super::data::MultiDigits;
use super::image::{draw_box, Rgb, BOX_COLORS};
use super::nets::Air;

/// The learning rate of the param `name`: `baseline_lr` for the baseline networks (names
/// containing "baseline"), `decoder_lr` for the decoder (names starting with "decode"; Pyro's AIR
/// uses `lr`), `lr` for the rest.
pub fn lr_for(name: &str, lr: f64, baseline_lr: f64, decoder_lr: f64) -> f64 {
    if name.contains("baseline") {
        baseline_lr
    } else if name.starts_with("decode") {
        decoder_lr
    } else {
        lr
    }
}

/// Adam with Pyro's AIR learning rates, per param by [`lr_for`].
pub fn optimizer(lr: f64, baseline_lr: f64, decoder_lr: f64) -> Adam {
    Adam::per_param(move |name| AdamConfig {
        lr: lr_for(name, lr, baseline_lr, decoder_lr),
        ..Default::default()
    })
}

/// The loss of the example.
pub fn loss() -> TraceGraphElbo {
    TraceGraphElbo::default()
}

/// One SVI step on a random batch; returns the loss (−ELBO estimate, summed over the data set as
/// scaled by the subsampling plate).
pub fn step(
    air: &Air,
    data: &Tensor,
    batch_size: i64,
    elbo: &mut TraceGraphElbo,
    adam: &mut Adam,
) -> ppl::Result<f64> {
    ppl::infer::svi_step(
        elbo,
        &mut || air.model(data, Some(batch_size)),
        &mut || air.guide(data, Some(batch_size)),
        adam,
    )
}

/// Count accuracy of the guide on `set` (in batches of `batch`), with the 3×4 confusion matrix
/// (true 0–2 × inferred 0–3).
pub fn count_accuracy(
    air: &Air,
    set: &MultiDigits,
    batch: i64,
) -> ppl::Result<(f64, [[u64; 4]; 3])> {
    let _ng = ppl::tch::no_grad_guard();
    let mut confusion = [[0u64; 4]; 3];
    let n = set.len();
    let mut start = 0;
    while start < n {
        let k = batch.min(n - start);
        let part = set.slice(start, k);
        let z = air.guide(&part.images, None)?;
        let inferred: Vec<f32> = Vec::try_from(z.counts().to_device(ppl::tch::Device::Cpu))?;
        let truth: Vec<f32> = Vec::try_from(part.counts.to_device(ppl::tch::Device::Cpu))?;
        for (t, i) in truth.iter().zip(&inferred) {
            confusion[(*t as usize).min(2)][(*i as usize).min(3)] += 1;
        }
        start += k;
    }
    let correct: u64 = (0..3).map(|i| confusion[i][i]).sum();
    Ok((correct as f64 / n as f64, confusion))
}

/// Accuracy of always answering the most common count of `set`.
pub fn trivial_accuracy(set: &MultiDigits) -> f64 {
    let c = set.counts.to_kind(Kind::Int64).bincount(None::<Tensor>, 3);
    c.max().double_value(&[]) / set.len() as f64
}

/// Writes a PNG: for each image of `set` (up to 8), the input with the inferred boxes above its
/// reconstruction.
pub fn visualize(air: &Air, set: &MultiDigits, path: impl AsRef<Path>) -> ppl::Result<()> {
    let _ng = ppl::tch::no_grad_guard();
    let n = set.len().min(8);
    let part = set.slice(0, n);
    let z = air.guide(&part.images, None)?;
    let recon = air.reconstruct(&z);
    let s = air.cfg.x_size;
    let pad = 2;
    let mut img = Rgb::new(
        ((s + pad) * n + pad) as usize,
        ((s + pad) * 2 + pad) as usize,
    );
    for i in 0..n {
        let x0 = pad + i * (s + pad);
        img.blit_grey(&part.images.get(i), x0, pad);
        img.blit_grey(&recon.get(i), x0, 2 * pad + s);
        for t in 0..z.z_pres.len() {
            if z.z_pres[t].double_value(&[i, 0]) > 0.5 {
                let w: Vec<f32> =
                    Vec::try_from(z.z_where[t].get(i).to_device(ppl::tch::Device::Cpu))?;
                let c = BOX_COLORS[t % BOX_COLORS.len()];
                draw_box(&mut img, [w[0], w[1], w[2]], s, x0, pad, c);
                draw_box(&mut img, [w[0], w[1], w[2]], s, x0, 2 * pad + s, c);
            }
        }
    }
    img.save_png(path.as_ref()).map_err(|e| ppl::Error::Io {
        path: path.as_ref().display().to_string(),
        source: e,
    })
}
