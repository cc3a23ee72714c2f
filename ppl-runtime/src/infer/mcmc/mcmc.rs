//! The `Mcmc` driver: warmup with adaptation, then sampling, for one or more chains (in parallel
//! on OS threads). What comes out (samples, diagnostics, the printed summary) is in
//! [`super::results`]; the files (`.npz`, CSV) in [`super::export`].

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use super::ChainRng;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{Rng, SeedableRng};
use tch::Kind;

use super::adaptation::{AdaptEvent, Adapter};
use super::compiled_potential::CompiledPotential;
use super::init::{init_trace, latent_values};
use super::kernel::PotentialFn;
use super::kernel::{find_reasonable_step_size, Kernel, Point, TransitionStats};
use super::mass_matrix::InverseMassMatrix;
use super::model_spec::ModelSpec;
use super::potential::Potential;
use super::results::ChainResult;
use super::state::{ChainState, McmcState};
use crate::distributions::{enable_validation, validation_enabled};
use crate::error::{Error, Result};
use crate::infer::threads::ThreadsGuard;

/// Warmup or sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Warmup (adaptation); these draws are discarded.
    Warmup,
    /// Sampling.
    Sample,
}

/// What the per-iteration hook sees.
#[derive(Debug)]
pub struct Iteration<'a> {
    /// The chain.
    pub chain: usize,
    /// Warmup or sampling.
    pub stage: Stage,
    /// The iteration within its stage, from 0.
    pub iteration: usize,
    /// The step size used.
    pub step_size: f64,
    /// What the transition reported.
    pub stats: TransitionStats,
    /// The new state, unconstrained.
    pub z: &'a [f64],
}

/// A per-iteration hook (Pyro's `hook_fn`); called from the thread of each chain.
pub type Hook = Arc<dyn Fn(&Iteration<'_>) + Send + Sync>;

/// Markov chain Monte Carlo (Pyro's `MCMC`).
///
/// ```
/// use ppl::infer::mcmc::{Mcmc, Nuts};
/// use ppl::prelude::*;
///
/// // x_i ~ N(mu, 1), mu ~ N(0, 10): the posterior of mu is close to N(mean x, 1/n).
/// # fn main() -> ppl::Result<()> {
/// let data = Tensor::from_slice(&[0.8f32, 1.3, 1.1, 0.6]);
/// let model = || -> ppl::Result<()> {
///     let mu = ppl::sample("mu", Normal::new(0.0, 10.0)?, None)?;
///     let _p = Plate::new("data", 4).enter()?;
///     ppl::sample("x", Normal::new(&mu, 1.0)?, Some(data.shallow_clone()))?;
///     Ok(())
/// };
/// let mut mcmc = Mcmc::new(Nuts::new()).num_samples(300).warmup_steps(200).seed(0);
/// mcmc.run(model)?;
/// let mu = mcmc.get_samples()?["mu"].mean(Kind::Double).double_value(&[]);
/// assert!((mu - 0.95).abs() < 0.25);
/// println!("{}", mcmc.summary(0.9)?);
/// # Ok(()) }
/// ```
pub struct Mcmc {
    kernel: Kernel,
    pub(super) num_samples: usize,
    warmup_steps: Option<usize>,
    num_chains: usize,
    seed: Option<u64>,
    progress_bar: bool,
    hook: Option<Hook>,
    num_threads: Option<usize>,
    resume: Option<McmcState>,
    /// The chains this process runs, of `0..num_chains` (all when `None`): distributed MCMC
    /// gives each rank its share, with the seeds and states of those global chain indices.
    pub(crate) chain_subset: Option<std::ops::Range<usize>>,
    pub(super) spec: Option<ModelSpec>,
    pub(super) chains: Vec<ChainResult>,
}

/// Restores the validation switch when dropped.
struct ValidationGuard(bool);

impl Drop for ValidationGuard {
    fn drop(&mut self) {
        enable_validation(self.0);
    }
}

/// A chain's initial point and random stream, and its adapted step size and inverse mass matrix
/// when it resumes (then it runs no warmup).
struct ChainStart {
    z: Vec<f64>,
    rng: ChainRng,
    adapted: Option<(f64, InverseMassMatrix)>,
}

/// A run about to start its chains (see [`Mcmc::start`]).
struct Start {
    _threads: ThreadsGuard,
    _validation: ValidationGuard,
    spec: ModelSpec,
    chains: Vec<ChainStart>,
    _progress: MultiProgress,
    bars: Vec<ProgressBar>,
}

/// Settings one chain needs.
struct ChainConfig<'a> {
    kernel: &'a Kernel,
    num_samples: usize,
    warmup: usize,
    hook: Option<Hook>,
}

impl Mcmc {
    /// MCMC with `kernel`, 1000 samples and as many warmup steps, one chain.
    pub fn new(kernel: impl Into<Kernel>) -> Mcmc {
        Mcmc {
            kernel: kernel.into(),
            num_samples: 1000,
            warmup_steps: None,
            num_chains: 1,
            seed: None,
            progress_bar: true,
            hook: None,
            num_threads: Some(1),
            resume: None,
            chain_subset: None,
            spec: None,
            chains: Vec::new(),
        }
    }

    /// Samples kept per chain.
    pub fn num_samples(mut self, n: usize) -> Mcmc {
        self.num_samples = n;
        self
    }

    /// Warmup iterations per chain (default: `num_samples`).
    pub fn warmup_steps(mut self, n: usize) -> Mcmc {
        self.warmup_steps = Some(n);
        self
    }

    /// Number of chains.
    pub fn num_chains(mut self, n: usize) -> Mcmc {
        self.num_chains = n.max(1);
        self
    }

    /// The seed of the chains' random streams (momenta, uniform draws, uniform initial points);
    /// chain `c` uses `seed + c`. Without it, the seed comes from this thread's generator, which
    /// [`crate::set_rng_seed`] seeds.
    pub fn seed(mut self, seed: u64) -> Mcmc {
        self.seed = Some(seed);
        self
    }

    /// Show a progress bar per chain (default; it is hidden anyway when stderr is not a
    /// terminal).
    pub fn progress_bar(mut self, on: bool) -> Mcmc {
        self.progress_bar = on;
        self
    }

    /// A function called after every iteration of every chain.
    pub fn hook(mut self, f: impl Fn(&Iteration<'_>) + Send + Sync + 'static) -> Mcmc {
        self.hook = Some(Arc::new(f));
        self
    }

    /// torch's intra-op threads while chains run (`None`: leave torch's setting alone). The
    /// default is 1: the sampler evaluates one small gradient after another, where thread
    /// start-up and spinning cost more than they save; raise it for models with large tensors.
    pub fn num_threads(mut self, n: Option<usize>) -> Mcmc {
        self.num_threads = n;
        self
    }

    /// Continue from `state` (NumPyro's `post_warmup_state`): every run after this one skips
    /// warmup, and each chain starts at its position in `state` with its step size, inverse mass
    /// matrix and random stream. Running `n` draws and then `m` more from
    /// [`Mcmc::last_state`] gives, draw for draw, the `n + m` draws of one uninterrupted run.
    /// `num_samples(0)` runs warmup only (NumPyro's `MCMC.warmup`). The state must have been made
    /// for the same latent sites and as many chains as this run has (an error says what differs);
    /// it can come from another process through [`McmcState::save`] and [`McmcState::load`].
    pub fn resume(mut self, state: McmcState) -> Mcmc {
        self.resume = Some(state);
        self
    }

    /// Where the chains of the last run stopped (NumPyro's `last_state`), to continue them with
    /// [`Mcmc::resume`] or save them with [`McmcState::save`].
    pub fn last_state(&self) -> Result<McmcState> {
        let spec = self.spec.as_ref().ok_or_else(|| {
            Error::Invalid("last_state: no chains have run yet (call run first)".into())
        })?;
        Ok(McmcState {
            chains: self.chains.iter().map(|c| c.last_state.clone()).collect(),
            sites: McmcState::layout(spec),
        })
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn warmup(&self) -> usize {
        if self.resume.is_some() {
            return 0;
        }
        self.warmup_steps.unwrap_or(self.num_samples)
    }

    /// The latent sites of the last run.
    pub fn spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
    }

    /// The chains of the last run.
    pub fn chains(&self) -> &[ChainResult] {
        &self.chains
    }

    fn progress(&self) -> (MultiProgress, Vec<ProgressBar>) {
        let show = self.progress_bar && std::io::stderr().is_terminal();
        let mp = MultiProgress::with_draw_target(if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let total = (self.warmup() + self.num_samples) as u64;
        let style = ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = self
            .my_chains()
            .map(|c| {
                let pb = mp.add(ProgressBar::new(total));
                pb.set_style(style.clone());
                pb.set_prefix(format!("chain {c}"));
                pb
            })
            .collect();
        (mp, bars)
    }

    /// The number of chains.
    pub fn get_num_chains(&self) -> usize {
        self.num_chains
    }

    /// Sets the seed (what [`Mcmc::seed`] does, in place).
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.seed = Some(seed);
    }

    /// The seed, if one was set.
    pub fn get_seed(&self) -> Option<u64> {
        self.seed
    }

    /// The chains this process runs.
    fn my_chains(&self) -> std::ops::Range<usize> {
        self.chain_subset.clone().unwrap_or(0..self.num_chains)
    }

    /// Replaces the chains of the last run (distributed MCMC gathers every rank's here).
    pub(crate) fn set_chains(&mut self, chains: Vec<ChainResult>) {
        self.chains = chains;
    }

    fn seeds(&self) -> u64 {
        self.seed
            .unwrap_or_else(|| crate::primitives::with_rng(|r| r.random::<u64>()))
    }

    /// Finds the latent sites and each chain's initial point, on this thread.
    fn prepare<R>(
        &mut self,
        model: &dyn Fn() -> Result<R>,
    ) -> Result<(ModelSpec, Vec<ChainStart>)> {
        let spec = ModelSpec::discover(model)?;
        if let Some(state) = &self.resume {
            state.check(&spec, self.num_chains)?;
            let starts = state.chains[self.my_chains()]
                .iter()
                .map(|c| ChainStart {
                    z: c.z.clone(),
                    rng: c.rng.clone(),
                    adapted: Some((c.step_size, c.inverse_mass_matrix.clone())),
                })
                .collect();
            return Ok((spec, starts));
        }
        let seed = self.seeds();
        let strategy = self.kernel.options().init_strategy.clone();
        let mut pot = Potential::new(model, spec.clone())?;
        let mut starts = Vec::with_capacity(self.num_chains);
        for c in self.my_chains() {
            let mut rng = ChainRng::seed_from_u64(seed.wrapping_add(c as u64));
            let mut last_err = None;
            let mut found = None;
            for _ in 0..100 {
                let tr = init_trace(model, &strategy, &mut rng, &spec)?;
                let z = spec.unconstrain(&latent_values(&tr, &spec)?)?;
                let mut grad = vec![0.0; spec.dim];
                match pot.value_and_grad(&z, &mut grad) {
                    Ok(u) if u.is_finite() && grad.iter().all(|g| g.is_finite()) => {
                        found = Some(z);
                        break;
                    }
                    Ok(u) => {
                        last_err = Some(Error::NonFinite(format!(
                            "potential energy {u} or its gradient at the initial point"
                        )))
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let z = found.ok_or_else(|| {
                let why = last_err.map(|e| e.to_string()).unwrap_or_default();
                Error::NonFinite(format!(
                    "chain {c}: no initial point with a finite potential energy and gradient \
                     in 100 tries ({why})"
                ))
            })?;
            starts.push(ChainStart {
                z,
                rng,
                adapted: None,
            });
        }
        Ok((spec, starts))
    }

    /// Runs all chains one after another on this thread. `model` runs under the sampler's
    /// handlers; it must sample the same latent sites every time. Distribution validation is
    /// switched off while chains run (as Pyro's `MCMC` does) and restored afterwards.
    pub fn run<R>(&mut self, model: impl Fn() -> Result<R>) -> Result<()> {
        let start = self.start(&model)?;
        let cfg = self.chain_config();
        let mut chains = Vec::with_capacity(self.num_chains);
        let first = self.my_chains().start;
        for (c, (cs, pb)) in start.chains.into_iter().zip(start.bars).enumerate() {
            let c = first + c;
            chains.push(run_chain(&model, start.spec.clone(), cs, c, &cfg, &pb)?);
            pb.finish();
        }
        self.spec = Some(start.spec);
        self.chains = chains;
        Ok(())
    }

    /// Runs each chain on its own OS thread. Tensors cannot be shared between threads, so the
    /// model is built per chain: `make_model(chain)` runs on the chain's thread (and once more on
    /// this thread, to find the latent sites and the initial points).
    ///
    /// Results are the same as [`Mcmc::run`]'s for the same seed. Param stores are per thread:
    /// a model that reads `param!`s should get their values from `make_model`'s captures.
    pub fn run_parallel<M, R, F>(&mut self, make_model: F) -> Result<()>
    where
        F: Fn(usize) -> M + Sync,
        M: Fn() -> Result<R>,
    {
        let first = self.my_chains().start;
        // The model that finds the sites: this process's first chain's (chain 0's when it runs
        // none, as a rank of a distributed run with more ranks than chains).
        let probe = if self.my_chains().is_empty() {
            0
        } else {
            first
        };
        let start = self.start(&make_model(probe))?;
        let spec = &start.spec;
        let cfg = self.chain_config();
        let results: Vec<Result<ChainResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = start
                .chains
                .into_iter()
                .zip(start.bars)
                .enumerate()
                .map(|(c, (cs, pb))| {
                    let c = first + c;
                    let spec = spec.clone();
                    let cfg = &cfg;
                    let make_model = &make_model;
                    let threads = self.num_threads;
                    s.spawn(move || {
                        let _t = ThreadsGuard::set(threads);
                        enable_validation(false);
                        let model = make_model(c);
                        let r = run_chain(&model, spec, cs, c, cfg, &pb);
                        pb.finish();
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(c, h)| {
                    let c = first + c;
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Invalid(format!(
                            "the thread of chain {c} panicked (a panic in the model?)"
                        )))
                    })
                })
                .collect()
        });
        let chains = results.into_iter().collect::<Result<Vec<_>>>()?;
        self.spec = Some(start.spec);
        self.chains = chains;
        Ok(())
    }

    /// What [`Mcmc::run`] and [`Mcmc::run_parallel`] do before the chains start: set torch's
    /// threads and switch validation off (both restored when the [`Start`] is dropped), find the
    /// latent sites and each chain's initial point, and make the progress bars.
    fn start<R>(&mut self, model: &dyn Fn() -> Result<R>) -> Result<Start> {
        let threads = ThreadsGuard::set(self.num_threads);
        let validation = ValidationGuard(validation_enabled());
        enable_validation(false);
        let (spec, chains) = self.prepare(model)?;
        let (progress, bars) = self.progress();
        Ok(Start {
            _threads: threads,
            _validation: validation,
            spec,
            chains,
            _progress: progress,
            bars,
        })
    }

    fn chain_config(&self) -> ChainConfig<'_> {
        ChainConfig {
            kernel: &self.kernel,
            num_samples: self.num_samples,
            warmup: self.warmup(),
            hook: self.hook.clone(),
        }
    }
}

fn report(pb: &ProgressBar, stage: Stage, step_size: f64, accept_sum: f64, n: usize, i: usize) {
    pb.inc(1);
    if pb.is_hidden() || !i.is_multiple_of(20) {
        return;
    }
    let stage = match stage {
        Stage::Warmup => "warmup",
        Stage::Sample => "sample",
    };
    pb.set_message(format!(
        "{stage}, step size {step_size:.2e}, acc. prob {:.3}",
        accept_sum / n.max(1) as f64
    ));
}

/// Warmup and sampling of one chain.
fn run_chain<R>(
    model: &dyn Fn() -> Result<R>,
    spec: ModelSpec,
    start: ChainStart,
    chain: usize,
    cfg: &ChainConfig<'_>,
    pb: &ProgressBar,
) -> Result<ChainResult> {
    let opts = cfg.kernel.options();
    let dim = spec.dim;
    let ChainStart {
        z: z0,
        mut rng,
        adapted,
    } = start;
    let mut eager = Potential::new(model, spec.clone())?;
    // The potential's implementation is chosen once per chain.
    let mut compiled;
    let pot: &mut dyn PotentialFn = if opts.jit_compile {
        compiled = CompiledPotential::new(&mut eager, &z0)?;
        &mut compiled
    } else if opts.auto_compile {
        match CompiledPotential::new(&mut eager, &z0) {
            Ok(c) => {
                compiled = c;
                &mut compiled
            }
            Err(e) if e.is_jit_refusal() => {
                if chain == 0 {
                    eprintln!("ppl: running the potential on libtorch: {e}");
                }
                &mut eager
            }
            Err(e) => return Err(e),
        }
    } else {
        &mut eager
    };
    let (mut step_size, mut inv_mass) = match adapted {
        Some(a) => a,
        None => (
            opts.step_size,
            InverseMassMatrix::identity(dim, opts.full_mass),
        ),
    };
    let mut state = Point::at(pot, z0)?;

    let t0 = Instant::now();
    let mut adapter = Adapter::new(
        cfg.warmup,
        dim,
        opts.full_mass,
        opts.target_accept_prob,
        opts.adapt_step_size,
        opts.adapt_mass_matrix,
    );
    if cfg.warmup > 0 && opts.adapt_step_size {
        step_size = find_reasonable_step_size(pot, &inv_mass, &state, step_size, &mut rng)?.0;
    }
    adapter.restart_step_size(step_size);
    let mut warmup_divergences = 0;
    let mut accept_sum = 0.0;
    for i in 0..cfg.warmup {
        let used = step_size;
        let stats = cfg
            .kernel
            .transition(pot, &inv_mass, step_size, &mut state, &mut rng)?;
        warmup_divergences += usize::from(stats.diverging);
        accept_sum += stats.accept_prob;
        let event = adapter.update(&state.z, stats.accept_prob, &mut step_size, &mut inv_mass)?;
        if event == AdaptEvent::MassMatrixUpdated && opts.adapt_step_size {
            step_size = find_reasonable_step_size(pot, &inv_mass, &state, step_size, &mut rng)?.0;
            adapter.restart_step_size(step_size);
        }
        if let Some(h) = &cfg.hook {
            h(&Iteration {
                chain,
                stage: Stage::Warmup,
                iteration: i,
                step_size: used,
                stats,
                z: &state.z,
            });
        }
        report(pb, Stage::Warmup, used, accept_sum, i + 1, i);
    }
    if cfg.warmup > 0 {
        if let Some(s) = adapter.final_step_size() {
            step_size = s;
        }
    }
    let warmup_mean_accept_prob = accept_sum / cfg.warmup.max(1) as f64;
    let warmup_grad_evals = pot.num_grad_evals();
    let warmup_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut draws = Vec::with_capacity(cfg.num_samples * dim);
    let mut all_stats = Vec::with_capacity(cfg.num_samples);
    let mut accept_sum = 0.0;
    for i in 0..cfg.num_samples {
        let stats = cfg
            .kernel
            .transition(pot, &inv_mass, step_size, &mut state, &mut rng)?;
        draws.extend_from_slice(&state.z);
        accept_sum += stats.accept_prob;
        all_stats.push(stats);
        if let Some(h) = &cfg.hook {
            h(&Iteration {
                chain,
                stage: Stage::Sample,
                iteration: i,
                step_size,
                stats,
                z: &state.z,
            });
        }
        report(pb, Stage::Sample, step_size, accept_sum, i + 1, i);
    }
    let sample_seconds = t1.elapsed().as_secs_f64();
    let sample_grad_evals = pot.num_grad_evals() - warmup_grad_evals;

    let mut samples = Vec::new();
    for (name, t) in spec.constrain_batch(&draws, cfg.num_samples)? {
        let t = t.f_to_kind(Kind::Double)?.f_reshape([-1])?.f_contiguous()?;
        let n = t.size()[0] as usize;
        let mut v = vec![0.0; n];
        t.f_copy_data(&mut v, n)?;
        samples.push((name, v));
    }
    let last_state = ChainState {
        z: state.z.clone(),
        step_size,
        inverse_mass_matrix: inv_mass.clone(),
        rng,
    };
    Ok(ChainResult {
        last_state,
        samples,
        unconstrained: draws,
        stats: all_stats,
        warmup_divergences,
        warmup_mean_accept_prob,
        step_size,
        inverse_mass_matrix: inv_mass,
        warmup_grad_evals,
        sample_grad_evals,
        warmup_seconds,
        sample_seconds,
    })
}
