//! Density estimation with normalizing flows (Pyro's "Normalizing Flows - Introduction"
//! tutorial): a 2-D two-moons data set, fitted by maximum likelihood with a spline coupling flow
//! and with an inverse autoregressive flow.
//!
//!     cargo run --release --example flows -- [--epochs 40] [--out flows.png]
//!
//! The model is `x ~ TransformedDistribution(N(0, I), flows)` observed on each minibatch; its
//! guide is empty, so the ELBO is the data log-likelihood and SVI is maximum likelihood. Prints
//! the train and test log-likelihood per point and writes a PNG of each learned density (left:
//! spline coupling, right: IAF) on `[-2.5, 2.5]²`.

use std::rc::Rc;

use ppl::prelude::*;
use ppl::transforms::{
    AffineAutoregressive, Permute, SplineCoupling, TransformModuleRef, TransformRef,
};
use rand::{Rng, SeedableRng};

/// `n` points of two interleaved half circles with Gaussian noise of sd 0.05 (scikit-learn's
/// `make_moons`), standardized to mean 0 and sd 1 per coordinate.
fn two_moons(n: usize, rng: &mut rand::rngs::StdRng) -> Tensor {
    let mut v = Vec::with_capacity(2 * n);
    for i in 0..n {
        let t = std::f64::consts::PI * rng.random::<f64>();
        let (x, y) = if i % 2 == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        let noise = |rng: &mut rand::rngs::StdRng| {
            // Box-Muller.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            0.05 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        v.push((x + noise(rng)) as f32);
        v.push((y + noise(rng)) as f32);
    }
    let x = Tensor::from_slice(&v).reshape([n as i64, 2]);
    // The moons' means and sds over the uniform angle and the noise (0.5 and 0.25; 0.8675 and
    // 0.4969), not the sample's, so train and test share one scale.
    let mean = Tensor::from_slice(&[0.5f32, 0.25]);
    let sd = Tensor::from_slice(&[0.8675f32, 0.4969]);
    (x - mean) / sd
}

/// The flow: base N(0, I₂) pushed through `modules`, bound at the params' current values.
fn flow(modules: &[TransformModuleRef]) -> ppl::Result<TransformedDistribution> {
    let opts = (Kind::Float, Device::Cpu);
    let base = Normal::new(Tensor::zeros([2], opts), Tensor::ones([2], opts))?.to_event(1)?;
    let transforms = modules
        .iter()
        .map(|m| m.bind(opts))
        .collect::<ppl::Result<Vec<_>>>()?;
    TransformedDistribution::new(base.boxed(), transforms)
}

#[model]
fn density(modules: &[TransformModuleRef], x: &Tensor) -> ppl::Result<()> {
    let d = flow(modules)?;
    let _data = plate!("data", x.size()[0]);
    sample!("x", d, obs = x);
    Ok(())
}

#[guide]
fn empty(_modules: &[TransformModuleRef], _x: &Tensor) -> ppl::Result<()> {
    Ok(())
}

fn spline_flow() -> ppl::Result<Vec<TransformModuleRef>> {
    let swap: TransformRef = Rc::new(Permute::reverse(2));
    let mut m: Vec<TransformModuleRef> = Vec::new();
    for i in 0..2 {
        m.push(Rc::new(SplineCoupling::new(
            &format!("spline.{i}"),
            2,
            1,
            &[64, 64],
        )?));
        m.push(Rc::new(swap.clone()));
    }
    Ok(m)
}

fn iaf_flow() -> ppl::Result<Vec<TransformModuleRef>> {
    (0..4)
        .map(|i| {
            let f = AffineAutoregressive::new(&format!("iaf.{i}"), 2, &[64, 64])?;
            Ok(Rc::new(f) as TransformModuleRef)
        })
        .collect()
}

/// Trains `modules` on `train` and returns the test log-likelihood per point.
fn fit(
    name: &str,
    modules: &[TransformModuleRef],
    train: &Tensor,
    test: &Tensor,
    epochs: usize,
) -> ppl::Result<f64> {
    let adam = Adam::new(AdamConfig {
        lr: 5e-3,
        ..Default::default()
    });
    let mut svi = Svi::new(
        |x: &Tensor| density(modules, x),
        |x: &Tensor| empty(modules, x),
        adam,
        TraceElbo::default(),
    );
    let (n, batch) = (train.size()[0], 256);
    let mut test_ll = f64::NAN;
    for epoch in 0..epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let shuffled = train.index_select(0, &perm);
        let mut total = 0.0;
        for b in 0..n / batch {
            total += svi.step_with(&shuffled.narrow(0, b * batch, batch))?;
        }
        test_ll = -svi.evaluate_loss_with(test)? / test.size()[0] as f64;
        if epoch % 10 == 9 || epoch + 1 == epochs {
            println!(
                "{name:>6} epoch {epoch:>3}  train log-likelihood per point {:>7.4}  test {test_ll:>7.4}",
                -total / ((n / batch) * batch) as f64
            );
        }
    }
    Ok(test_ll)
}

/// The learned density on a `size × size` grid over `[-2.5, 2.5]²`: `sqrt(p / max p)` scaled to
/// 0..255 (darker is denser).
fn density_image(modules: &[TransformModuleRef], size: usize) -> ppl::Result<Vec<u8>> {
    let _ng = tch::no_grad_guard();
    let lin = Tensor::linspace(2.5, -2.5, size as i64, (Kind::Float, Device::Cpu));
    let cols = Tensor::linspace(-2.5, 2.5, size as i64, (Kind::Float, Device::Cpu));
    let grid = Tensor::stack(
        &[
            cols.unsqueeze(0).expand([size as i64, size as i64], false),
            lin.unsqueeze(1).expand([size as i64, size as i64], false),
        ],
        -1,
    )
    .reshape([-1, 2]);
    let p = flow(modules)?.log_prob(&grid)?.exp();
    let max = p.max().double_value(&[]).max(1e-12);
    let v: Vec<f32> = Vec::try_from((p / max).sqrt())?;
    Ok(v.iter()
        .map(|&q| 255 - (q.clamp(0.0, 1.0) * 255.0) as u8)
        .collect())
}

fn main() -> ppl::Result<()> {
    let epochs: usize = ppl_examples::arg("epochs", 40);
    let out: String = ppl_examples::arg("out", "flows.png".to_string());
    set_rng_seed(0);
    clear_param_store();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let train = two_moons(2048, &mut rng);
    let test = two_moons(1024, &mut rng);

    let spline = spline_flow()?;
    let iaf = iaf_flow()?;
    let ll_spline = fit("spline", &spline, &train, &test, epochs)?;
    let ll_iaf = fit("IAF", &iaf, &train, &test, epochs)?;
    println!("test log-likelihood per point: spline coupling {ll_spline:.4}, IAF {ll_iaf:.4}");

    let size = 160;
    let (a, b) = (density_image(&spline, size)?, density_image(&iaf, size)?);
    let w = 2 * size + 8;
    let mut img = vec![128u8; w * size];
    for y in 0..size {
        img[y * w..y * w + size].copy_from_slice(&a[y * size..(y + 1) * size]);
        img[y * w + size + 8..(y + 1) * w].copy_from_slice(&b[y * size..(y + 1) * size]);
    }
    ppl_examples::write_gray_png(&out, w, size, &img)?;
    println!("wrote {out} (left: spline coupling, right: IAF)");
    Ok(())
}
