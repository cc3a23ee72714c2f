//! The semi-supervised HMM (NumPyro's `examples/hmm.py`, Pyro's `examples/hmm.py` style) on
//! `data/hmm_*.csv`: 3 hidden categories, 10 words, 100 labelled steps, 500 unlabelled ones
//! summed out (see `examples/hmm_models.rs` for the three ways).
//!
//! 1. NUTS on the transition and emission matrices (`--method forward|enum|dhmm`, default
//!    `dhmm`; `--jit` compiles the potential), compared with the true matrices;
//! 2. SVI with `AutoDelta` and `TraceEnumElbo` on the `markov`-enumerated model (MAP);
//! 3. the Viterbi path of the unlabelled part by `infer_discrete(temperature = 0)`, against a
//!    hand-written Viterbi with the same matrices.
//!
//!     cargo run --release --example hmm [-- --method dhmm --samples 1000 --warmup 1000 --steps 300 --jit]

use std::time::Instant;

use ppl::infer::infer_discrete;
use ppl::prelude::*;
use ppl_examples::hmm::{semi_supervised_hmm, viterbi, HmmData, Method};

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let t = t.to_kind(Kind::Double).to_device(Device::Cpu);
    (0..t.size()[0])
        .map(|i| Vec::try_from(t.get(i)).unwrap_or_default())
        .collect()
}

/// Prints estimate ± sd beside the truth, and how many entries lie within 2 and 3 sd.
fn compare(name: &str, mean: &[Vec<f64>], sd: &[Vec<f64>], truth: &[Vec<f64>]) {
    println!("  {name} (posterior mean ± sd | truth)");
    let (mut in2, mut in3, mut n) = (0, 0, 0);
    for ((m, s), t) in mean.iter().zip(sd).zip(truth) {
        let cells: Vec<String> = m
            .iter()
            .zip(s)
            .zip(t)
            .map(|((m, s), t)| format!("{m:.3}±{s:.3}|{t:.3}"))
            .collect();
        println!("    {}", cells.join("  "));
        for ((m, s), t) in m.iter().zip(s).zip(t) {
            n += 1;
            let z = (m - t).abs() / s.max(1e-12);
            in2 += usize::from(z < 2.0);
            in3 += usize::from(z < 3.0);
        }
    }
    println!("    within 2 sd: {in2}/{n}, within 3 sd: {in3}/{n}");
}

fn main() -> ppl::Result<()> {
    let method: Method = ppl_examples::arg("method", "dhmm".to_string())
        .parse()
        .map_err(ppl::Error::Invalid)?;
    let samples: usize = ppl_examples::arg("samples", 1000);
    let warmup: usize = ppl_examples::arg("warmup", 1000);
    let steps: usize = ppl_examples::arg("steps", 300);
    let data = HmmData::load();

    // 1. NUTS.
    set_rng_seed(0);
    let t0 = Instant::now();
    let mut mcmc = Mcmc::new(Nuts::new().jit_compile(ppl_examples::jit_from_args()))
        .num_samples(samples)
        .warmup_steps(warmup)
        .seed(0);
    mcmc.run(|| semi_supervised_hmm(&data, method))?;
    let post = mcmc.get_samples()?;
    let stats = |name: &str| {
        let v = post[name].to_kind(Kind::Double);
        (
            rows(&v.mean_dim(0, false, Kind::Double)),
            rows(&v.std_dim(0, true, false)),
        )
    };
    let (tm, ts) = stats("transition_prob");
    let (em, es) = stats("emission_prob");
    println!(
        "NUTS ({method:?}; {warmup} warm-up + {samples} draws) in {:.1} s, {} divergences",
        t0.elapsed().as_secs_f64(),
        mcmc.num_divergences()
    );
    compare("transition", &tm, &ts, &data.true_transition);
    compare("emission", &em, &es, &data.true_emission);

    // 2. MAP by SVI with AutoDelta; the hidden categories are enumerated (AutoDelta leaves them
    // to the loss).
    clear_param_store();
    set_rng_seed(0);
    let model = || semi_supervised_hmm(&data, Method::Enum);
    let guide = AutoDelta::new(model);
    let adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    let elbo = TraceEnumElbo::default().max_plate_nesting(1);
    let mut svi =
        Svi::new(model, || guide.call(), adam, elbo).jit_compile(ppl_examples::jit_from_args());
    let t0 = Instant::now();
    for step in 0..steps {
        let loss = svi.step()?;
        if step % 100 == 0 || step + 1 == steps {
            println!("SVI step {step:>4}  loss {loss:>9.3}");
        }
    }
    let map = guide.median()?;
    println!(
        "MAP (AutoDelta + TraceEnumElbo, {steps} steps in {:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    let zero = |m: &[Vec<f64>]| m.iter().map(|r| vec![0.0; r.len()]).collect::<Vec<_>>();
    let (mt, me) = (rows(&map["transition_prob"]), rows(&map["emission_prob"]));
    println!("  transition (MAP | truth; sd column unused)");
    compare("transition", &mt, &ts, &data.true_transition);
    let _ = zero(&me);
    compare("emission", &me, &es, &data.true_emission);

    // 3. Viterbi: infer_discrete at temperature 0 with the posterior-mean matrices, against the
    // recursion written out.
    let tmat = Tensor::from_slice(&tm.concat())
        .view([data.k, data.k])
        .to_kind(Kind::Float);
    let emat = Tensor::from_slice(&em.concat())
        .view([data.k, data.w])
        .to_kind(Kind::Float);
    let fixed = ppl::poutine::data([
        ("transition_prob", tmat.shallow_clone()),
        ("emission_prob", emat.shallow_clone()),
    ]);
    let (_, tr) = poutine::trace(|| {
        infer_discrete(
            || ppl::poutine::condition(fixed.clone(), || semi_supervised_hmm(&data, Method::Enum)),
            -2,
            0.0,
        )
    })?;
    let path: Vec<i64> = (0..data.num_unsupervised())
        .map(|t| tr.value(&format!("x_{t}")).map(|v| v.int64_value(&[])))
        .collect::<ppl::Result<_>>()?;
    let words: Vec<i64> = Vec::try_from(&data.unsup_words)?;
    let by_hand = viterbi(&tm, &em, &words);
    let agree = path.iter().zip(&by_hand).filter(|(a, b)| a == b).count();
    println!(
        "Viterbi path of the {} unlabelled steps: infer_discrete agrees with the hand-written \
         recursion at {agree}/{} steps; first 20: {:?}",
        path.len(),
        path.len(),
        &path[..20.min(path.len())]
    );
    Ok(())
}
