//! Bayesian linear regression with an AutoNormal guide, on the linreg data (10 000 rows,
//! 10 features; `data/linreg.csv`, true coefficients in `data/linreg_truth.csv`):
//!
//!     w ~ Normal(0, 1)^10,  b ~ Normal(0, 1),  sigma ~ HalfNormal(1),
//!     y_n ~ Normal(x_n · w + b, sigma)    for n in plate("data", 10 000)
//!
//! fitted twice with SVI (Adam lr 0.01, 1000 steps, AutoNormal with init_to_feasible and
//! init_scale 0.1, as the Pyro and NumPyro benchmarks do): once on the full batch, once with
//! the plate subsampling 100 rows per step (log-likelihood scaled by 100).
//!
//!     cargo run --release --example bayesian_regression [-- --steps 1000 --device cuda --jit]
//!
//! `--jit` compiles the SVI step (`Svi::jit_compile`).

use ppl::infer::autoguide::init_to_feasible;
use ppl::infer::AutoNormal;
use ppl::prelude::*;

/// `(X [N, D], y [N])` on `device`.
fn load_linreg(device: Device) -> (Tensor, Tensor) {
    let (header, rows) = ppl_examples::read_csv("linreg.csv");
    let d = header.len() - 1;
    let mut xs = Vec::with_capacity(rows.len() * d);
    let mut ys = Vec::with_capacity(rows.len());
    for r in &rows {
        let v: Vec<f32> = r.iter().map(|s| s.parse().expect("a number")).collect();
        xs.extend_from_slice(&v[..d]);
        ys.push(v[d]);
    }
    let x = Tensor::from_slice(&xs)
        .reshape([rows.len() as i64, d as i64])
        .to_device(device);
    (x, Tensor::from_slice(&ys).to_device(device))
}

/// The true parameters by name (`w0`..`w9`, `b`, `sigma`).
fn load_truth() -> Vec<(String, f64)> {
    ppl_examples::read_csv("linreg_truth.csv")
        .1
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().expect("a number")))
        .collect()
}

fn model(x: &Tensor, y: &Tensor, subsample: Option<i64>) -> ppl::Result<()> {
    let (n, d) = (x.size()[0], x.size()[1]);
    let opts = (x.kind(), x.device());
    let w = sample(
        "w",
        Normal::new(Tensor::zeros([d], opts), 1.0)?.to_event(1)?,
        None,
    )?;
    let b = sample("b", Normal::new(Tensor::zeros([], opts), 1.0)?, None)?;
    let sigma = sample("sigma", HalfNormal::new(Tensor::ones([], opts))?, None)?;
    let mut plate = Plate::new("data", n).device(x.device());
    if let Some(k) = subsample {
        plate = plate.subsample_size(k);
    }
    let p = plate.enter()?;
    let (xb, yb) = match subsample {
        None => (x.shallow_clone(), y.shallow_clone()),
        Some(_) => (
            x.index_select(0, p.indices()),
            y.index_select(0, p.indices()),
        ),
    };
    let mean = xb.matmul(&w) + &b;
    let _ = sample("obs", Normal::new(&mean, &sigma)?, Some(yb))?;
    Ok(())
}

fn fit(x: &Tensor, y: &Tensor, subsample: Option<i64>, steps: usize) -> ppl::Result<()> {
    clear_param_store();
    set_rng_seed(0);
    let guide = AutoNormal::new(|| model(x, y, subsample))
        .init_loc_fn(init_to_feasible())
        .init_scale(0.1);
    let adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || model(x, y, subsample),
        || guide.call(),
        adam,
        TraceElbo::default(),
    )
    .jit_compile(ppl_examples::jit_from_args());
    let start = std::time::Instant::now();
    let losses = svi.run(steps)?;
    let secs = start.elapsed().as_secs_f64();
    let tail = &losses[losses.len().saturating_sub(100)..];
    let last = tail.iter().sum::<f64>() / tail.len().max(1) as f64;

    let med = guide.median()?;
    let w: Vec<f64> = Vec::<f64>::try_from(med["w"].to_kind(Kind::Double).to_device(Device::Cpu))?;
    let b = med["b"].double_value(&[]);
    let sigma = med["sigma"].double_value(&[]);
    let w_scale = get_param("AutoNormal.scales.w")?
        .mean(Kind::Double)
        .double_value(&[]);

    let label = match subsample {
        None => "full batch".to_string(),
        Some(k) => format!("subsample {k}"),
    };
    println!(
        "\n{label}: {steps} steps in {secs:.2} s ({:.3} ms/step), mean loss of the last 100 steps {last:.2}",
        1e3 * secs / steps.max(1) as f64
    );
    println!("{:>6} {:>9} {:>9}", "param", "posterior", "truth");
    let truth = load_truth();
    for (name, t) in &truth {
        let est = if let Some(i) = name.strip_prefix('w').and_then(|s| s.parse::<usize>().ok()) {
            w[i]
        } else if name == "b" {
            b
        } else {
            sigma
        };
        println!("{name:>6} {est:>9.4} {t:>9.4}");
    }
    let w_err = truth
        .iter()
        .filter_map(|(n, t)| {
            let i = n.strip_prefix('w')?.parse::<usize>().ok()?;
            Some((w[i] - t).abs())
        })
        .fold(0.0, f64::max);
    println!("max |w - w_true| = {w_err:.4}; mean guide scale of w = {w_scale:.5}");

    // Plots of the full-batch fit: the loss curve, and a posterior predictive check (y drawn
    // again from the model, unconditioned, with latents from the guide).
    let plots: String = ppl_examples::arg("plots", "out".to_string());
    if subsample.is_none() && !plots.is_empty() {
        let loss_png = format!("{plots}/bayesian_regression_loss.png");
        ppl::plots::loss_curve(&losses, &loss_png)?;
        let pred = Predictive::with_guide(
            || poutine::uncondition(|| model(x, y, None)),
            || guide.call(),
            100,
        )
        .return_sites(&["obs"])
        .run()?;
        let ppc_png = format!("{plots}/bayesian_regression_ppc.png");
        ppl::plots::posterior_predictive_check("y", y, &pred["obs"], &ppc_png)?;
        println!("plots: {loss_png}, {ppc_png}");
    }
    Ok(())
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let steps: usize = ppl_examples::arg("steps", 1000);
    let (x, y) = load_linreg(device);
    println!(
        "linreg: N = {}, D = {} (posterior medians; sigma's is exp(loc))",
        x.size()[0],
        x.size()[1]
    );
    fit(&x, &y, None, steps)?;
    fit(&x, &y, Some(100), steps)?;
    Ok(())
}
