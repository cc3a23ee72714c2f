//! Neal's funnel and NeuTra HMC (Hoffman et al. 2019; Pyro's and NumPyro's `neutra.py`), shared
//! by the `neutra` example and the `neutra_funnel` benchmark (`bench_mcmc`).

use std::rc::Rc;
use std::time::Instant;

use ppl::infer::mcmc::{diagnostics, Mcmc, Nuts};
use ppl::infer::reparam::NeuTraReparam;
use ppl::infer::AutoIAFNormal;
use ppl::poutine::ReparamConfig;
use ppl::prelude::*;

/// The settings (`bench/peers/common.py`'s `NEUTRA`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The funnel's dimension (y and dim - 1 x's).
    pub dim: i64,
    /// NUTS warm-up and samples, for both runs.
    pub warmup: usize,
    /// NUTS draws kept.
    pub samples: usize,
    /// SVI steps fitting the IAF guide.
    pub svi_steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// IAF flows stacked.
    pub num_flows: usize,
    /// Their networks' hidden layers.
    pub hidden: Vec<i64>,
    /// ELBO particles per SVI step (vectorized).
    pub particles: usize,
    /// Compile the NUTS potentials and the SVI step where they compile.
    pub jit: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            dim: 10,
            warmup: 500,
            samples: 1000,
            svi_steps: 5000,
            lr: 0.003,
            num_flows: 2,
            hidden: vec![20, 20],
            particles: 16,
            jit: false,
        }
    }
}

/// Neal's funnel: `y ~ N(0, 3)`, `x ~ N(0, exp(y / 2))` (dim - 1 of them, one event).
#[model]
pub fn funnel(dim: i64) -> ppl::Result<()> {
    let y = sample!(Normal::new(0.0, 3.0)?);
    // `[..., 1]`, so that vectorized particles (a batch of y's) broadcast.
    let scale = (&y / 2.0).exp().unsqueeze(-1);
    let zeros = Tensor::zeros([dim - 1], (y.kind(), y.device()));
    sample!("x", Normal::new(zeros, &scale)?.to_event(1)?);
    Ok(())
}

/// One NUTS run's figures.
#[derive(Clone, Debug)]
pub struct NutsRun {
    /// Seconds (warm-up and sampling).
    pub seconds: f64,
    /// Divergent transitions after warm-up.
    pub divergences: usize,
    /// The smallest ESS over y and every x.
    pub min_ess: f64,
    /// Leapfrog steps, warm-up and sampling.
    pub leapfrog: usize,
    /// y's posterior mean and sd (exact: 0 and 3).
    pub y_mean: f64,
    /// See `y_mean`.
    pub y_sd: f64,
}

/// The figures of one draw of `y` `[n]` and `x` `[n, dim - 1]`.
fn figures(
    y: &Tensor,
    x: &Tensor,
    seconds: f64,
    divergences: usize,
    leapfrog: usize,
) -> ppl::Result<NutsRun> {
    let y: Vec<f64> = Vec::try_from(y.to_kind(Kind::Double).reshape([-1]))?;
    let mut min_ess = diagnostics::effective_sample_size(&[&y])?;
    let x = x.to_kind(Kind::Double);
    for j in 0..x.size()[1] {
        let xj: Vec<f64> = Vec::try_from(x.select(1, j).contiguous())?;
        min_ess = min_ess.min(diagnostics::effective_sample_size(&[&xj])?);
    }
    let m = diagnostics::mean(&y);
    Ok(NutsRun {
        seconds,
        divergences,
        min_ess,
        leapfrog,
        y_mean: m,
        y_sd: diagnostics::variance(&y).sqrt(),
    })
}

fn nuts(s: &Settings) -> Mcmc {
    Mcmc::new(Nuts::new().jit_compile(s.jit))
        .num_samples(s.samples)
        .warmup_steps(s.warmup)
        .seed(0)
        .progress_bar(false)
}

/// NUTS on the funnel as it is.
pub fn vanilla(s: &Settings) -> ppl::Result<NutsRun> {
    let mut mcmc = nuts(s);
    let dim = s.dim;
    let t0 = Instant::now();
    mcmc.run(|| funnel(dim))?;
    let seconds = t0.elapsed().as_secs_f64();
    let ch = &mcmc.chains()[0];
    let leapfrog = ch.warmup_grad_evals + ch.sample_grad_evals;
    let samples = mcmc.get_samples()?;
    figures(
        &samples["y"],
        &samples["x"],
        seconds,
        mcmc.num_divergences(),
        leapfrog,
    )
}

/// The IAF guide fitted by SVI, with the seconds it took and the mean loss of the last 100 steps.
pub fn fit_guide(s: &Settings) -> ppl::Result<(AutoIAFNormal<'static>, f64, f64)> {
    let dim = s.dim;
    let guide = AutoIAFNormal::new(move || funnel(dim))
        .hidden_dims(&s.hidden)
        .num_transforms(s.num_flows);
    let adam = Adam::new(AdamConfig {
        lr: s.lr,
        ..Default::default()
    });
    let t0 = Instant::now();
    let losses = {
        let elbo = TraceElbo {
            config: ElboConfig {
                num_particles: s.particles,
                vectorize_particles: true,
                max_plate_nesting: 0,
            },
        };
        let mut svi = Svi::new(|| funnel(dim), || guide.call(), adam, elbo).jit_compile(s.jit);
        svi.run(s.svi_steps)?
    };
    let seconds = t0.elapsed().as_secs_f64();
    let tail = &losses[losses.len().saturating_sub(100)..];
    Ok((guide, seconds, tail.iter().sum::<f64>() / tail.len() as f64))
}

/// NUTS on the funnel reparameterized by the trained guide's flow.
pub fn neutra(s: &Settings, guide: &AutoIAFNormal<'_>) -> ppl::Result<NutsRun> {
    let reparam = NeuTraReparam::new(guide)?;
    let config = Rc::new(ReparamConfig::new().all(reparam.clone()));
    let mut mcmc = nuts(s);
    let dim = s.dim;
    let t0 = Instant::now();
    mcmc.run(|| poutine::reparam(config.clone(), || funnel(dim)))?;
    let seconds = t0.elapsed().as_secs_f64();
    let ch = &mcmc.chains()[0];
    let leapfrog = ch.warmup_grad_evals + ch.sample_grad_evals;
    let z = &mcmc.get_samples()?[&reparam.shared_site()];
    let sites = reparam.transform_samples(z)?;
    figures(
        &sites["y"],
        &sites["x"],
        seconds,
        mcmc.num_divergences(),
        leapfrog,
    )
}
