//! Optimizers, schedulers and clipping against torch (fixtures from
//! `scripts/make_optim_fixtures.py`), optimizer state round trips, and an SVI checkpoint that
//! resumes bit-identically.
//!
//! Tolerances. Each fixture case runs torch's own optimizer (Pyro's ClippedAdam written out) for
//! six steps on fixed gradients. ppl performs the same tensor operations in the same order, so the
//! trajectories agree up to the rounding of fused multiply-adds inside libtorch's vectorized
//! kernels: a few ulps. float32 cases are compared to `1e-6 * max(1, |x|)` (8 ulps at 1),
//! float64 cases to `1e-12`. Learning rates are plain f64 arithmetic, compared to `1e-15`
//! relative.

use std::collections::HashMap;

use ppl::optim::{
    load_checkpoint, save_checkpoint, set_small_tensor_fast_path, Adagrad, AdagradConfig,
    AdagradRmsProp, AdagradRmsPropConfig, Adam, AdamConfig, AdamW, AdamWConfig, ClipConfig,
    Clipped, ClippedAdam, ClippedAdamConfig, CosineAnnealingLr, ExponentialLr, LambdaLr,
    LrScheduled, LrScheduler, MultiStepLr, PlateauMode, ReduceLrOnPlateau, ReduceLrOnPlateauConfig,
    RmsProp, RmsPropConfig, Sgd, SgdConfig, StepLr, ThresholdMode,
};
use ppl::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Building optimizers from fixture cases.

/// An optimizer whose learning rates can be scheduled.
trait Opt: Optimizer + LrScheduled {}
impl<T: Optimizer + LrScheduled> Opt for T {}

/// An optimizer with a scheduler (or none).
trait Full: Opt + LrScheduler {}
impl<T: Opt + LrScheduler> Full for T {}

/// No scheduler: `scheduler_step` does nothing.
struct NoSchedule(Box<dyn Opt>);

impl Optimizer for NoSchedule {
    fn step(&mut self, params: &[(String, Tensor)]) -> ppl::Result<()> {
        self.0.step(params)
    }
    fn state(&self) -> ppl::Result<Vec<(String, Tensor)>> {
        self.0.state()
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> ppl::Result<()> {
        self.0.load_state(state)
    }
}

impl LrScheduled for NoSchedule {
    fn for_each_lr(&mut self, f: &mut dyn FnMut(&str, &mut f64)) {
        self.0.for_each_lr(f)
    }
    fn lr(&self, name: &str) -> Option<f64> {
        self.0.lr(name)
    }
    fn initial_lr(&self, name: &str) -> Option<f64> {
        self.0.initial_lr(name)
    }
}

impl LrScheduler for NoSchedule {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> ppl::Result<()> {
        Ok(())
    }
}

fn f(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn betas(v: &Value) -> (f64, f64) {
    match v.get("betas").and_then(Value::as_array) {
        Some(a) => (
            a[0].as_f64().expect("test setup"),
            a[1].as_f64().expect("test setup"),
        ),
        None => (0.9, 0.999),
    }
}

/// The case's config with the per-param overrides for `name` merged in.
fn config_for(case: &Value, name: &str) -> Value {
    let mut c = case["config"].clone();
    if let Some(o) = case["per_param"].get(name).and_then(Value::as_object) {
        for (k, v) in o {
            c[k] = v.clone();
        }
    }
    c
}

fn adam_config(c: &Value) -> AdamConfig {
    let d = AdamConfig::default();
    AdamConfig {
        lr: f(c, "lr", d.lr),
        betas: betas(c),
        eps: f(c, "eps", d.eps),
        weight_decay: f(c, "weight_decay", d.weight_decay),
        amsgrad: b(c, "amsgrad"),
    }
}

fn build_optimizer(case: &Value) -> Box<dyn Full> {
    let case2 = case.clone();
    let cfg = move |name: &str| config_for(&case2, name);
    let base: Box<dyn Opt> = match case["optimizer"].as_str().expect("test setup") {
        "adam" => Box::new(Adam::per_param(move |n: &str| adam_config(&cfg(n)))),
        "adamw" => Box::new(AdamW::per_param(move |n: &str| {
            let c = cfg(n);
            let d = AdamWConfig::default();
            AdamWConfig {
                lr: f(&c, "lr", d.lr),
                betas: betas(&c),
                eps: f(&c, "eps", d.eps),
                weight_decay: f(&c, "weight_decay", d.weight_decay),
                amsgrad: b(&c, "amsgrad"),
            }
        })),
        "clipped_adam" => Box::new(ClippedAdam::per_param(move |n: &str| {
            let c = cfg(n);
            let d = ClippedAdamConfig::default();
            ClippedAdamConfig {
                lr: f(&c, "lr", d.lr),
                betas: betas(&c),
                eps: f(&c, "eps", d.eps),
                weight_decay: f(&c, "weight_decay", d.weight_decay),
                clip_norm: f(&c, "clip_norm", d.clip_norm),
                lrd: f(&c, "lrd", d.lrd),
            }
        })),
        "sgd" => Box::new(Sgd::per_param(move |n: &str| {
            let c = cfg(n);
            let d = SgdConfig::default();
            SgdConfig {
                lr: f(&c, "lr", d.lr),
                momentum: f(&c, "momentum", d.momentum),
                dampening: f(&c, "dampening", d.dampening),
                weight_decay: f(&c, "weight_decay", d.weight_decay),
                nesterov: b(&c, "nesterov"),
            }
        })),
        "rmsprop" => Box::new(RmsProp::per_param(move |n: &str| {
            let c = cfg(n);
            let d = RmsPropConfig::default();
            RmsPropConfig {
                lr: f(&c, "lr", d.lr),
                alpha: f(&c, "alpha", d.alpha),
                eps: f(&c, "eps", d.eps),
                weight_decay: f(&c, "weight_decay", d.weight_decay),
                momentum: f(&c, "momentum", d.momentum),
                centered: b(&c, "centered"),
            }
        })),
        "adagrad" => Box::new(Adagrad::per_param(move |n: &str| {
            let c = cfg(n);
            let d = AdagradConfig::default();
            AdagradConfig {
                lr: f(&c, "lr", d.lr),
                lr_decay: f(&c, "lr_decay", d.lr_decay),
                weight_decay: f(&c, "weight_decay", d.weight_decay),
                initial_accumulator_value: f(
                    &c,
                    "initial_accumulator_value",
                    d.initial_accumulator_value,
                ),
                eps: f(&c, "eps", d.eps),
            }
        })),
        "adagrad_rmsprop" => Box::new(AdagradRmsProp::per_param(move |n: &str| {
            let c = cfg(n);
            let d = AdagradRmsPropConfig::default();
            AdagradRmsPropConfig {
                eta: f(&c, "eta", d.eta),
                delta: f(&c, "delta", d.delta),
                t: f(&c, "t", d.t),
            }
        })),
        other => panic!("unknown optimizer {other}"),
    };
    let norm_type = |c: &Value| match c.get("norm_type") {
        Some(Value::String(s)) if s == "inf" => f64::INFINITY,
        Some(v) => v.as_f64().expect("test setup"),
        None => 2.0,
    };
    let clip_of = |c: &Value, per_param: bool| ClipConfig {
        max_norm: c.get("max_norm").and_then(Value::as_f64),
        norm_type: norm_type(c),
        clip_value: c.get("value").and_then(Value::as_f64),
        per_param,
    };
    let base: Box<dyn Opt> = if !case["clip"].is_null() {
        Box::new(Clipped::new(base, clip_of(&case["clip"], true)))
    } else if !case["clip_all"].is_null() {
        Box::new(Clipped::new(base, clip_of(&case["clip_all"], false)))
    } else {
        base
    };
    let s = &case["scheduler"];
    match s.get("kind").and_then(Value::as_str) {
        None => Box::new(NoSchedule(base)),
        Some("exponential") => Box::new(ExponentialLr::new(base, f(s, "gamma", 0.1))),
        Some("step") => Box::new(
            StepLr::new(
                base,
                s["step_size"].as_i64().expect("test setup"),
                f(s, "gamma", 0.1),
            )
            .expect("test setup"),
        ),
        Some("lambda") => {
            let b = f(s, "base", 1.0);
            Box::new(LambdaLr::new(base, move |k: i64| b.powf(k as f64)))
        }
        Some("cosine") => Box::new(
            CosineAnnealingLr::new(
                base,
                s["T_max"].as_i64().expect("test setup"),
                f(s, "eta_min", 0.0),
            )
            .expect("test setup"),
        ),
        Some("multistep") => {
            let milestones: Vec<i64> = s["milestones"]
                .as_array()
                .expect("test setup")
                .iter()
                .map(|m| m.as_i64().expect("test setup"))
                .collect();
            Box::new(MultiStepLr::new(base, &milestones, f(s, "gamma", 0.1)))
        }
        Some("plateau") => {
            let d = ReduceLrOnPlateauConfig::default();
            let config = ReduceLrOnPlateauConfig {
                mode: match s.get("mode").and_then(Value::as_str) {
                    Some("max") => PlateauMode::Max,
                    _ => PlateauMode::Min,
                },
                factor: f(s, "factor", d.factor),
                patience: s
                    .get("patience")
                    .and_then(Value::as_i64)
                    .unwrap_or(d.patience),
                threshold: f(s, "threshold", d.threshold),
                threshold_mode: match s.get("threshold_mode").and_then(Value::as_str) {
                    Some("abs") => ThresholdMode::Abs,
                    _ => ThresholdMode::Rel,
                },
                cooldown: s
                    .get("cooldown")
                    .and_then(Value::as_i64)
                    .unwrap_or(d.cooldown),
                min_lr: f(s, "min_lr", d.min_lr),
                eps: f(s, "eps", d.eps),
            };
            Box::new(ReduceLrOnPlateau::new(base, config).expect("test setup"))
        }
        Some(k) => panic!("unknown scheduler {k}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tensors from fixtures.

fn kind_of(case: &Value) -> Kind {
    match case["dtype"].as_str().expect("test setup") {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        d => panic!("dtype {d}"),
    }
}

fn tensor(v: &Value, kind: Kind) -> Tensor {
    let data: Vec<f64> = v["data"]
        .as_array()
        .expect("test setup")
        .iter()
        .map(|x| x.as_f64().expect("test setup"))
        .collect();
    let shape: Vec<i64> = v["shape"]
        .as_array()
        .expect("test setup")
        .iter()
        .map(|x| x.as_i64().expect("test setup"))
        .collect();
    Tensor::from_slice(&data).reshape(shape).to_kind(kind)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).reshape([-1])).expect("test setup")
}

/// Makes `p.grad()` equal to `g` exactly: zeroes an existing gradient, then backpropagates
/// `sum(p * g)` (whose gradient is `g * 1`).
fn set_grad(p: &Tensor, g: &Tensor) {
    let mut old = p.grad();
    if old.defined() {
        let _ = old.zero_();
    }
    (p * g).sum(p.kind()).backward();
}

const NAMES: [&str; 2] = ["a", "loc.b"];

fn fixtures() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/optim.json"
    ))
    .expect("test setup");
    serde_json::from_str(&text).expect("test setup")
}

/// Runs `case`, checking every step against torch; with `resume_at = Some(k)` the optimizer is
/// replaced after step `k` by a fresh one loaded with its state, which must continue identically.
/// `fast` turns the host fast path for small params on or off before the first and after the
/// `k`-th step. Returns the final params.
fn run_case(case: &Value, resume_at: Option<usize>, fast: (bool, bool)) -> Vec<Tensor> {
    run_case_on(case, resume_at, fast, Device::Cpu)
}

/// [`run_case`] with the params on `device`.
fn run_case_on(
    case: &Value,
    resume_at: Option<usize>,
    fast: (bool, bool),
    device: Device,
) -> Vec<Tensor> {
    set_small_tensor_fast_path(fast.0);
    let name = case["name"].as_str().expect("test setup");
    let kind = kind_of(case);
    let tol = if kind == Kind::Float { 1e-6 } else { 1e-12 };
    let params: Vec<(String, Tensor)> = NAMES
        .iter()
        .map(|n| {
            (
                n.to_string(),
                tensor(&case["init"][n], kind)
                    .to_device(device)
                    .set_requires_grad(true),
            )
        })
        .collect();
    let mut optim = build_optimizer(case);
    let metrics = case["scheduler"].get("metrics").and_then(Value::as_array);
    let grads = case["grads"].as_array().expect("test setup");
    for (k, grads_k) in grads.iter().enumerate() {
        for (n, p) in &params {
            set_grad(p, &tensor(&grads_k[n.as_str()], kind).to_device(device));
        }
        optim.step(&params).expect("test setup");
        optim
            .scheduler_step(metrics.map(|m| m[k].as_f64().expect("test setup")))
            .expect("test setup");
        for (n, p) in &params {
            let want = values(&tensor(&case["trajectory"][k][n.as_str()], kind));
            let got = values(p);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * w.abs().max(1.0),
                    "{name}: step {} param {n}[{i}]: ppl {g}, torch {w}",
                    k + 1
                );
            }
            let want_lr = case["lrs"][k][n.as_str()].as_f64().expect("test setup");
            let got_lr = optim.lr(n).expect("test setup");
            assert!(
                (got_lr - want_lr).abs() <= 1e-15 * want_lr.abs(),
                "{name}: step {} lr of {n}: ppl {got_lr}, torch {want_lr}",
                k + 1
            );
        }
        if resume_at == Some(k + 1) {
            set_small_tensor_fast_path(fast.1);
            let state = optim.state().expect("test setup");
            let mut fresh = build_optimizer(case);
            fresh.load_state(state).expect("test setup");
            optim = fresh;
        }
    }
    set_small_tensor_fast_path(true);
    params.into_iter().map(|(_, p)| p.detach()).collect()
}

#[test]
fn optimizers_match_torch() {
    let fx = fixtures();
    let cases = fx["cases"].as_array().expect("test setup");
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in cases {
        // Small CPU params: Adam and AdamW on the host, and through libtorch ops.
        run_case(case, None, (true, true));
        run_case(case, None, (false, false));
        // Switching paths mid-run.
        run_case(case, Some(2), (true, false));
        run_case(case, Some(4), (false, true));
    }
}

/// On a GPU, where the host fast path never applies, the libtorch-op path (CUDA kernels) follows
/// torch too, and resumes from its state. Skipped without CUDA.
#[test]
fn optimizers_match_torch_on_cuda() {
    if !tch::Cuda::is_available() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let fx = fixtures();
    for case in fx["cases"].as_array().expect("test setup") {
        run_case_on(case, Some(3), (true, true), Device::Cuda(0));
    }
}

#[test]
fn state_round_trip_continues_identically() {
    let fx = fixtures();
    for case in fx["cases"].as_array().expect("test setup") {
        for fast in [true, false] {
            let straight = run_case(case, None, (fast, fast));
            let resumed = run_case(case, Some(3), (fast, fast));
            for (a, b) in straight.iter().zip(&resumed) {
                assert!(
                    a.equal(b),
                    "{}: resumed run differs (fast path {fast})",
                    case["name"].as_str().expect("test setup")
                );
            }
        }
    }
}

#[test]
fn clip_grad_norm_returns_torch_total_norm() {
    let fx = fixtures();
    let mut checked = 0;
    for case in fx["cases"].as_array().expect("test setup") {
        let Some(norms) = case.get("total_norms").and_then(Value::as_array) else {
            continue;
        };
        let kind = kind_of(case);
        let clip = &case["clip_all"];
        let norm_type = match &clip["norm_type"] {
            Value::String(s) if s == "inf" => f64::INFINITY,
            Value::Null => 2.0,
            v => v.as_f64().expect("test setup"),
        };
        for (k, want) in norms.iter().enumerate() {
            let params: Vec<(String, Tensor)> = NAMES
                .iter()
                .map(|n| {
                    let p = tensor(&case["init"][n], kind).set_requires_grad(true);
                    set_grad(&p, &tensor(&case["grads"][k][n], kind));
                    (n.to_string(), p)
                })
                .collect();
            let got = ppl::optim::clip_grad_norm(
                &params,
                clip["max_norm"].as_f64().expect("test setup"),
                norm_type,
            )
            .expect("test setup");
            let want = want.as_f64().expect("test setup");
            assert!(
                (got - want).abs() <= 1e-6 * want,
                "{}: norm {got} vs {want}",
                case["name"]
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

// ---------------------------------------------------------------------------------------------
// Behaviour that the fixtures do not cover.

fn leaf(values: &[f32]) -> Tensor {
    Tensor::from_slice(values).set_requires_grad(true)
}

#[test]
fn clip_grad_value_and_norm_basics() -> ppl::Result<()> {
    let x = leaf(&[0.0, 0.0]);
    set_grad(&x, &Tensor::from_slice(&[3.0f32, -4.0]));
    let params = vec![("x".to_string(), x.shallow_clone())];
    // Below the limit nothing changes (the coefficient is clamped to 1).
    assert_eq!(ppl::optim::clip_grad_norm(&params, 10.0, 2.0)?, 5.0);
    assert_eq!(values(&x.grad()), vec![3.0, -4.0]);
    ppl::optim::clip_grad_value(&params, 1.0)?;
    assert_eq!(values(&x.grad()), vec![1.0, -1.0]);
    // No gradients at all: norm 0.
    let y = leaf(&[1.0]);
    assert_eq!(
        ppl::optim::clip_grad_norm(&[("y".into(), y)], 1.0, 2.0)?,
        0.0
    );
    Ok(())
}

#[test]
fn clip_settings_per_param_name() -> ppl::Result<()> {
    // Pyro's callable clip_args: values of `a` clamped to 0.1, the norm of `b` limited to 1.
    let sgd = Sgd::new(SgdConfig {
        lr: 1.0,
        ..Default::default()
    });
    let mut optim = Clipped::per_param(sgd, |name: &str| {
        if name == "a" {
            ClipConfig {
                clip_value: Some(0.1),
                ..Default::default()
            }
        } else {
            ClipConfig {
                max_norm: Some(1.0),
                ..Default::default()
            }
        }
    });
    let (a, b) = (leaf(&[0.0, 0.0]), leaf(&[0.0, 0.0]));
    set_grad(&a, &Tensor::from_slice(&[3.0f32, -0.05]));
    set_grad(&b, &Tensor::from_slice(&[3.0f32, 4.0]));
    optim.step(&[
        ("a".to_string(), a.shallow_clone()),
        ("b".to_string(), b.shallow_clone()),
    ])?;
    assert_eq!(values(&a), vec![-0.1f32 as f64, 0.05f32 as f64]);
    let vb = values(&b);
    assert!(
        (vb[0] + 0.6).abs() < 1e-6 && (vb[1] + 0.8).abs() < 1e-6,
        "{vb:?}"
    );
    assert_eq!(optim.last_norm(), Some(5.0));
    Ok(())
}

#[test]
fn per_param_settings_follow_the_name() -> ppl::Result<()> {
    let mut adam = Adam::per_param(|name: &str| AdamConfig {
        lr: if name.starts_with("baseline") {
            1e-3
        } else {
            1e-4
        },
        ..Default::default()
    });
    let params = vec![
        ("baseline.w".to_string(), leaf(&[0.0])),
        ("loc".to_string(), leaf(&[0.0])),
    ];
    for (_, p) in &params {
        set_grad(p, &Tensor::from_slice(&[1.0f32]));
    }
    adam.step(&params)?;
    assert_eq!(adam.lr("baseline.w"), Some(1e-3));
    assert_eq!(adam.lr("loc"), Some(1e-4));
    assert_eq!(adam.config("loc").map(|c| c.lr), Some(1e-4));
    assert!(adam.config("never_seen").is_none());
    // Adam's first step is lr * sign(grad).
    assert!((values(&params[0].1)[0] + 1e-3).abs() < 1e-9);
    assert!((values(&params[1].1)[0] + 1e-4).abs() < 1e-9);
    Ok(())
}

#[test]
fn a_param_seen_later_starts_fresh() -> ppl::Result<()> {
    // `b` joins at the third step: its trajectory is that of a fresh optimizer on `b` alone.
    let config = AdamConfig {
        lr: 0.1,
        ..Default::default()
    };
    let mut optim = Adam::new(config.clone());
    let mut alone = Adam::new(config);
    let (a, b, b_alone) = (leaf(&[1.0, 2.0]), leaf(&[3.0]), leaf(&[3.0]));
    for k in 0..5 {
        set_grad(&a, &Tensor::from_slice(&[1.0f32, -1.0]));
        let mut params = vec![("a".to_string(), a.shallow_clone())];
        if k >= 2 {
            let g = Tensor::from_slice(&[0.3f32 * k as f32 - 0.5]);
            set_grad(&b, &g);
            set_grad(&b_alone, &g);
            params.push(("b".to_string(), b.shallow_clone()));
            alone.step(&[("b".to_string(), b_alone.shallow_clone())])?;
        }
        optim.step(&params)?;
    }
    assert!(b.equal(&b_alone));
    // Its learning rate starts at the configured value although the scheduler already decayed
    // `a`'s twice.
    let mut sched = ExponentialLr::new(Sgd::new(SgdConfig::default()), 0.5);
    for k in 0..3 {
        let mut params = vec![("a".to_string(), a.shallow_clone())];
        if k == 2 {
            params.push(("b".to_string(), b.shallow_clone()));
        }
        sched.step(&params)?;
        if k < 2 {
            sched.scheduler_step(None)?;
        }
    }
    assert_eq!(sched.lr("a"), Some(1e-3 * 0.25));
    assert_eq!(sched.lr("b"), Some(1e-3));
    Ok(())
}

#[test]
fn switching_the_fast_path_mid_run_keeps_the_state() -> ppl::Result<()> {
    // Host path for three steps, then libtorch ops (the moments move from host vectors into
    // tensors), then the host again; against libtorch ops throughout.
    let run = |modes: [bool; 3]| -> ppl::Result<Vec<f64>> {
        let mut adam = Adam::new(AdamConfig {
            lr: 0.1,
            amsgrad: true,
            ..Default::default()
        });
        let x = leaf(&[1.0, -2.0, 0.5]);
        for k in 0..9 {
            set_small_tensor_fast_path(modes[k / 3]);
            let g = Tensor::from_slice(&[0.5f32 - k as f32 * 0.1, 0.2, -1.0 + k as f32 * 0.3]);
            set_grad(&x, &g);
            adam.step(&[("x".to_string(), x.shallow_clone())])?;
        }
        set_small_tensor_fast_path(true);
        Ok(values(&x))
    };
    let switched = run([true, false, true])?;
    let reference = run([false, false, false])?;
    for (a, b) in switched.iter().zip(&reference) {
        assert!((a - b).abs() < 1e-6, "{switched:?} vs {reference:?}");
    }
    Ok(())
}

#[test]
fn clipped_adam_decays_lr_even_without_gradient() -> ppl::Result<()> {
    let mut optim = ClippedAdam::new(ClippedAdamConfig {
        lr: 0.1,
        lrd: 0.5,
        ..Default::default()
    });
    let x = leaf(&[1.0]); // never backpropagated: no gradient
    optim.step(&[("x".to_string(), x.shallow_clone())])?;
    assert_eq!(optim.lr("x"), Some(0.05));
    assert_eq!(values(&x), vec![1.0]);
    // Its state has the learning rate but no moments yet; it round-trips.
    let state = optim.state()?;
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].0, "param/x/lr");
    let mut fresh = ClippedAdam::default();
    fresh.load_state(state)?;
    assert_eq!(fresh.lr("x"), Some(0.05));
    Ok(())
}

#[test]
fn load_state_rejects_other_optimizers_state() -> ppl::Result<()> {
    let mut adam = Adam::default();
    let x = leaf(&[1.0]);
    set_grad(&x, &Tensor::from_slice(&[1.0f32]));
    adam.step(&[("x".to_string(), x.shallow_clone())])?;
    let state = adam.state()?;
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..Default::default()
    });
    let err = sgd.load_state(adam.state()?).expect_err("must fail");
    assert!(err.to_string().contains("SGD"), "{err}");
    // A scheduler's state is not a plain optimizer's, and the other way round.
    let mut sched = StepLr::new(Adam::default(), 2, 0.5)?;
    assert!(sched.load_state(adam.state()?).is_err());
    sched.load_state(
        state
            .into_iter()
            .map(|(k, t)| (format!("inner/{k}"), t))
            .collect(),
    )?;
    assert!(Adam::default().load_state(sched.state()?).is_err());
    Ok(())
}

#[test]
fn scheduler_argument_errors() {
    let err = ReduceLrOnPlateau::new(Adam::default(), ReduceLrOnPlateauConfig::default())
        .expect("test setup")
        .scheduler_step(None)
        .expect_err("must fail");
    assert!(err.to_string().contains("metric"), "{err}");
    assert!(ReduceLrOnPlateau::new(
        Adam::default(),
        ReduceLrOnPlateauConfig {
            factor: 1.0,
            ..Default::default()
        }
    )
    .is_err());
    assert!(StepLr::new(Adam::default(), 0, 0.1).is_err());
    assert!(CosineAnnealingLr::new(Adam::default(), 0, 0.0).is_err());
}

#[test]
fn nesterov_needs_momentum() {
    let mut sgd = Sgd::new(SgdConfig {
        nesterov: true,
        ..Default::default()
    });
    let x = leaf(&[1.0]);
    set_grad(&x, &Tensor::from_slice(&[1.0f32]));
    assert!(sgd.step(&[("x".to_string(), x)]).is_err());
}

// ---------------------------------------------------------------------------------------------
// SVI checkpoints.

#[model]
fn normal_model(data: &Tensor) -> ppl::Result<()> {
    let z = sample!(Normal::new(0.0, 1.0)?);
    let _p = plate!("data", data.size()[0]);
    sample!("obs", Normal::new(&z, 1.0)?, obs = data);
    Ok(())
}

#[guide]
fn normal_guide(_data: &Tensor) -> ppl::Result<()> {
    let loc = param!(Tensor::from(0.0f32));
    let scale = param!(Tensor::from(1.0f32), constraint = positive);
    let _z = sample!("z", Normal::new(&loc, &scale)?);
    Ok(())
}

fn snapshot() -> HashMap<String, Tensor> {
    with_param_store(|ps| {
        ps.named_parameters()
            .map(|(n, t)| (n.to_string(), t.detach().copy()))
            .collect()
    })
}

/// Runs SVI with `make()`'s optimizer for `n` steps, checkpointing after `n / 2`; then, from a
/// cleared store and a fresh optimizer, loads the checkpoint and runs the rest. Both runs reseed
/// torch before step `n / 2 + 1`; the final params must be bit-identical.
fn checkpoint_resumes_exactly<O: Optimizer + LrScheduler>(
    make: impl Fn() -> O,
    tag: &str,
) -> ppl::Result<()> {
    let n = 40;
    let data = Tensor::from_slice(&[0.9f32, 1.4, 2.1, 0.3]);
    let path = std::env::temp_dir().join(format!(
        "ppl-optim-checkpoint-{tag}-{}.pt",
        std::process::id()
    ));

    clear_param_store();
    set_rng_seed(1);
    let mut svi = Svi::new(
        || normal_model(&data),
        || normal_guide(&data),
        make(),
        TraceElbo::default(),
    );
    for _ in 0..n / 2 {
        let loss = svi.step()?;
        svi.optim.scheduler_step(Some(loss))?;
    }
    save_checkpoint(&path, &svi.optim)?;
    set_rng_seed(7);
    for _ in n / 2..n {
        let loss = svi.step()?;
        svi.optim.scheduler_step(Some(loss))?;
    }
    let straight = snapshot();

    clear_param_store();
    let mut optim = make();
    if tag == "adam" {
        // Also through the explicit-device entry point.
        ppl::optim::load_checkpoint_to(&path, &mut optim, Some(Device::Cpu))?;
    } else {
        load_checkpoint(&path, &mut optim)?;
    }
    let mut svi = Svi::new(
        || normal_model(&data),
        || normal_guide(&data),
        optim,
        TraceElbo::default(),
    );
    set_rng_seed(7);
    for _ in n / 2..n {
        let loss = svi.step()?;
        svi.optim.scheduler_step(Some(loss))?;
    }
    let resumed = snapshot();
    let _ = std::fs::remove_file(&path);

    assert_eq!(straight.len(), 2);
    for (name, a) in &straight {
        let b = &resumed[name];
        assert!(
            a.equal(b),
            "{tag}: param {name}: uninterrupted {a:?}, resumed {b:?}"
        );
    }
    Ok(())
}

struct Every<O>(O);

impl<O: Optimizer> Optimizer for Every<O> {
    fn step(&mut self, params: &[(String, Tensor)]) -> ppl::Result<()> {
        self.0.step(params)
    }
    fn state(&self) -> ppl::Result<Vec<(String, Tensor)>> {
        self.0.state()
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> ppl::Result<()> {
        self.0.load_state(state)
    }
}

impl<O> LrScheduler for Every<O> {
    fn scheduler_step(&mut self, _metric: Option<f64>) -> ppl::Result<()> {
        Ok(())
    }
}

#[test]
fn svi_checkpoint_resumes_bit_identically() -> ppl::Result<()> {
    checkpoint_resumes_exactly(
        || {
            Every(Adam::new(AdamConfig {
                lr: 0.05,
                ..Default::default()
            }))
        },
        "adam",
    )?;
    checkpoint_resumes_exactly(
        || {
            let clip = ClipConfig {
                max_norm: Some(5.0),
                ..Default::default()
            };
            ExponentialLr::new(
                Clipped::new(
                    RmsProp::new(RmsPropConfig {
                        momentum: 0.5,
                        centered: true,
                        ..Default::default()
                    }),
                    clip,
                ),
                0.98,
            )
        },
        "rmsprop-exp",
    )?;
    checkpoint_resumes_exactly(
        || {
            ReduceLrOnPlateau::new(
                StepLr::new(
                    ClippedAdam::new(ClippedAdamConfig {
                        lr: 0.05,
                        lrd: 0.99,
                        ..Default::default()
                    }),
                    3,
                    0.7,
                )
                .expect("valid step size"),
                ReduceLrOnPlateauConfig {
                    patience: 2,
                    cooldown: 1,
                    ..Default::default()
                },
            )
            .expect("valid factor")
        },
        "clipped-adam-step-plateau",
    )?;
    Ok(())
}

/// A checkpoint holds the random streams: resumed without any re-seeding (and after other draws
/// and another seed), SVI makes the same draws as the run that never stopped, so the losses and
/// the params agree bit for bit.
#[test]
fn checkpoint_holds_the_random_streams() -> ppl::Result<()> {
    resume_matches_an_unbroken_run(false, 3, "pt")
}

/// The same with checkpoints written as safetensors (chosen by the extension), eager and
/// compiled; the file's params also load into a param store on their own, and no temporary file
/// is left beside it.
#[test]
fn safetensors_checkpoints_resume_draw_for_draw() -> ppl::Result<()> {
    resume_matches_an_unbroken_run(false, 5, "safetensors")?;
    resume_matches_an_unbroken_run(true, 6, "safetensors")?;
    let data = Tensor::from_slice(&[0.9f32, 1.4, 2.1, 0.3]);
    let dir = std::env::temp_dir().join(format!("ppl-st-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("c.safetensors");
    clear_param_store();
    set_rng_seed(1);
    let mut svi = Svi::new(
        || normal_model(&data),
        || normal_guide(&data),
        Adam::default(),
        TraceElbo::default(),
    );
    svi.step()?;
    save_checkpoint(&path, &svi.optim)?;
    let saved = snapshot();
    clear_param_store();
    with_param_store(|ps| ps.load_safetensors(&path, None))?;
    let loaded = snapshot();
    assert_eq!(loaded.len(), saved.len());
    for (name, t) in &saved {
        assert!(loaded[name].equal(t), "{name}");
    }
    let files: Vec<_> = std::fs::read_dir(&dir).expect("ls").collect();
    assert_eq!(files.len(), 1, "only the checkpoint is left: {files:?}");
    // A param store file is not a checkpoint.
    with_param_store(|ps| ps.save_safetensors(dir.join("p.safetensors")))?;
    let e = load_checkpoint(dir.join("p.safetensors"), &mut Adam::default())
        .expect_err("not a checkpoint")
        .to_string();
    assert!(
        e.contains("ppl-param-store") && e.contains("ppl-checkpoint"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Trains 10 steps, saves a checkpoint, trains 10 more; then, after other draws and another
/// seed, loads the checkpoint into a fresh `Svi` and trains 10 steps: losses and params must be
/// those of the unbroken run, bit for bit (compiled steps with `jit`).
fn resume_matches_an_unbroken_run(jit: bool, seed: u64, ext: &str) -> ppl::Result<()> {
    let data = Tensor::from_slice(&[0.9f32, 1.4, 2.1, 0.3]);
    let path = std::env::temp_dir().join(format!(
        "ppl-optim-checkpoint-rng-{jit}-{}.{ext}",
        std::process::id()
    ));
    let adam = || {
        Adam::new(AdamConfig {
            lr: 0.05,
            ..Default::default()
        })
    };
    let svi = |optim: Adam| {
        Svi::new(
            || normal_model(&data),
            || normal_guide(&data),
            optim,
            TraceElbo::default(),
        )
        .jit_compile(jit)
    };
    clear_param_store();
    set_rng_seed(seed);
    let mut first = svi(adam());
    for _ in 0..10 {
        first.step()?;
    }
    assert_eq!(first.is_compiled(), jit);
    save_checkpoint(&path, &first.optim)?;
    let straight_losses: Vec<f64> = (0..10).map(|_| first.step()).collect::<ppl::Result<_>>()?;
    let straight = snapshot();

    // Another run's draws and seed in between.
    let _ = Tensor::randn([100], (Kind::Float, Device::Cpu));
    set_rng_seed(99);
    clear_param_store();
    let mut optim = adam();
    load_checkpoint(&path, &mut optim)?;
    let mut resumed_svi = svi(optim);
    let resumed_losses: Vec<f64> = (0..10)
        .map(|_| resumed_svi.step())
        .collect::<ppl::Result<_>>()?;
    assert_eq!(resumed_svi.is_compiled(), jit);
    let resumed = snapshot();
    let _ = std::fs::remove_file(&path);
    assert_eq!(straight_losses, resumed_losses);
    for (name, a) in &straight {
        assert!(a.equal(&resumed[name]), "param {name}");
    }
    Ok(())
}

#[test]
fn svi_can_borrow_its_optimizer() -> ppl::Result<()> {
    clear_param_store();
    let data = Tensor::from_slice(&[0.5f32, 1.5]);
    let mut adam = ExponentialLr::new(Adam::default(), 0.5);
    {
        let mut svi = Svi::new(
            || normal_model(&data),
            || normal_guide(&data),
            &mut adam,
            TraceElbo::default(),
        );
        svi.step()?;
        svi.optim.scheduler_step(None)?;
    }
    assert_eq!(adam.lr("loc"), Some(5e-4));
    assert!(adam.state()?.len() > 2);
    clear_param_store();
    Ok(())
}

#[test]
fn checkpoint_needs_optimizer_state() -> ppl::Result<()> {
    clear_param_store();
    with_param_store(|ps| ps.set("w", &Tensor::from(1.0f32), Constraint::Real, None))?;
    let path = std::env::temp_dir().join(format!("ppl-optim-plain-{}.pt", std::process::id()));
    with_param_store(|ps| ps.save(&path))?;
    let err = load_checkpoint(&path, &mut Adam::default()).expect_err("must fail");
    assert!(err.to_string().contains("not a checkpoint"), "{err}");
    // A checkpoint is also a param store file.
    save_checkpoint(&path, &Adam::default())?;
    clear_param_store();
    with_param_store(|ps| ps.load(&path, None))?;
    assert_eq!(get_param("w")?.double_value(&[]), 1.0);
    let _ = std::fs::remove_file(&path);
    clear_param_store();
    Ok(())
}

#[model]
fn coin(flips: &Tensor) -> ppl::Result<()> {
    let fairness = sample!(Beta::new(10.0, 10.0)?);
    let _data = plate!("data", flips.size()[0]);
    sample!("obs", Bernoulli::new(&fairness)?, obs = flips);
    Ok(())
}

#[guide]
fn coin_guide(_flips: &Tensor) -> ppl::Result<()> {
    let alpha_q = param!(Tensor::from(15.0f32), constraint = positive);
    let beta_q = param!(Tensor::from(15.0f32), constraint = positive);
    let _fairness = sample!("fairness", Beta::new(&alpha_q, &beta_q)?);
    Ok(())
}

/// The same for compiled steps: compiling draws nothing later steps see, and every compiled
/// step seeds its draws from ppl's generator (which the checkpoint holds), so a resumed compiled
/// run (which compiles again) makes the same draws as the run that never stopped.
#[test]
fn checkpoint_resumes_compiled_steps_draw_for_draw() -> ppl::Result<()> {
    resume_matches_an_unbroken_run(true, 4, "pt")
}

/// A NaN mid-training (issue 15's bad-input corpus): the data turn NaN at step 6; that step
/// fails with an error naming the observed site, changes no param (the loss is checked before
/// the optimizer steps), and the checkpoint written after step 5 still loads, bit for bit, into
/// a fresh store and optimizer.
#[test]
fn nan_loss_mid_training_names_the_site_and_keeps_the_last_checkpoint() -> ppl::Result<()> {
    use std::cell::Cell;
    let good = Tensor::from_slice(&[0.9f32, 1.4, 2.1, 0.3]);
    let bad = Tensor::from_slice(&[0.9f32, f32::NAN, 2.1, 0.3]);
    let path = std::env::temp_dir().join(format!("ppl-nan-checkpoint-{}.pt", std::process::id()));
    let step = Cell::new(0usize);
    clear_param_store();
    set_rng_seed(3);
    let data = || {
        if step.get() >= 6 {
            bad.shallow_clone()
        } else {
            good.shallow_clone()
        }
    };
    let mut svi = Svi::new(
        || normal_model(&data()),
        || normal_guide(&data()),
        Adam::new(AdamConfig {
            lr: 0.05,
            ..Default::default()
        }),
        TraceElbo::default(),
    );
    for _ in 0..5 {
        step.set(step.get() + 1);
        svi.step()?;
        save_checkpoint(&path, &svi.optim)?;
    }
    let saved = snapshot();
    step.set(6);
    let e = svi.step().expect_err("NaN data").to_string();
    assert!(e.contains("obs"), "the error names the site: {e}");
    // The failed step left the params as they were.
    let after = snapshot();
    for (name, t) in &saved {
        assert!(after[name].equal(t), "{name} changed by the failed step");
    }
    // The last good checkpoint loads into a fresh store and optimizer.
    clear_param_store();
    let mut optim = Adam::default();
    load_checkpoint(&path, &mut optim)?;
    let loaded = snapshot();
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.len(), saved.len());
    for (name, t) in &saved {
        assert!(loaded[name].equal(t), "{name} differs after loading");
        assert!(
            bool::try_from(loaded[name].isfinite().all())?,
            "{name} is not finite"
        );
    }
    Ok(())
}
