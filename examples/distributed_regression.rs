//! Data-parallel SVI at scale: a synthetic linear regression with `--rows` rows (default 10⁶) and
//! `--features` features (default 100), sharded over the ranks that torchrun starts. Each rank
//! makes its own shard with a fixed seed (rank `r` uses seed `1000 + r`), so no data moves; the
//! plate has the global size and ranges over the rank's rows; gradients are averaged over ranks
//! before every Adam step (`Svi::data_parallel`).
//!
//!     torchrun --nproc-per-node 2 --no-python \
//!         target/x86_64-unknown-linux-gnu/release/examples/distributed_regression --steps 30
//!
//! Without torchrun's variables it runs in one process over all the rows (the baseline). Rank 0
//! prints ms per step, rows per second, and the time spent averaging gradients.

use std::rc::Rc;
use std::time::Instant;

use ppl::infer::autoguide::init_to_feasible;
use ppl::infer::AutoNormal;
use ppl::prelude::*;

/// The true weights: a fixed pattern in [-1, 1].
fn true_w(d: i64) -> Tensor {
    let w: Vec<f32> = (0..d).map(|j| ((j * 37 % 19) as f32 - 9.0) / 9.0).collect();
    Tensor::from_slice(&w)
}

/// Rows `lo..hi` of the data: each shard from its own seed.
fn make_shard(rank: usize, n: i64, d: i64) -> (Tensor, Tensor) {
    tch::manual_seed(1000 + rank as i64);
    let x = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
    let y = x.mv(&true_w(d)) + 0.3 + 0.5 * Tensor::randn([n], (Kind::Float, Device::Cpu));
    (x, y)
}

fn model(x: &Tensor, y: &Tensor, total: i64, idx: &Tensor) -> ppl::Result<()> {
    let d = x.size()[1];
    let opts = (Kind::Float, Device::Cpu);
    let w = sample(
        "w",
        Normal::new(Tensor::zeros([d], opts), 1.0)?.to_event(1)?,
        None,
    )?;
    let b = sample("b", Normal::new(Tensor::zeros([], opts), 1.0)?, None)?;
    let sigma = sample("sigma", HalfNormal::new(Tensor::ones([], opts))?, None)?;
    let _p = Plate::new("data", total)
        .subsample(idx.shallow_clone())
        .enter()?;
    let _ = sample(
        "obs",
        Normal::new(x.mv(&w) + &b, &sigma)?,
        Some(y.shallow_clone()),
    )?;
    Ok(())
}

fn main() -> ppl::Result<()> {
    let rows: i64 = ppl_examples::arg("rows", 1_000_000);
    let d: i64 = ppl_examples::arg("features", 100);
    let steps: usize = ppl_examples::arg("steps", 30);
    let pg = if std::env::var("RANK").is_ok() {
        Some(Rc::new(ppl::distributed::init()?))
    } else {
        None
    };
    let (rank, world) = pg.as_ref().map_or((0, 1), |p| (p.rank(), p.world_size()));
    let range = pg
        .as_ref()
        .map_or(0..rows as usize, |p| p.shard(rows as usize));
    let (lo, hi) = (range.start as i64, range.end as i64);
    let t0 = Instant::now();
    let (x, y) = make_shard(rank, hi - lo, d);
    let idx = Tensor::arange_start(lo, hi, (Kind::Int64, Device::Cpu));
    let make_secs = t0.elapsed().as_secs_f64();

    clear_param_store();
    set_rng_seed(rank as u64);
    let guide = AutoNormal::new(|| model(&x, &y, rows, &idx))
        .init_loc_fn(init_to_feasible())
        .init_scale(0.1);
    let adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || model(&x, &y, rows, &idx),
        || guide.call(),
        adam,
        TraceElbo::default(),
    )
    .num_threads(Some(1));
    if let Some(pg) = &pg {
        svi = svi.data_parallel(pg.clone());
    }
    let mut svi = svi.jit_compile(ppl_examples::jit_from_args());
    // The first step compiles (with --jit) and checks the params across ranks: not timed.
    svi.step()?;
    let t1 = Instant::now();
    let mut loss = 0.0;
    for _ in 1..steps {
        loss = svi.step()?;
    }
    let secs = t1.elapsed().as_secs_f64();
    let per_step = 1e3 * secs / (steps.max(2) - 1) as f64;
    let (reduce, n) = svi
        .data_parallel_state()
        .map_or((0.0, 1), |s| s.all_reduce_seconds());
    // The first step's averaging is in `reduce` too; per step over all averaged steps.
    let reduce_ms = 1e3 * reduce / n.max(1) as f64;
    // The collective alone: 300 all-reduces of a buffer the size of the gradient (AutoNormal's
    // locs and scales of w, b and sigma, plus the loss), after a barrier; the median.
    let mut allreduce_us = f64::NAN;
    if let Some(pg) = &pg {
        pg.barrier()?;
        let buf = Tensor::zeros([2 * (d + 2) + 1], (Kind::Float, Device::Cpu));
        let mut times: Vec<f64> = (0..300)
            .map(|_| {
                let t = Instant::now();
                pg.all_reduce_sum(&buf)
                    .map(|_| 1e6 * t.elapsed().as_secs_f64())
            })
            .collect::<ppl::Result<_>>()?;
        times.sort_by(f64::total_cmp);
        allreduce_us = times[times.len() / 2];
        pg.barrier()?;
    }
    if rank == 0 {
        let w = guide.median()?["w"].shallow_clone();
        let err = (w - true_w(d)).abs().max().double_value(&[]);
        println!(
            "{rows} rows x {d} features over {world} rank(s) ({} rows here, made in {make_secs:.2} s)",
            hi - lo
        );
        println!(
            "{per_step:.2} ms/step over {} steps ({:.2e} rows/s); averaging gradients \
             {reduce_ms:.3} ms/step ({:.1}% of a step); loss {loss:.1}; max |w - w_true| {err:.3}",
            steps - 1,
            rows as f64 / (per_step / 1e3),
            100.0 * reduce_ms / per_step
        );
        if pg.is_some() {
            println!(
                "one all-reduce of {} floats alone: {allreduce_us:.1} us (median of 300)",
                2 * (d + 2) + 1
            );
        }
        println!(
            "RESULT ms_per_step {per_step:.3} reduce_ms {reduce_ms:.4} allreduce_us \
             {allreduce_us:.1} world {world}"
        );
    }
    Ok(())
}
