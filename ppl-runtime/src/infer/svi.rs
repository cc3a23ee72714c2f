//! Stochastic variational inference.

use crate::error::Result;
use crate::infer::Elbo;
use crate::optim::Optimizer;

/// SVI: fits a guide's params to a model by stochastic optimization of an ELBO.
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

    /// One gradient step; returns the loss (`-ELBO` estimate) before the step.
    pub fn step(&mut self) -> Result<f64> {
        self.loss
            .step(&mut self.model, &mut self.guide, &mut self.optim)
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
        let _ng = tch::no_grad_guard();
        Ok(self
            .loss
            .loss_and_surrogate(&mut self.model, &mut self.guide)?
            .loss)
    }
}
