//! Stochastic variational inference.

use crate::error::Result;
use crate::infer::{Elbo, JitTraceElbo};
use crate::optim::Optimizer;
use crate::params::{with_param_store, zero_grads};

/// SVI: fits a guide's params to a model by stochastic optimization of an ELBO.
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
}

impl<M, G, O, L, R1, R2> Svi<M, G, O, L>
where
    M: FnMut() -> Result<R1>,
    G: FnMut() -> Result<R2>,
    O: Optimizer,
    L: Elbo,
{
    /// SVI of `model` with `guide`.
    pub fn new(model: M, guide: G, optim: O, loss: L) -> Self {
        Svi {
            model,
            guide,
            optim,
            loss,
        }
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
        let loss = if on {
            JitTraceElbo::new(self.loss)
        } else {
            JitTraceElbo::off(self.loss)
        };
        Svi::new(self.model, self.guide, self.optim, loss)
    }

    /// Compiles the loss where it can ([`JitTraceElbo::auto`]): the speed of
    /// [`Svi::jit_compile`] when the loss, model and guide compile and pass the checks, eager
    /// steps otherwise, after a one-line note on stderr saying why.
    pub fn auto_compile(self) -> Svi<M, G, O, JitTraceElbo<L>> {
        Svi::new(
            self.model,
            self.guide,
            self.optim,
            JitTraceElbo::auto(self.loss),
        )
    }

    /// Whether steps run a compiled program.
    pub fn is_compiled(&self) -> bool {
        self.loss.is_compiled()
    }

    /// One gradient step; returns the loss (`-ELBO` estimate) before the step.
    pub fn step(&mut self) -> Result<f64> {
        step(
            &mut self.loss,
            &mut self.model,
            &mut self.guide,
            &mut self.optim,
        )
    }

    /// Runs `num_steps` steps and returns their losses, with a progress bar showing the loss
    /// (on a terminal; quiet otherwise).
    pub fn run(&mut self, num_steps: usize) -> Result<Vec<f64>> {
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
            let loss = self.step()?;
            losses.push(loss);
            if i % 10 == 0 || i + 1 == num_steps {
                bar.set_position(i as u64 + 1);
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
        bar.finish_and_clear();
        Ok(losses)
    }

    /// The loss without taking a step (no gradients).
    pub fn evaluate_loss(&mut self) -> Result<f64> {
        self.loss.loss(&mut self.model, &mut self.guide)
    }
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
    let params = with_param_store(|ps| ps.leaves(&out.params));
    optim.step(&params)?;
    zero_grads(&params)?;
    Ok(out.loss)
}
