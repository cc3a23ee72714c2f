//! The `Mcmc` driver: warmup with adaptation, then sampling, for one or more chains (in parallel
//! on OS threads), and what comes out: samples, diagnostics, a printed summary, exports.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use super::adaptation::{AdaptEvent, Adapter};
use super::compiled_potential::CompiledPotential;
use super::diagnostics::{self, ScalarSummary};
use super::export::{self, NpyArray, NpyData};
use super::init::{init_trace, latent_values};
use super::kernel::PotentialFn;
use super::kernel::{find_reasonable_step_size, Kernel, Point, TransitionStats};
use super::mass_matrix::InverseMassMatrix;
use super::model_spec::ModelSpec;
use super::potential::Potential;
use crate::distributions::{enable_validation, validation_enabled};
use crate::error::{Error, Result};

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

/// The outcome of one chain.
#[derive(Clone, Debug)]
pub struct ChainResult {
    /// Constrained draws per site: `num_samples × site size` values, draw after draw.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Unconstrained draws: `num_samples × dim`.
    pub unconstrained: Vec<f64>,
    /// Statistics of each sampling transition.
    pub stats: Vec<TransitionStats>,
    /// Divergent transitions during warmup.
    pub warmup_divergences: usize,
    /// Mean acceptance statistic during warmup.
    pub warmup_mean_accept_prob: f64,
    /// The step size used for sampling.
    pub step_size: f64,
    /// The inverse mass matrix used for sampling.
    pub inverse_mass_matrix: InverseMassMatrix,
    /// Gradient evaluations (≈ leapfrog steps, including the step-size search) during warmup.
    pub warmup_grad_evals: usize,
    /// Gradient evaluations during sampling.
    pub sample_grad_evals: usize,
    /// Seconds spent in warmup.
    pub warmup_seconds: f64,
    /// Seconds spent sampling.
    pub sample_seconds: f64,
}

impl ChainResult {
    /// Indices of the divergent sampling transitions.
    pub fn divergences(&self) -> Vec<usize> {
        self.stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.diverging)
            .map(|(i, _)| i)
            .collect()
    }

    /// Mean acceptance statistic while sampling.
    pub fn mean_accept_prob(&self) -> f64 {
        diagnostics::mean(&self.stats.iter().map(|s| s.accept_prob).collect::<Vec<_>>())
    }
}

/// Per-site diagnostics: the effective sample size and split R-hat of each element.
#[derive(Clone, Debug)]
pub struct SiteDiagnostics {
    /// Effective sample size of each element (row-major over the site's shape).
    pub n_eff: Vec<f64>,
    /// Split R-hat of each element.
    pub r_hat: Vec<f64>,
}

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
    num_samples: usize,
    warmup_steps: Option<usize>,
    num_chains: usize,
    seed: Option<u64>,
    progress_bar: bool,
    hook: Option<Hook>,
    num_threads: Option<usize>,
    spec: Option<ModelSpec>,
    chains: Vec<ChainResult>,
}

/// Sets torch's intra-op threads and restores them when dropped.
struct ThreadsGuard(Option<i32>);

impl ThreadsGuard {
    fn set(n: Option<usize>) -> ThreadsGuard {
        match n {
            Some(n) => {
                let prev = tch::get_num_threads();
                tch::set_num_threads(n.max(1) as i32);
                ThreadsGuard(Some(prev))
            }
            None => ThreadsGuard(None),
        }
    }
}

impl Drop for ThreadsGuard {
    fn drop(&mut self) {
        if let Some(n) = self.0 {
            tch::set_num_threads(n);
        }
    }
}

/// Restores the validation switch when dropped.
struct ValidationGuard(bool);

impl Drop for ValidationGuard {
    fn drop(&mut self) {
        enable_validation(self.0);
    }
}

/// A chain's initial point and random stream.
type ChainStart = (Vec<f64>, StdRng);

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

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn warmup(&self) -> usize {
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
        let bars = (0..self.num_chains)
            .map(|c| {
                let pb = mp.add(ProgressBar::new(total));
                pb.set_style(style.clone());
                pb.set_prefix(format!("chain {c}"));
                pb
            })
            .collect();
        (mp, bars)
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
        let seed = self.seeds();
        let strategy = self.kernel.options().init_strategy.clone();
        let mut pot = Potential::new(model, spec.clone())?;
        let mut starts = Vec::with_capacity(self.num_chains);
        for c in 0..self.num_chains {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(c as u64));
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
            starts.push((z, rng));
        }
        Ok((spec, starts))
    }

    /// Runs all chains one after another on this thread. `model` runs under the sampler's
    /// handlers; it must sample the same latent sites every time. Distribution validation is
    /// switched off while chains run (as Pyro's `MCMC` does) and restored afterwards.
    pub fn run<R>(&mut self, model: impl Fn() -> Result<R>) -> Result<()> {
        let _t = ThreadsGuard::set(self.num_threads);
        let _v = ValidationGuard(validation_enabled());
        enable_validation(false);
        let (spec, starts) = self.prepare(&model)?;
        let (_mp, bars) = self.progress();
        let cfg = ChainConfig {
            kernel: &self.kernel,
            num_samples: self.num_samples,
            warmup: self.warmup(),
            hook: self.hook.clone(),
        };
        let mut chains = Vec::with_capacity(self.num_chains);
        for (c, ((z0, rng), pb)) in starts.into_iter().zip(bars).enumerate() {
            chains.push(run_chain(&model, spec.clone(), z0, rng, c, &cfg, &pb)?);
            pb.finish();
        }
        self.spec = Some(spec);
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
        let _t = ThreadsGuard::set(self.num_threads);
        let _v = ValidationGuard(validation_enabled());
        enable_validation(false);
        let (spec, starts) = {
            let model0 = make_model(0);
            self.prepare(&model0)?
        };
        let (_mp, bars) = self.progress();
        let cfg = ChainConfig {
            kernel: &self.kernel,
            num_samples: self.num_samples,
            warmup: self.warmup(),
            hook: self.hook.clone(),
        };
        let results: Vec<Result<ChainResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = starts
                .into_iter()
                .zip(bars)
                .enumerate()
                .map(|(c, ((z0, rng), pb))| {
                    let spec = spec.clone();
                    let cfg = &cfg;
                    let make_model = &make_model;
                    let threads = self.num_threads;
                    s.spawn(move || {
                        let _t = ThreadsGuard::set(threads);
                        enable_validation(false);
                        let model = make_model(c);
                        let r = run_chain(&model, spec, z0, rng, c, cfg, &pb);
                        pb.finish();
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(c, h)| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal(format!("the thread of chain {c} panicked")))
                    })
                })
                .collect()
        });
        let chains = results.into_iter().collect::<Result<Vec<_>>>()?;
        self.spec = Some(spec);
        self.chains = chains;
        Ok(())
    }

    fn spec_or_err(&self) -> Result<&ModelSpec> {
        self.spec
            .as_ref()
            .ok_or_else(|| Error::Config("MCMC has not run yet: call run first".into()))
    }

    /// The draws of each site, grouped by chain: `[num_chains, num_samples] + site shape` (float64
    /// on the CPU).
    pub fn samples_by_chain_f64(&self) -> Result<IndexMap<String, Tensor>> {
        let spec = self.spec_or_err()?;
        let mut out = IndexMap::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let mut data = Vec::new();
            for ch in &self.chains {
                data.extend_from_slice(&ch.samples[k].1);
            }
            let mut shape = vec![self.chains.len() as i64, self.num_samples as i64];
            shape.extend_from_slice(&s.shape);
            out.insert(
                s.name.clone(),
                Tensor::f_from_slice(&data)?.f_reshape(shape.as_slice())?,
            );
        }
        Ok(out)
    }

    fn to_model(&self, t: Tensor) -> Result<Tensor> {
        let spec = self.spec_or_err()?;
        let t = if spec.kind == Kind::Double {
            t
        } else {
            t.f_to_kind(spec.kind)?
        };
        Ok(if spec.device == Device::Cpu {
            t
        } else {
            t.f_to_device(spec.device)?
        })
    }

    /// The constrained draws of each latent site, all chains together:
    /// `[num_chains * num_samples] + site shape`, in the model's dtype and on its device.
    pub fn get_samples(&self) -> Result<IndexMap<String, Tensor>> {
        let mut out = IndexMap::new();
        for (k, t) in self.samples_by_chain_f64()? {
            let t = t.f_flatten(0, 1)?;
            out.insert(k, self.to_model(t)?);
        }
        Ok(out)
    }

    /// The constrained draws of each latent site grouped by chain:
    /// `[num_chains, num_samples] + site shape`.
    pub fn get_samples_by_chain(&self) -> Result<IndexMap<String, Tensor>> {
        let mut out = IndexMap::new();
        for (k, t) in self.samples_by_chain_f64()? {
            out.insert(k, self.to_model(t)?);
        }
        Ok(out)
    }

    /// The draws of element `j` of site `k`, one vector per chain.
    fn element(&self, k: usize, j: usize, numel: usize) -> Vec<Vec<f64>> {
        self.chains
            .iter()
            .map(|ch| {
                ch.samples[k]
                    .1
                    .iter()
                    .skip(j)
                    .step_by(numel.max(1))
                    .copied()
                    .collect()
            })
            .collect()
    }

    fn site_numel(shape: &[i64]) -> usize {
        shape.iter().product::<i64>().max(0) as usize
    }

    /// Effective sample size and split R-hat of every element of every site.
    pub fn diagnostics(&self) -> Result<IndexMap<String, SiteDiagnostics>> {
        let spec = self.spec_or_err()?;
        let mut out = IndexMap::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let numel = Self::site_numel(&s.shape);
            let mut d = SiteDiagnostics {
                n_eff: Vec::with_capacity(numel),
                r_hat: Vec::with_capacity(numel),
            };
            for j in 0..numel {
                let el = self.element(k, j, numel);
                let refs: Vec<&[f64]> = el.iter().map(|v| v.as_slice()).collect();
                d.n_eff.push(diagnostics::effective_sample_size(&refs)?);
                d.r_hat.push(diagnostics::split_r_hat(&refs)?);
            }
            out.insert(s.name.clone(), d);
        }
        Ok(out)
    }

    /// Summary statistics of every element of every site, with row names like `theta[3]`.
    pub fn summary_table(&self, prob: f64) -> Result<Vec<(String, ScalarSummary)>> {
        let spec = self.spec_or_err()?;
        let mut rows = Vec::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let numel = Self::site_numel(&s.shape);
            for j in 0..numel {
                let el = self.element(k, j, numel);
                let refs: Vec<&[f64]> = el.iter().map(|v| v.as_slice()).collect();
                let name = if s.shape.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}[{}]", s.name, unravel(j, &s.shape))
                };
                rows.push((name, diagnostics::summarize(&refs, prob)?));
            }
        }
        Ok(rows)
    }

    /// The summary table as Pyro prints it: mean, std, median, the HPDI of mass `prob`, n_eff
    /// and r_hat per element, then the number of divergences.
    pub fn summary(&self, prob: f64) -> Result<String> {
        let rows = self.summary_table(prob)?;
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(10);
        let lo = format!("{:.1}%", 50.0 * (1.0 - prob));
        let hi = format!("{:.1}%", 50.0 * (1.0 + prob));
        let mut s = String::new();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "mean", "std", "median", lo, hi, "n_eff", "r_hat"
        );
        for (name, r) in &rows {
            let _ = writeln!(
                s,
                "{name:>width$} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                r.mean, r.std, r.median, r.lower, r.upper, r.n_eff, r.r_hat
            );
        }
        let _ = writeln!(s);
        let divs: usize = self.chains.iter().map(|c| c.divergences().len()).sum();
        let _ = writeln!(s, "Number of divergences: {divs}");
        Ok(s)
    }

    /// Prints [`Mcmc::summary`].
    pub fn print_summary(&self, prob: f64) -> Result<()> {
        print!("{}", self.summary(prob)?);
        Ok(())
    }

    /// Number of divergent sampling transitions, all chains together.
    pub fn num_divergences(&self) -> usize {
        self.chains.iter().map(|c| c.divergences().len()).sum()
    }

    /// Writes the draws to an `.npz` archive: one array per site, of shape
    /// `[num_chains, num_samples] + site shape`, float64 (`az.from_dict(posterior=dict(np.load(path)))`
    /// reads it in ArviZ).
    pub fn write_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let spec = self.spec_or_err()?;
        let mut arrays = Vec::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let mut data = Vec::new();
            for ch in &self.chains {
                data.extend_from_slice(&ch.samples[k].1);
            }
            let mut shape = vec![self.chains.len(), self.num_samples];
            shape.extend(s.shape.iter().map(|&d| d as usize));
            arrays.push((
                s.name.clone(),
                NpyArray {
                    shape,
                    data: NpyData::F64(data),
                },
            ));
        }
        export::write_npz(path, &arrays)
    }

    /// Writes the sampler statistics to an `.npz` archive with ArviZ's names: `diverging`,
    /// `acceptance_rate`, `n_steps`, `tree_depth`, `energy` (each `[num_chains, num_samples]`)
    /// and `step_size` (`[num_chains]`).
    pub fn write_sample_stats_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let shape = vec![self.chains.len(), self.num_samples];
        let all = |f: &dyn Fn(&TransitionStats) -> f64| -> Vec<f64> {
            self.chains
                .iter()
                .flat_map(|c| c.stats.iter().map(f))
                .collect()
        };
        let arrays = vec![
            (
                "diverging".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::Bool(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.diverging))
                            .collect(),
                    ),
                },
            ),
            (
                "acceptance_rate".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::F64(all(&|s| s.accept_prob)),
                },
            ),
            (
                "n_steps".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::I64(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.num_steps as i64))
                            .collect(),
                    ),
                },
            ),
            (
                "tree_depth".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::I64(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.tree_depth as i64))
                            .collect(),
                    ),
                },
            ),
            (
                "energy".to_string(),
                NpyArray {
                    shape,
                    data: NpyData::F64(all(&|s| s.energy)),
                },
            ),
            (
                "step_size".to_string(),
                NpyArray {
                    shape: vec![self.chains.len()],
                    data: NpyData::F64(self.chains.iter().map(|c| c.step_size).collect()),
                },
            ),
        ];
        export::write_npz(path, &arrays)
    }

    /// Writes the draws to a CSV file: columns `chain`, `draw`, one per element of every site
    /// (`theta[3]`), then `diverging` and `accept_prob`.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let spec = self.spec_or_err()?;
        let mut header = vec!["chain".to_string(), "draw".to_string()];
        for s in &spec.sites {
            let numel = Self::site_numel(&s.shape);
            if s.shape.is_empty() {
                header.push(s.name.clone());
            } else {
                for j in 0..numel {
                    header.push(format!("{}[{}]", s.name, unravel(j, &s.shape)));
                }
            }
        }
        header.push("diverging".into());
        header.push("accept_prob".into());
        let mut rows = Vec::new();
        for (c, ch) in self.chains.iter().enumerate() {
            for i in 0..self.num_samples {
                let mut r = vec![c as f64, i as f64];
                for (k, s) in spec.sites.iter().enumerate() {
                    let numel = Self::site_numel(&s.shape);
                    r.extend_from_slice(&ch.samples[k].1[i * numel..(i + 1) * numel]);
                }
                r.push(f64::from(u8::from(ch.stats[i].diverging)));
                r.push(ch.stats[i].accept_prob);
                rows.push(r);
            }
        }
        export::write_csv(path, &header, &rows)
    }
}

/// `j` as a multi-index of `shape`, comma-separated.
fn unravel(mut j: usize, shape: &[i64]) -> String {
    let mut idx = vec![0usize; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        let n = n.max(1) as usize;
        idx[d] = j % n;
        j /= n;
    }
    idx.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
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
    z0: Vec<f64>,
    mut rng: StdRng,
    chain: usize,
    cfg: &ChainConfig<'_>,
    pb: &ProgressBar,
) -> Result<ChainResult> {
    let opts = cfg.kernel.options();
    let dim = spec.dim;
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
    let mut inv_mass = InverseMassMatrix::identity(dim, opts.full_mass);
    let mut state = Point::at(pot, z0)?;
    let mut step_size = opts.step_size;

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
    Ok(ChainResult {
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
