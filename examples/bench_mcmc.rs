//! Timing of NUTS on the peer benchmarks (`eight_schools_nuts`, `logreg_nuts`, and the
//! semi-supervised HMM: `hmm_forward_nuts`, `hmm_enum_nuts`, `hmm_dhmm_nuts`), with the settings
//! of the Pyro and NumPyro scripts: NUTS defaults, one chain, seed 0; eight schools 1000 warmup +
//! 1000 samples, logistic regression 500 + 500, HMM 1000 + 1000 (`--hmm-draws N` for N + N;
//! eager runs take `--hmm-slow-draws`, 100 + 100 by default). Prints one JSON line per workload with the peers'
//! fields (total seconds, ms per leapfrog step, min ESS, min ESS/s, step size, divergences, mean
//! acceptance probability).
//!
//! `cargo run --release --example bench_mcmc [-- --only eight_schools_nuts] [--repeat 3]
//! [--jit on|off|both]`: `system` is `ppl` with compiled potentials (`jit_compile`), `ppl-eager`
//! with libtorch's eager autograd.

use std::time::Instant;

use ppl::infer::mcmc::{diagnostics, Mcmc, Nuts};
use ppl::prelude::*;
use ppl_examples::hmm::{semi_supervised_hmm, HmmData, Method};

#[model]
fn eight_schools(sigma: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 5.0)?);
    let tau = sample!(HalfCauchy::new(5.0)?);
    let _j = plate!("J", sigma.size()[0]);
    let theta_tilde = sample!(Normal::new(0.0, 1.0)?);
    let theta = &mu + &tau * &theta_tilde;
    sample!("obs", Normal::new(&theta, sigma)?, obs = y);
    Ok(())
}

#[model]
fn logreg(x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let d = x.size()[1];
    let w = sample!(Normal::new(Tensor::zeros([d], (Kind::Float, x.device())), 1.0)?.to_event(1)?);
    let b = sample!(Normal::new(0.0, 1.0)?);
    let _data = plate!("data", x.size()[0]);
    let logits = x.matmul(&w) + &b;
    sample!("obs", Bernoulli::from_logits(&logits)?, obs = y);
    Ok(())
}

/// CPU seconds (user + system) of this process so far, from `/proc/self/stat` (0 where that is
/// unavailable). On a shared machine wall time includes waiting for a core; CPU time does not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 14th field overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

/// Runs and reports one workload; `iterations` is warm-up plus sampling iterations.
fn bench(
    name: &str,
    jit: bool,
    iterations: usize,
    mcmc: &mut Mcmc,
    run: &dyn Fn(&mut Mcmc) -> ppl::Result<()>,
) {
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    run(mcmc).expect("mcmc run");
    let total = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let ch = &mcmc.chains()[0];
    let diag = mcmc.diagnostics().expect("diagnostics");
    let mut min_ess = f64::INFINITY;
    let mut ess_fields = Vec::new();
    for (site, d) in &diag {
        for &e in &d.n_eff {
            min_ess = min_ess.min(e);
        }
        let v: Vec<String> = d.n_eff.iter().map(|e| format!("{e:.1}")).collect();
        ess_fields.push(format!("\"{site}\": [{}]", v.join(", ")));
    }
    let leapfrog = ch.warmup_grad_evals + ch.sample_grad_evals;
    let samples = mcmc.get_samples().expect("samples");
    let means: Vec<String> = samples
        .iter()
        .map(|(k, v)| {
            let m = v.to_kind(Kind::Double).mean_dim(0, false, Kind::Double);
            let m: Vec<f64> = Vec::try_from(m.reshape([-1])).expect("means");
            let m: Vec<String> = m.iter().map(|x| format!("{x:.4}")).collect();
            format!("\"{k}\": [{}]", m.join(", "))
        })
        .collect();
    let mean_steps = diagnostics::mean(
        &ch.stats
            .iter()
            .map(|s| s.num_steps as f64)
            .collect::<Vec<_>>(),
    );
    println!(
        "{{\"workload\": \"{name}\", \"system\": \"{}\", \"jit_compile\": {jit}, \
         \"total_s\": {total:.4}, \
         \"cpu_s\": {cpu:.2}, \"ms_per_leapfrog_cpu\": {:.5}, \
         \"warmup_s\": {:.4}, \"sampling_s\": {:.4}, \"min_ess\": {:.1}, \"ess_per_s\": {:.3}, \
         \"num_divergences\": {}, \"mean_accept_prob\": {:.3}, \"step_size\": {:.5}, \
         \"sampling_num_steps_mean\": {:.2}, \"leapfrog_steps_total\": {leapfrog}, \
         \"ms_per_leapfrog\": {:.5}, \"leapfrog_per_draw\": {:.2}, \"iterations\": {iterations}, \"post_mean\": {{{}}}, \"ess\": {{{}}}}}",
        if jit { "ppl" } else { "ppl-eager" },
        1000.0 * cpu / leapfrog.max(1) as f64,
        ch.warmup_seconds,
        ch.sample_seconds,
        min_ess,
        min_ess / total,
        mcmc.num_divergences(),
        ch.mean_accept_prob(),
        ch.step_size,
        mean_steps,
        json_num(1000.0 * total / leapfrog.max(1) as f64),
        leapfrog as f64 / iterations.max(1) as f64,
        means.join(", "),
        ess_fields.join(", "),
    );
}

fn main() {
    let only: String = ppl_examples::arg("only", String::new());
    let repeat: usize = ppl_examples::arg("repeat", 1);
    // `on`: compiled potentials (Pyro's jit_compile), `off`: libtorch eager, `both`.
    let jit: String = ppl_examples::arg("jit", "both".to_string());
    let modes: Vec<bool> = match jit.as_str() {
        "on" => vec![true],
        "off" => vec![false],
        _ => vec![true, false],
    };
    let device = ppl_examples::device_from_args();
    // The HMM workloads: NumPyro's settings (1000 + 1000), smaller with --hmm-draws N.
    let hmm = HmmData::load();
    // Eager libtorch (22 ms per leapfrog step on the forward model) takes 100 + 100
    // (`--hmm-slow-draws N`): compare ms per leapfrog.
    let hmm_draws: usize = ppl_examples::arg("hmm-draws", 1000);
    let hmm_slow_draws: usize = ppl_examples::arg("hmm-slow-draws", 100);
    let (_, es) = ppl_examples::read_numeric_csv("eight_schools.csv");
    let y: Vec<f32> = es.iter().map(|r| r[1] as f32).collect();
    let sigma: Vec<f32> = es.iter().map(|r| r[2] as f32).collect();
    let (_, lr) = ppl_examples::read_numeric_csv("logreg.csv");
    let n = lr.len() as i64;
    let xs: Vec<f32> = lr
        .iter()
        .flat_map(|r| r[..10].iter().map(|&v| v as f32))
        .collect();
    let ys: Vec<f32> = lr.iter().map(|r| r[10] as f32).collect();
    for (_, jit) in (0..repeat).flat_map(|r| modes.iter().map(move |&m| (r, m))) {
        if only.is_empty() || only.contains("eight_schools_nuts") {
            let y = Tensor::from_slice(&y).to_device(device);
            let sigma = Tensor::from_slice(&sigma).to_device(device);
            let mut mcmc = Mcmc::new(Nuts::new().jit_compile(jit))
                .num_samples(1000)
                .warmup_steps(1000)
                .seed(0)
                .progress_bar(false);
            bench("eight_schools_nuts", jit, 2000, &mut mcmc, &|m| {
                m.run(|| eight_schools(&sigma, &y))
            });
        }
        for (name, method) in [
            ("hmm_forward_nuts", Method::Forward),
            ("hmm_enum_nuts", Method::Enum),
            ("hmm_dhmm_nuts", Method::Dhmm),
        ] {
            // Eager, the enumerated model takes ~0.1 s per gradient: compiled only.
            if !(only.is_empty() || only.contains(name)) || (!jit && method == Method::Enum) {
                continue;
            }
            // Compiled, every method takes NumPyro's settings; eager runs are slow.
            let n = if jit {
                hmm_draws
            } else {
                hmm_slow_draws.min(hmm_draws)
            };
            let (hmm_warmup, hmm_samples) = (n, n);
            let mut mcmc = Mcmc::new(Nuts::new().jit_compile(jit))
                .num_samples(hmm_samples)
                .warmup_steps(hmm_warmup)
                .seed(0)
                .progress_bar(false);
            bench(name, jit, hmm_warmup + hmm_samples, &mut mcmc, &|m| {
                m.run(|| semi_supervised_hmm(&hmm, method))
            });
        }
        if only.is_empty() || only.contains("logreg_nuts") {
            let x = Tensor::from_slice(&xs).reshape([n, 10]).to_device(device);
            let yt = Tensor::from_slice(&ys).to_device(device);
            let mut mcmc = Mcmc::new(Nuts::new().jit_compile(jit))
                .num_samples(500)
                .warmup_steps(500)
                .seed(0)
                .progress_bar(false);
            bench("logreg_nuts", jit, 1000, &mut mcmc, &|m| {
                m.run(|| logreg(&x, &yt))
            });
        }
        if only.is_empty() || only.contains("neutra_funnel") {
            bench_neutra(jit).expect("neutra_funnel");
        }
    }
}

/// NeuTra on Neal's funnel (`examples/neutra_models.rs`, `bench/peers/common.py`'s `NEUTRA`):
/// NUTS on the funnel, the IAF guide's SVI fit, NUTS in the flow's base space. One record.
fn bench_neutra(jit: bool) -> ppl::Result<()> {
    use ppl_examples::neutra::{fit_guide, neutra, vanilla, Settings};
    set_rng_seed(0);
    clear_param_store();
    let s = Settings {
        jit,
        ..Settings::default()
    };
    let plain = vanilla(&s)?;
    let (guide, svi_s, loss) = fit_guide(&s)?;
    let nt = neutra(&s, &guide)?;
    let total = svi_s + nt.seconds;
    let draws = (s.warmup + s.samples) as f64;
    println!(
        "{{\"workload\": \"neutra_funnel\", \"system\": \"{}\", \"jit_compile\": {jit}, \
         \"config\": {{\"dim\": {}, \"warmup\": {}, \"samples\": {}, \"svi_steps\": {}, \
         \"lr\": {}, \"particles\": {}, \"num_flows\": {}, \"hidden\": {:?}}}, \
         \"vanilla_total_s\": {:.4}, \"vanilla_divergences\": {}, \"vanilla_min_ess\": {:.1}, \
         \"vanilla_min_ess_per_s\": {:.3}, \"vanilla_ms_per_leapfrog\": {:.5}, \
         \"vanilla_leapfrog_per_draw\": {:.2}, \"vanilla_y_sd\": {:.3}, \
         \"svi_s\": {svi_s:.4}, \"svi_final_loss\": {loss:.4}, \
         \"neutra_nuts_s\": {:.4}, \"neutra_divergences\": {}, \"neutra_min_ess\": {:.1}, \
         \"ms_per_leapfrog\": {:.5}, \"leapfrog_per_draw\": {:.2}, \
         \"total_s\": {total:.4}, \"min_ess_per_s\": {:.3}, \
         \"neutra_min_ess_per_s_sampling_only\": {:.3}, \"y_mean\": {:.3}, \"y_sd\": {:.3}, \
         \"status\": \"ok\"}}",
        if jit { "ppl" } else { "ppl-eager" },
        s.dim,
        s.warmup,
        s.samples,
        s.svi_steps,
        s.lr,
        s.particles,
        s.num_flows,
        s.hidden,
        plain.seconds,
        plain.divergences,
        plain.min_ess,
        plain.min_ess / plain.seconds,
        1000.0 * plain.seconds / plain.leapfrog.max(1) as f64,
        plain.leapfrog as f64 / draws,
        plain.y_sd,
        nt.seconds,
        nt.divergences,
        nt.min_ess,
        1000.0 * nt.seconds / nt.leapfrog.max(1) as f64,
        nt.leapfrog as f64 / draws,
        nt.min_ess / total,
        nt.min_ess / nt.seconds,
        nt.y_mean,
        nt.y_sd,
    );
    Ok(())
}
