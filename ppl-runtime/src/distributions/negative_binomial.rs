use std::rc::Rc;

use tch::Tensor;

use super::util::{probs_to_logits, standard_gamma, to_float};
use super::{
    broadcast_args, check, check_unit, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The negative binomial distribution: successes before `total_count` failures (torch's
/// convention), each trial succeeding with probability `p`.
///
/// Mass: `p(k) = Γ(k + r) / (k! Γ(r)) p^k (1-p)^r` for integers `k >= 0`. Parameters:
/// `total_count = r > 0` (real), and `probs = p` in `[0, 1)` or `logits`. Support: the
/// nonnegative integers (as floats).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = NegativeBinomial::new(1.0, 0.5)?; // = Geometric(0.5)
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NegativeBinomial {
    total_count: Tensor,
    probs: Tensor,
    logits: Tensor,
    batch_shape: Vec<i64>,
}

impl NegativeBinomial {
    /// `NegativeBinomial(total_count, probs)`.
    pub fn new(total_count: impl Into<Arg>, probs: impl Into<Arg>) -> Result<NegativeBinomial> {
        let [r, probs] = broadcast_args("NegativeBinomial", [total_count.into(), probs.into()])?;
        check_unit("NegativeBinomial", "probs", &probs)?;
        let logits = probs_to_logits(&probs)?;
        Self::build(r, probs, logits)
    }
    /// `NegativeBinomial(total_count, logits)`.
    pub fn from_logits(
        total_count: impl Into<Arg>,
        logits: impl Into<Arg>,
    ) -> Result<NegativeBinomial> {
        let [r, logits] = broadcast_args("NegativeBinomial", [total_count.into(), logits.into()])?;
        let probs = logits.f_sigmoid()?;
        Self::build(r, probs, logits)
    }
    fn build(total_count: Tensor, probs: Tensor, logits: Tensor) -> Result<NegativeBinomial> {
        check("NegativeBinomial", "total_count", ">= 0", || {
            total_count.f_ge(0.0)?.f_all()
        })?;
        let batch_shape = probs.size();
        Ok(NegativeBinomial {
            total_count,
            probs,
            logits,
            batch_shape,
        })
    }
    /// The number of failures `r`.
    pub fn total_count(&self) -> &Tensor {
        &self.total_count
    }
    /// The success probability.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
    /// The log-odds of success.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }
}

/// The negative-binomial log-mass in terms of logits (shared with [`super::GammaPoisson`]).
pub(crate) fn nb_log_prob(r: &Tensor, logits: &Tensor, k: &Tensor) -> Result<Tensor> {
    let unnorm = r
        .f_mul(&logits.f_neg()?.f_log_sigmoid()?)?
        .f_add(&k.f_mul(&logits.f_log_sigmoid()?)?)?;
    let r_k = r.f_add(k)?;
    let norm = r_k
        .f_lgamma()?
        .f_neg()?
        .f_add(&k.f_add_scalar(1.0)?.f_lgamma()?)?
        .f_add(&r.f_lgamma()?)?;
    let norm = norm.f_masked_fill(&r_k.f_eq(0.0)?, 0.0)?;
    Ok(unnorm.f_sub(&norm)?)
}

/// A Poisson draw at a gamma-distributed rate (shared with [`super::GammaPoisson`]).
pub(crate) fn gamma_poisson_sample(alpha: &Tensor, rate: &Tensor, shape: &[i64]) -> Result<Tensor> {
    tch::no_grad(|| {
        let lam = standard_gamma(alpha, shape)?.f_div(rate)?;
        to_float(lam.f_poisson()?, alpha.kind())
    })
}

impl Distribution for NegativeBinomial {
    fn name(&self) -> &'static str {
        "NegativeBinomial"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        gamma_poisson_sample(&self.total_count, &self.logits.f_neg()?.f_exp()?, &shape)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        nb_log_prob(&self.total_count, &self.logits, value)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(NegativeBinomial {
            total_count: expand_param(&self.total_count, batch_shape, &[])?,
            probs: expand_param(&self.probs, batch_shape, &[])?,
            logits: expand_param(&self.logits, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.total_count.f_mul(&self.logits.f_exp()?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.mean()?.f_div(&self.logits.f_neg()?.f_sigmoid()?)?)
    }
}
