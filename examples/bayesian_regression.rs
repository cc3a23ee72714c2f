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
//!
//! `--distributed` fits the full-batch model data-parallel over the ranks that torchrun starts
//! (`ppl::distributed`): each rank reads its contiguous shard of the rows, the plate keeps the
//! global size (so each rank's likelihood is scaled by N / shard), and gradients are averaged
//! over ranks before every step. Rank 0 prints.
//!
//!     torchrun --nproc-per-node 2 --no-python \
//!         target/x86_64-unknown-linux-gnu/release/examples/bayesian_regression --distributed

use std::rc::Rc;

use ppl::distributed::ProcessGroup;

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

/// How the data plate ranges: all rows, a random subsample of `k` per step, or this rank's
/// shard of a data-parallel run (global size, and the shard's row indices).
#[derive(Clone, Copy)]
enum Rows<'a> {
    All,
    Subsample(i64),
    Shard(i64, &'a Tensor),
}

fn model(x: &Tensor, y: &Tensor, rows: Rows<'_>) -> ppl::Result<()> {
    let (n, d) = (x.size()[0], x.size()[1]);
    let opts = (x.kind(), x.device());
    let w = sample(
        "w",
        Normal::new(Tensor::zeros([d], opts), 1.0)?.to_event(1)?,
        None,
    )?;
    let b = sample("b", Normal::new(Tensor::zeros([], opts), 1.0)?, None)?;
    let sigma = sample("sigma", HalfNormal::new(Tensor::ones([], opts))?, None)?;
    let plate = match rows {
        Rows::All => Plate::new("data", n),
        Rows::Subsample(k) => Plate::new("data", n).subsample_size(k),
        // `x` and `y` hold the shard only; the plate ranges over its rows of the global data.
        Rows::Shard(total, idx) => Plate::new("data", total).subsample(idx.shallow_clone()),
    };
    let p = plate.device(x.device()).enter()?;
    let (xb, yb) = match rows {
        Rows::All | Rows::Shard(..) => (x.shallow_clone(), y.shallow_clone()),
        Rows::Subsample(_) => (
            x.index_select(0, p.indices()),
            y.index_select(0, p.indices()),
        ),
    };
    let mean = xb.matmul(&w) + &b;
    let _ = sample("obs", Normal::new(&mean, &sigma)?, Some(yb))?;
    Ok(())
}

fn fit(
    x: &Tensor,
    y: &Tensor,
    rows: Rows<'_>,
    steps: usize,
    pg: Option<Rc<ProcessGroup>>,
) -> ppl::Result<()> {
    clear_param_store();
    // Every rank starts from the same params; each rank draws its own noise.
    set_rng_seed(pg.as_ref().map_or(0, |p| p.rank() as u64));
    let main = pg.as_ref().is_none_or(|p| p.is_main());
    let guide = AutoNormal::new(|| model(x, y, rows))
        .init_loc_fn(init_to_feasible())
        .init_scale(0.1);
    let adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || model(x, y, rows),
        || guide.call(),
        adam,
        TraceElbo::default(),
    );
    if let Some(pg) = &pg {
        svi = svi.data_parallel(pg.clone());
    }
    let mut svi = svi.jit_compile(ppl_examples::jit_from_args());
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

    if !main {
        return Ok(());
    }
    let label = match (rows, &pg) {
        (Rows::All, _) => "full batch".to_string(),
        (Rows::Subsample(k), _) => format!("subsample {k}"),
        (Rows::Shard(..), Some(pg)) => {
            let (secs, n) = svi
                .data_parallel_state()
                .map_or((0.0, 0), |d| d.all_reduce_seconds());
            format!(
                "data-parallel over {} ranks ({:.3} ms/step averaging gradients)",
                pg.world_size(),
                1e3 * secs / n.max(1) as f64
            )
        }
        (Rows::Shard(..), None) => "shard".to_string(),
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
    if matches!(rows, Rows::All) && !plots.is_empty() {
        let loss_png = format!("{plots}/bayesian_regression_loss.png");
        ppl::plots::loss_curve(&losses, &loss_png)?;
        let pred = Predictive::with_guide(
            || poutine::uncondition(|| model(x, y, Rows::All)),
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
    if std::env::args().any(|a| a == "--distributed") {
        // The plots are of the single-process fits: asking for them here is a mistake, not a no-op.
        let plots: String = ppl_examples::arg("plots", String::new());
        if !plots.is_empty() {
            return Err(ppl::Error::Invalid(
                "--plots draws the single-process fits; with --distributed, leave it out".into(),
            ));
        }
        let pg = Rc::new(ppl::distributed::init()?);
        let n = x.size()[0];
        let shard = pg.shard(n as usize);
        let (lo, hi) = (shard.start as i64, shard.end as i64);
        let idx = Tensor::arange_start(lo, hi, (Kind::Int64, device));
        let (xs, ys) = (x.narrow(0, lo, hi - lo), y.narrow(0, lo, hi - lo));
        if pg.is_main() {
            println!(
                "linreg: N = {n}, D = {} over {} ranks (rank 0 has rows {lo}..{hi})",
                x.size()[1],
                pg.world_size()
            );
        }
        fit(&xs, &ys, Rows::Shard(n, &idx), steps, Some(pg.clone()))?;
        pg.barrier()?;
        return Ok(());
    }
    println!(
        "linreg: N = {}, D = {} (posterior medians; sigma's is exp(loc))",
        x.size()[0],
        x.size()[1]
    );
    fit(&x, &y, Rows::All, steps, None)?;
    fit(&x, &y, Rows::Subsample(100), steps, None)?;
    Ok(())
}
