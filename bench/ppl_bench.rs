//! ppl's side of the shared benchmark workloads. Prints one JSON line per workload with the
//! fields the Pyro and NumPyro scripts in `bench/peers/` print, so `bench/run_all.sh` can put the
//! three side by side.
//!
//!     cargo run --release -p ppl-bench -- [--only coin_svi,...] [--out results.jsonl]
//!         [--jit on|off] [--seed 0]
//!
//! `--jit on` (the default) compiles the SVI step (`Svi::jit_compile`) and reports the system as
//! `ppl`; `--jit off` runs libtorch eager and reports `ppl-eager`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ppl::prelude::*;
use ppl_examples::gmm::gmm;

/// The seed (`--seed`, 0 by default, as the peers use).
static SEED_ARG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn seed() -> u64 {
    SEED_ARG.load(Ordering::Relaxed)
}

/// `--jit on|off`: compiled SVI steps (`Svi::jit_compile`, on by default) or libtorch eager.
static JIT: AtomicBool = AtomicBool::new(true);

fn jit() -> bool {
    JIT.load(Ordering::Relaxed)
}
const WARMUP_STEPS: usize = 50;
const COIN_STEPS: usize = 2000;
const COIN_LR: f64 = 0.0005;
const COIN_BETAS: (f64, f64) = (0.90, 0.999);
const COIN_INIT: f64 = 15.0;

/// A JSON value, enough for flat records.
enum J {
    N(f64),
    I(i64),
    S(String),
    B(bool),
    A(Vec<f64>),
    O(Vec<(String, J)>),
}

fn write_json(out: &mut String, v: &J) {
    match v {
        J::N(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        J::N(_) => out.push_str("null"),
        J::I(i) => {
            let _ = write!(out, "{i}");
        }
        J::B(b) => {
            let _ = write!(out, "{b}");
        }
        J::S(s) => {
            let _ = write!(out, "{s:?}");
        }
        J::A(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, &J::N(*x));
            }
            out.push(']');
        }
        J::O(kv) => {
            out.push('{');
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k:?}: ");
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn rnd(x: f64, nd: i32) -> f64 {
    let p = 10f64.powi(nd);
    (x * p).round() / p
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    // numpy's default (linear interpolation).
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn step_stats(times: &[f64]) -> Vec<(String, J)> {
    let rest = &times[WARMUP_STEPS.min(times.len())..];
    let mut sorted = rest.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let median = percentile(&sorted, 50.0);
    vec![
        ("steps".into(), J::I(times.len() as i64)),
        ("total_s".into(), J::N(times.iter().sum())),
        ("first_step_s".into(), J::N(times[0])),
        ("sec_per_step_median".into(), J::N(median)),
        (
            "sec_per_step_mean_after_warmup".into(),
            J::N(rest.iter().sum::<f64>() / rest.len() as f64),
        ),
        ("sec_per_step_p10".into(), J::N(percentile(&sorted, 10.0))),
        ("sec_per_step_p90".into(), J::N(percentile(&sorted, 90.0))),
        (
            "timing_warmup_steps_excluded".into(),
            J::I(WARMUP_STEPS as i64),
        ),
    ]
}

fn mean_last(xs: &[f64], n: usize) -> f64 {
    let tail = &xs[xs.len().saturating_sub(n)..];
    tail.iter().sum::<f64>() / tail.len() as f64
}

#[model]
fn coin_model(data: &Tensor) -> ppl::Result<()> {
    let latent_fairness = sample!(Beta::new(10.0, 10.0)?);
    let _data = plate!("data", data.size()[0]);
    sample!("obs", Bernoulli::new(&latent_fairness)?, obs = data);
    Ok(())
}

#[guide]
fn coin_guide(_data: &Tensor) -> ppl::Result<()> {
    let alpha_q = param!(COIN_INIT, constraint = positive);
    let beta_q = param!(COIN_INIT, constraint = positive);
    let _latent_fairness = sample!(Beta::new(&alpha_q, &beta_q)?);
    Ok(())
}

fn bench_coin_svi() -> ppl::Result<Vec<(String, J)>> {
    let (_, rows) = ppl_examples::read_numeric_csv("coin.csv");
    let obs: Vec<f32> = rows.iter().map(|r| r[0] as f32).collect();
    let data = Tensor::from_slice(&obs);
    clear_param_store();
    set_rng_seed(seed());
    let adam = Adam::new(AdamConfig {
        lr: COIN_LR,
        betas: COIN_BETAS,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || coin_model(&data),
        || coin_guide(&data),
        adam,
        TraceElbo::default(),
    )
    .jit_compile(jit());
    let (mut times, mut losses) = (Vec::with_capacity(COIN_STEPS), Vec::new());
    for _ in 0..COIN_STEPS {
        let t0 = Instant::now();
        let loss = svi.step()?;
        times.push(t0.elapsed().as_secs_f64());
        losses.push(loss);
    }
    let a = get_param("alpha_q")?.double_value(&[]);
    let b = get_param("beta_q")?.double_value(&[]);
    let mean = a / (a + b);
    let std = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
    let mut rec = step_stats(&times);
    rec.extend([
        (
            "config".into(),
            J::O(vec![
                ("steps".into(), J::I(COIN_STEPS as i64)),
                ("lr".into(), J::N(COIN_LR)),
                ("betas".into(), J::A(vec![COIN_BETAS.0, COIN_BETAS.1])),
                ("init".into(), J::N(COIN_INIT)),
                ("loss".into(), J::S("TraceElbo".into())),
                ("jit_compile".into(), J::B(jit())),
                ("num_particles".into(), J::I(1)),
                (
                    "validation".into(),
                    J::B(ppl::distributions::validation_enabled()),
                ),
            ]),
        ),
        ("alpha_q".into(), J::N(rnd(a, 6))),
        ("beta_q".into(), J::N(rnd(b, 6))),
        ("fairness_mean".into(), J::N(rnd(mean, 6))),
        ("fairness_std".into(), J::N(rnd(std, 6))),
        ("exact_posterior_mean".into(), J::N(rnd(16.0 / 30.0, 6))),
        ("exact_posterior_std".into(), J::N(rnd(0.089602, 6))),
        (
            "final_loss_mean_last100".into(),
            J::N(rnd(mean_last(&losses, 100), 4)),
        ),
    ]);
    Ok(rec)
}

const LINREG_STEPS: usize = 1000;
const LINREG_LR: f64 = 0.01;
const LINREG_SUBSAMPLE: i64 = 100;

/// `(X [N, D], y [N])` and the true `(w, b)`.
fn load_linreg() -> (Tensor, Tensor, Vec<f64>, f64) {
    let (header, rows) = ppl_examples::read_numeric_csv("linreg.csv");
    let d = header.len() - 1;
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|r| r[..d].iter().map(|v| *v as f32))
        .collect();
    let ys: Vec<f32> = rows.iter().map(|r| r[d] as f32).collect();
    let x = Tensor::from_slice(&xs).reshape([rows.len() as i64, d as i64]);
    let text =
        std::fs::read_to_string(ppl_examples::data_dir().join("linreg_truth.csv")).expect("truth");
    let truth: Vec<(String, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(',')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    let w: Vec<f64> = (0..d)
        .map(|j| {
            truth
                .iter()
                .find(|(k, _)| *k == format!("w{j}"))
                .map_or(f64::NAN, |(_, v)| *v)
        })
        .collect();
    let b = truth
        .iter()
        .find(|(k, _)| k == "b")
        .map_or(f64::NAN, |(_, v)| *v);
    (x, Tensor::from_slice(&ys), w, b)
}

fn linreg_model(x: &Tensor, y: &Tensor, subsample: Option<i64>) -> ppl::Result<()> {
    let (n, d) = (x.size()[0], x.size()[1]);
    let opts = (x.kind(), x.device());
    let w = sample!(
        "w",
        Normal::new(Tensor::zeros([d], opts), 1.0)?.to_event(1)?
    );
    let b = sample!("b", Normal::new(0.0, 1.0)?);
    let sigma = sample!("sigma", HalfNormal::new(1.0)?);
    let mut plate = Plate::new("data", n);
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
    let _ = sample!("obs", Normal::new(&mean, &sigma)?, obs = &yb);
    Ok(())
}

fn bench_linreg(subsample: Option<i64>) -> ppl::Result<Vec<(String, J)>> {
    use ppl::infer::autoguide::init_to_feasible;
    let (x, y, w_true, b_true) = load_linreg();
    clear_param_store();
    set_rng_seed(seed());
    let guide = ppl::infer::AutoNormal::new(|| linreg_model(&x, &y, subsample))
        .init_loc_fn(init_to_feasible())
        .init_scale(0.1);
    let adam = Adam::new(AdamConfig {
        lr: LINREG_LR,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || linreg_model(&x, &y, subsample),
        || guide.call(),
        adam,
        TraceElbo::default(),
    )
    .jit_compile(jit());
    let (mut times, mut losses) = (Vec::with_capacity(LINREG_STEPS), Vec::new());
    for _ in 0..LINREG_STEPS {
        let t0 = Instant::now();
        let loss = svi.step()?;
        times.push(t0.elapsed().as_secs_f64());
        losses.push(loss);
    }
    let med = guide.median()?;
    let w: Vec<f64> = Vec::<f64>::try_from(med["w"].to_kind(Kind::Double))?;
    let b = med["b"].double_value(&[]);
    let sigma = med["sigma"].double_value(&[]);
    let w_err = w
        .iter()
        .zip(&w_true)
        .map(|(a, t)| (a - t).abs())
        .fold(0.0, f64::max);
    let mut rec = step_stats(&times);
    rec.extend([
        (
            "config".into(),
            J::O(vec![
                ("steps".into(), J::I(LINREG_STEPS as i64)),
                ("lr".into(), J::N(LINREG_LR)),
                (
                    "guide".into(),
                    J::S("AutoNormal(init_to_feasible, init_scale=0.1)".into()),
                ),
                ("N".into(), J::I(x.size()[0])),
                ("D".into(), J::I(x.size()[1])),
                (
                    "subsample_size".into(),
                    subsample.map_or(J::S("none".into()), J::I),
                ),
                ("loss".into(), J::S("TraceElbo".into())),
                ("jit_compile".into(), J::B(jit())),
            ]),
        ),
        (
            "w_post_mean".into(),
            J::A(w.iter().map(|v| rnd(*v, 4)).collect()),
        ),
        ("b_post_mean".into(), J::N(rnd(b, 4))),
        ("sigma_post_median".into(), J::N(rnd(sigma, 4))),
        ("w_max_abs_err".into(), J::N(rnd(w_err, 4))),
        ("b_abs_err".into(), J::N(rnd((b - b_true).abs(), 4))),
        (
            "final_loss_mean_last100".into(),
            J::N(rnd(mean_last(&losses, 100), 2)),
        ),
    ]);
    Ok(rec)
}

fn bench_linreg_full() -> ppl::Result<Vec<(String, J)>> {
    bench_linreg(None)
}

fn bench_linreg_subsample() -> ppl::Result<Vec<(String, J)>> {
    bench_linreg(Some(LINREG_SUBSAMPLE))
}

const GMM_STEPS: usize = 500;
const GMM_LR: f64 = 0.05;
const GMM_K: i64 = 3;

/// The K=3, N=1000 mixture with its assignments enumerated: `TraceEnumElbo` + `AutoDelta`, from
/// the peers' initial values (equal weights, scale 1, locs -2, 0, 2).
fn bench_gmm_enum_svi() -> ppl::Result<Vec<(String, J)>> {
    let (_, rows) = ppl_examples::read_numeric_csv("gmm.csv");
    let ys: Vec<f32> = rows.iter().map(|r| r[0] as f32).collect();
    let y = Tensor::from_slice(&ys);
    clear_param_store();
    set_rng_seed(seed());
    let init: std::collections::HashMap<String, Tensor> = [
        (
            "weights",
            Tensor::full([GMM_K], 1.0 / GMM_K as f64, (Kind::Float, Device::Cpu)),
        ),
        ("scale", Tensor::from(1.0f32)),
        ("locs", Tensor::from_slice(&[-2.0f32, 0.0, 2.0])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let guide =
        AutoDelta::new(|| gmm(&y, GMM_K)).init_loc_fn(ppl::infer::autoguide::init_to_value(init));
    let adam = Adam::new(AdamConfig {
        lr: GMM_LR,
        ..Default::default()
    });
    let elbo = TraceEnumElbo::default().max_plate_nesting(1);
    let mut svi = Svi::new(|| gmm(&y, GMM_K), || guide.call(), adam, elbo).jit_compile(jit());
    let (mut times, mut losses) = (Vec::with_capacity(GMM_STEPS), Vec::new());
    for _ in 0..GMM_STEPS {
        let t0 = Instant::now();
        let loss = svi.step()?;
        times.push(t0.elapsed().as_secs_f64());
        losses.push(loss);
    }
    let med = guide.median()?;
    let v = |t: &Tensor| -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1]))
            .unwrap_or_default()
            .into_iter()
            .map(|x| rnd(x, 3))
            .collect()
    };
    let mut rec = step_stats(&times);
    rec.extend([
        (
            "config".into(),
            J::O(vec![
                ("steps".into(), J::I(GMM_STEPS as i64)),
                ("lr".into(), J::N(GMM_LR)),
                ("loss".into(), J::S("TraceEnumElbo".into())),
                ("jit_compile".into(), J::B(jit())),
            ]),
        ),
        ("weights".into(), J::A(v(&med["weights"]))),
        ("locs".into(), J::A(v(&med["locs"]))),
        ("scale".into(), J::N(rnd(med["scale"].double_value(&[]), 3))),
        ("final_loss".into(), J::N(rnd(losses[losses.len() - 1], 3))),
    ]);
    Ok(rec)
}

/// The VAE workload's settings (`bench/peers/common.py`'s `VAE`).
const VAE_STEPS: usize = 300;
const VAE_BATCH: i64 = 128;
const VAE_LR: f64 = 1e-3;
const VAE_Z_DIM: i64 = 10;
const VAE_HIDDEN: i64 = 200;

/// Pyro's VAE tutorial on the 8×8 digits (`examples/vae_models.rs`): SVI steps with a new
/// minibatch passed at each (`Svi::step_with`). The batches are cut as the peers cut them (one
/// shuffle, batches of 128, the incomplete one dropped, step i on batch i mod 14); the shuffle is
/// ppl's own, not numpy's.
fn bench_vae_svi() -> ppl::Result<Vec<(String, J)>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let (x, _) = ppl_examples::vae::load_digits();
    clear_param_store();
    set_rng_seed(seed());
    let mut order: Vec<i64> = (0..x.size()[0]).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed()));
    let batches = ppl_examples::vae::batches(&x, &order, VAE_BATCH);
    let vae = ppl_examples::vae::Vae::new(
        ppl_examples::vae::DIGIT_PIXELS,
        VAE_Z_DIM,
        VAE_HIDDEN,
        Device::Cpu,
    );
    let adam = Adam::new(AdamConfig {
        lr: VAE_LR,
        ..Default::default()
    });
    let mut svi = Svi::new(
        |x: &Tensor| vae.model(x),
        |x: &Tensor| vae.guide(x),
        adam,
        TraceElbo::default(),
    )
    .jit_compile(jit());
    let (mut times, mut losses) = (Vec::with_capacity(VAE_STEPS), Vec::new());
    for i in 0..VAE_STEPS {
        let batch = &batches[i % batches.len()];
        let t0 = Instant::now();
        let loss = svi.step_with(batch)?;
        times.push(t0.elapsed().as_secs_f64());
        losses.push(loss);
    }
    let per_point = VAE_BATCH as f64;
    let mut rec = step_stats(&times);
    rec.extend([
        (
            "config".into(),
            J::O(vec![
                ("steps".into(), J::I(VAE_STEPS as i64)),
                ("batch".into(), J::I(VAE_BATCH)),
                ("z_dim".into(), J::I(VAE_Z_DIM)),
                ("hidden".into(), J::I(VAE_HIDDEN)),
                ("lr".into(), J::N(VAE_LR)),
                ("jit_compile".into(), J::B(jit())),
            ]),
        ),
        ("batch".into(), J::I(VAE_BATCH)),
        ("batches_per_epoch".into(), J::I(batches.len() as i64)),
        (
            "first_loss_per_point".into(),
            J::N(rnd(losses[0] / per_point, 4)),
        ),
        (
            "final_loss_per_point_mean_last50".into(),
            J::N(rnd(mean_last(&losses, 50) / per_point, 4)),
        ),
    ]);
    Ok(rec)
}

type Bench = fn() -> ppl::Result<Vec<(String, J)>>;

fn main() -> ppl::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(n) = flag("--threads") {
        tch::set_num_threads(n.parse().unwrap_or(1));
    }
    if let Some(v) = flag("--seed").and_then(|v| v.parse().ok()) {
        SEED_ARG.store(v, Ordering::Relaxed);
    }
    if flag("--jit").as_deref() == Some("off") {
        JIT.store(false, Ordering::Relaxed);
    }
    if args.iter().any(|a| a == "--no-validation") {
        ppl::distributions::enable_validation(false);
    }
    let mut all: BTreeMap<&str, Bench> = BTreeMap::new();
    all.insert("coin_svi", bench_coin_svi);
    all.insert("linreg_svi", bench_linreg_full);
    all.insert("linreg_svi_subsample", bench_linreg_subsample);
    all.insert("gmm_enum_svi", bench_gmm_enum_svi);
    all.insert("vae_svi", bench_vae_svi);
    let order = [
        "coin_svi",
        "linreg_svi",
        "linreg_svi_subsample",
        "gmm_enum_svi",
        "vae_svi",
    ];
    let only: Vec<String> = flag("--only")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_else(|| order.iter().map(|s| s.to_string()).collect());
    for name in &only {
        let Some(f) = all.get(name.as_str()) else {
            // The NUTS workloads (and NeuTra's) are run by `examples/bench_mcmc.rs`.
            if !(name.ends_with("_nuts") || name == "neutra_funnel") {
                eprintln!("unknown workload {name:?}; choose from {order:?}");
                std::process::exit(2);
            }
            continue;
        };
        let mut rec = vec![
            (
                "system".to_string(),
                J::S(
                    flag("--system")
                        .unwrap_or_else(|| if jit() { "ppl" } else { "ppl-eager" }.into()),
                ),
            ),
            ("workload".into(), J::S(name.clone())),
            ("run_id".into(), J::S(flag("--run-id").unwrap_or_default())),
            ("threads".into(), J::I(tch::get_num_threads() as i64)),
            (
                "versions".into(),
                J::O(vec![
                    ("ppl".into(), J::S(env!("CARGO_PKG_VERSION").into())),
                    ("tch".into(), J::S("0.24.0".into())),
                    ("torch".into(), J::S("2.11.0".into())),
                ]),
            ),
            ("machine".into(), J::S(std::env::consts::ARCH.into())),
            (
                "cpu_count".into(),
                J::I(std::thread::available_parallelism().map_or(1, |n| n.get()) as i64),
            ),
        ];
        match f() {
            Ok(r) => {
                rec.push(("status".into(), J::S("ok".into())));
                rec.extend(r);
            }
            Err(e) => {
                rec.push(("status".into(), J::S(format!("error: {e}"))));
            }
        }
        let mut line = String::new();
        write_json(&mut line, &J::O(rec));
        println!("{line}");
        if let Some(out) = flag("--out") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .map_err(|e| ppl::Error::Io {
                    path: out.clone(),
                    source: e,
                })?;
            let _ = writeln!(f, "{line}");
        }
    }
    Ok(())
}
