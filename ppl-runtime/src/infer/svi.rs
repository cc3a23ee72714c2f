//! Stochastic variational inference.

use crate::distributed::{DataParallel, ProcessGroup};
use crate::error::Result;
use crate::infer::args::{arg_tensors, ModelArgs, ModelFn};
use crate::infer::elbo::LossAndGrads;
use crate::infer::threads::{ThreadsGuard, GRAIN_SIZE};
use crate::infer::{Elbo, JitTraceElbo};
use crate::optim::Optimizer;
use crate::params::{with_param_store, zero_grads};

/// SVI: fits a guide's params to a model by stochastic optimization of an ELBO.
///
/// Model and guide are either closures without arguments (`|| model(&x)`, data captured), stepped
/// with [`Svi::step`], or functions that take the data (Pyro's `svi.step(x, y)`), stepped with
/// [`Svi::step_with`]`(&x)` or `step_with((&x, &y))` ([`ModelFn`]), so that a training loop
/// passes a new minibatch at every step.
///
/// Every loss goes through the same step ([`step`]): the loss puts its gradient estimate in the
/// params' `.grad`, and SVI steps the optimizer on the params the loss names. A compiled loss
/// ([`JitTraceElbo`], or [`Svi::jit_compile`]) is another loss behind that seam.
pub struct Svi<M, G, O, L> {
    model: M,
    guide: G,
    /// The optimizer.
    pub optim: O,
    /// The loss.
    pub loss: L,
    threads: ThreadChoice,
    dp: Option<DataParallel>,
}

/// How SVI sets torch's intra-op threads, and the guard that holds the setting.
struct ThreadChoice {
    threads: Threads,
    /// Holds torch's thread count while the SVI lives; restores it when dropped.
    guard: Option<ThreadsGuard>,
}

impl ThreadChoice {
    /// Runs one step of `loss` with torch's threads set as chosen (by the work of the first
    /// step, when so chosen).
    fn step<L: Elbo, R1, R2>(
        &mut self,
        loss: &mut L,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<LossAndGrads> {
        if self.guard.is_none() {
            if let Threads::Fixed(n) = self.threads {
                self.guard = Some(ThreadsGuard::set(Some(n)));
            }
        }
        let out = loss.loss_and_grads(model, guide)?;
        if self.guard.is_none() {
            // Decided once, by the work of the first step.
            let small = self.threads == Threads::ByWork && out.largest_site < GRAIN_SIZE;
            self.guard = Some(ThreadsGuard::set(small.then_some(1)));
        }
        Ok(out)
    }
}

/// How SVI sets torch's intra-op threads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Threads {
    /// One thread when the largest site value has fewer elements than libtorch splits across
    /// threads; torch's setting otherwise. Decided at the first step.
    ByWork,
    /// This many.
    Fixed(usize),
    /// torch's setting, untouched.
    Torch,
}

impl<M, G, O: Optimizer, L: Elbo> Svi<M, G, O, L> {
    /// SVI of `model` with `guide`: closures without arguments for [`Svi::step`], or functions
    /// of the data for [`Svi::step_with`].
    pub fn new(model: M, guide: G, optim: O, loss: L) -> Self {
        Svi {
            model,
            guide,
            optim,
            loss,
            threads: ThreadChoice {
                threads: Threads::ByWork,
                guard: None,
            },
            dp: None,
        }
    }

    /// Data-parallel SVI over the ranks of `pg` ([`crate::distributed`]): each rank runs the
    /// model and guide on its own shard; before every optimizer step the gradients and the loss
    /// are averaged over ranks (one all-reduce per dtype), so every rank takes the same step.
    /// At the first step the params are checked to agree across ranks (an error names the one
    /// that does not) and rank 0's values are copied to all. The returned loss is the mean over
    /// ranks. Eager and compiled steps alike.
    ///
    /// For the average to estimate the full-data ELBO, a plate over the data should have the
    /// global size and subsample this rank's part (`Plate::new("data", n_total)
    /// .subsample(indices)` with `pg.shard(n_total)`), so each rank's likelihood is scaled by
    /// `n_total / n_rank`.
    pub fn data_parallel(mut self, pg: std::rc::Rc<ProcessGroup>) -> Self {
        self.dp = Some(DataParallel::new(pg));
        self
    }

    /// The data-parallel state, when [`Svi::data_parallel`] was set (its timings).
    pub fn data_parallel_state(&self) -> Option<&DataParallel> {
        self.dp.as_ref()
    }

    /// torch's intra-op threads while steps run: `Some(n)` for `n`, `None` to leave torch's
    /// setting alone. By default SVI picks by the work at its first step: one thread when every
    /// site value has fewer elements than libtorch would split across threads (32 768), since
    /// waking the pool for small ops costs more than it saves, and badly so on a busy machine
    /// (the coin example: 0.37 ms per eager step idle, 1.4 ms with one core busy, 0.47 ms on one
    /// thread); torch's setting otherwise. The previous setting is restored when the `Svi` is
    /// dropped. Compiled steps ([`Svi::jit_compile`]) do not use torch's threads.
    pub fn num_threads(mut self, n: Option<usize>) -> Self {
        self.threads.threads = match n {
            Some(n) => Threads::Fixed(n.max(1)),
            None => Threads::Torch,
        };
        self
    }

    /// Compiles the loss (Pyro's `JitTrace_ELBO`): wraps it in a [`JitTraceElbo`], which traces
    /// model and guide at the first step and runs a host program with its own gradient at every
    /// later one (see there for what compiles and what is checked). With `on`, a loss or model
    /// that cannot be compiled makes the first step fail with the reason; with `false` the loss
    /// runs eagerly. [`Svi::auto_compile`] compiles where it can and runs eagerly otherwise.
    ///
    /// ```
    /// use ppl::prelude::*;
    ///
    /// #[model]
    /// fn model(x: &Tensor) -> ppl::Result<()> {
    ///     let loc = sample!(Normal::new(0.0, 1.0)?);
    ///     let _d = plate!("data", x.size()[0]);
    ///     sample!("x", Normal::new(&loc, 1.0)?, obs = x);
    ///     Ok(())
    /// }
    ///
    /// #[guide]
    /// fn guide(_x: &Tensor) -> ppl::Result<()> {
    ///     let loc_q = param!(0.0);
    ///     let scale_q = param!(1.0, constraint = positive);
    ///     let _loc = sample!(Normal::new(&loc_q, &scale_q)?);
    ///     Ok(())
    /// }
    ///
    /// # fn main() -> ppl::Result<()> {
    /// clear_param_store();
    /// set_rng_seed(0);
    /// let x = Tensor::from_slice(&[1.2f32, 0.4, 2.0]);
    /// let adam = Adam::new(AdamConfig { lr: 0.02, ..Default::default() });
    /// let mut svi = Svi::new(|| model(&x), || guide(&x), adam, TraceElbo::default())
    ///     .jit_compile(true);
    /// svi.run(1000)?; // the first step traces and compiles; the rest run the program
    /// assert!(svi.is_compiled());
    /// // The exact posterior is Normal(0.9, 0.5); Adam at lr 0.02 keeps wandering by about 0.1.
    /// assert!((get_param("loc_q")?.double_value(&[]) - 0.9).abs() < 0.3);
    /// # Ok(()) }
    /// ```
    pub fn jit_compile(self, on: bool) -> Svi<M, G, O, JitTraceElbo<L>> {
        self.map_loss(|loss| {
            if on {
                JitTraceElbo::new(loss)
            } else {
                JitTraceElbo::off(loss)
            }
        })
    }

    /// This SVI with its loss wrapped by `f` (settings kept).
    fn map_loss<L2: Elbo>(self, f: impl FnOnce(L) -> L2) -> Svi<M, G, O, L2> {
        Svi {
            model: self.model,
            guide: self.guide,
            optim: self.optim,
            loss: f(self.loss),
            threads: self.threads,
            dp: self.dp,
        }
    }

    /// Compiles the loss where it can ([`JitTraceElbo::auto`]): the speed of
    /// [`Svi::jit_compile`] when the loss, model and guide compile and pass the checks, eager
    /// steps otherwise, after a one-line note on stderr saying why.
    pub fn auto_compile(self) -> Svi<M, G, O, JitTraceElbo<L>> {
        self.map_loss(JitTraceElbo::auto)
    }

    /// Whether steps run a compiled program.
    pub fn is_compiled(&self) -> bool {
        self.loss.is_compiled()
    }

    /// One gradient step of a model and guide that take arguments (Pyro's `svi.step(*args)`):
    /// `svi.step_with(&x)` for `fn model(x: &Tensor)`, `svi.step_with((&x, &y))` for
    /// `fn model(x: &Tensor, y: &Tensor)` ([`ModelFn`]). Returns the loss before the step.
    ///
    /// Each call may pass new data (a minibatch). A compiled loss ([`Svi::jit_compile`]) takes
    /// the arguments' tensors ([`ModelArgs`]) as the program's inputs: a batch of the same
    /// shapes runs the same program; new shapes (a smaller last batch) compile once more.
    ///
    /// ```
    /// use ppl::prelude::*;
    ///
    /// #[model]
    /// fn model(x: &Tensor) -> ppl::Result<()> {
    ///     let loc = sample!(Normal::new(0.0, 1.0)?);
    ///     let _d = plate!("data", x.size()[0]);
    ///     sample!("x", Normal::new(&loc, 1.0)?, obs = x);
    ///     Ok(())
    /// }
    ///
    /// #[guide]
    /// fn guide(_x: &Tensor) -> ppl::Result<()> {
    ///     let loc_q = param!(0.0);
    ///     let scale_q = param!(1.0, constraint = positive);
    ///     sample!("loc", Normal::new(&loc_q, &scale_q)?);
    ///     Ok(())
    /// }
    ///
    /// # fn main() -> ppl::Result<()> {
    /// clear_param_store();
    /// let data = Tensor::from_slice(&[1.2f32, 0.4, 2.0, 0.8]);
    /// let adam = Adam::new(AdamConfig { lr: 0.02, ..Default::default() });
    /// let mut svi = Svi::new(model, guide, adam, TraceElbo::default());
    /// for step in 0..1000 {
    ///     let batch = data.narrow(0, 2 * (step % 2), 2); // minibatches of two
    ///     svi.step_with(&batch)?;
    /// }
    /// // Each batch's posterior mean is 2/3 of its mean (0.53 and 0.93): the fit wanders between.
    /// assert!((get_param("loc_q")?.double_value(&[]) - 0.73).abs() < 0.3);
    /// assert!(svi.evaluate_loss_with(&data)?.is_finite());
    /// # Ok(()) }
    /// ```
    pub fn step_with<A, R1, R2>(&mut self, args: A) -> Result<f64>
    where
        A: Copy + ModelArgs,
        M: ModelFn<A, R1>,
        G: ModelFn<A, R2>,
    {
        self.loss.set_inputs(arg_tensors(&args));
        let (model, guide) = (&mut self.model, &mut self.guide);
        let mut model = || model.call_with(args);
        let mut guide = || guide.call_with(args);
        let mut out = self.threads.step(&mut self.loss, &mut model, &mut guide)?;
        if let Some(dp) = &mut self.dp {
            if dp.first_sync(&out)? {
                zero_grads(&with_param_store(|ps| ps.leaves(&out.params)))?;
                out = self.threads.step(&mut self.loss, &mut model, &mut guide)?;
            }
            dp.average(&mut out)?;
        }
        finish_step(&out, &mut self.optim)
    }

    /// Runs `num_steps` steps of [`Svi::step_with`] on the same arguments and returns their
    /// losses.
    pub fn run_with<A, R1, R2>(&mut self, num_steps: usize, args: A) -> Result<Vec<f64>>
    where
        A: Copy + ModelArgs,
        M: ModelFn<A, R1>,
        G: ModelFn<A, R2>,
    {
        run_steps(num_steps, || self.step_with(args))
    }

    /// The loss of a model and guide that take arguments, without taking a step (Pyro's
    /// `svi.evaluate_loss(*args)`): a test-set loss, say.
    pub fn evaluate_loss_with<A, R1, R2>(&mut self, args: A) -> Result<f64>
    where
        A: Copy + ModelArgs,
        M: ModelFn<A, R1>,
        G: ModelFn<A, R2>,
    {
        self.loss.set_inputs(arg_tensors(&args));
        let (model, guide) = (&mut self.model, &mut self.guide);
        self.loss
            .loss(&mut || model.call_with(args), &mut || guide.call_with(args))
    }
}

impl<M, G, O, L, R1, R2> Svi<M, G, O, L>
where
    M: FnMut() -> Result<R1>,
    G: FnMut() -> Result<R2>,
    O: Optimizer,
    L: Elbo,
{
    /// One gradient step; returns the loss (`-ELBO` estimate) before the step.
    pub fn step(&mut self) -> Result<f64> {
        let mut out = self
            .threads
            .step(&mut self.loss, &mut self.model, &mut self.guide)?;
        if let Some(dp) = &mut self.dp {
            if dp.first_sync(&out)? {
                zero_grads(&with_param_store(|ps| ps.leaves(&out.params)))?;
                out = self
                    .threads
                    .step(&mut self.loss, &mut self.model, &mut self.guide)?;
            }
            dp.average(&mut out)?;
        }
        finish_step(&out, &mut self.optim)
    }

    /// Runs `num_steps` steps and returns their losses, with a progress bar showing the loss
    /// (on a terminal; quiet otherwise).
    pub fn run(&mut self, num_steps: usize) -> Result<Vec<f64>> {
        run_steps(num_steps, || self.step())
    }

    /// The loss without taking a step (no gradients).
    pub fn evaluate_loss(&mut self) -> Result<f64> {
        self.loss.loss(&mut self.model, &mut self.guide)
    }
}

/// Runs `num_steps` of `step` and returns their losses, with a progress bar showing the loss
/// (on a terminal; quiet otherwise).
fn run_steps(num_steps: usize, mut step: impl FnMut() -> Result<f64>) -> Result<Vec<f64>> {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(num_steps as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut losses = Vec::with_capacity(num_steps);
    for i in 0..num_steps {
        let loss = step()?;
        losses.push(loss);
        if i % 10 == 0 || i + 1 == num_steps {
            bar.set_position(i as u64 + 1);
            bar.set_message(format!("loss {loss:.4}"));
        }
    }
    bar.finish_and_clear();
    Ok(losses)
}

/// One SVI step with `loss`, as Pyro's `SVI.step`: the loss's gradient lands in the `.grad` of
/// the params that model and guide read ([`Elbo::loss_and_grads`]), the optimizer steps them
/// and their gradients are zeroed. Returns the loss before the step. [`Svi::step`] is this; it is
/// public for training loops whose model and guide change between steps (a new minibatch each).
pub fn step<L: Elbo, R1, R2>(
    loss: &mut L,
    model: &mut dyn FnMut() -> Result<R1>,
    guide: &mut dyn FnMut() -> Result<R2>,
    optim: &mut dyn Optimizer,
) -> Result<f64> {
    let out = loss.loss_and_grads(model, guide)?;
    finish_step(&out, optim)
}

/// Steps the optimizer on the params a loss named and zeroes their gradients.
fn finish_step(out: &LossAndGrads, optim: &mut dyn Optimizer) -> Result<f64> {
    let params = with_param_store(|ps| ps.leaves(&out.params));
    optim.step(&params)?;
    zero_grads(&params)?;
    Ok(out.loss)
}
