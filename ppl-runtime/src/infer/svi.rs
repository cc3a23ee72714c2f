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

    /// The loss without taking a step (no gradients).
    pub fn evaluate_loss(&mut self) -> Result<f64> {
        let _ng = tch::no_grad_guard();
        Ok(self
            .loss
            .loss_and_surrogate(&mut self.model, &mut self.guide)?
            .loss)
    }
}
