use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{validation_enabled, Arg, Binomial, Categorical, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The multinomial distribution: category counts of `n` independent categorical draws.
///
/// Mass: `p(x) = n! / ∏ x_k! ∏ p_k^(x_k)` for nonnegative integer vectors summing to `n`.
/// Parameters: `total_count = n` (an integer), and `probs` (normalized along the last dim) or
/// `logits`. Support: count vectors (floats, event shape `[K]`).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Multinomial::new(2, &Tensor::from_slice(&[0.5f32, 0.5]))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[1.0f32, 1.0]))?;
/// assert!((lp.double_value(&[]) - 0.5f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Multinomial {
    total_count: i64,
    cat: Categorical,
    event_shape: Vec<i64>,
}

impl Multinomial {
    /// `Multinomial(total_count, probs)`.
    pub fn new(total_count: i64, probs: impl Into<Arg>) -> Result<Multinomial> {
        Self::wrap(total_count, Categorical::new(probs)?)
    }
    /// `Multinomial(total_count, logits)`.
    pub fn from_logits(total_count: i64, logits: impl Into<Arg>) -> Result<Multinomial> {
        Self::wrap(total_count, Categorical::from_logits(logits)?)
    }
    fn wrap(total_count: i64, cat: Categorical) -> Result<Multinomial> {
        if total_count < 0 {
            return Err(Error::InvalidParameter {
                dist: "Multinomial",
                param: "total_count",
                expected: ">= 0".into(),
            });
        }
        let event_shape = vec![cat.num_categories()];
        Ok(Multinomial {
            total_count,
            cat,
            event_shape,
        })
    }
    /// The number of draws `n`.
    pub fn total_count(&self) -> i64 {
        self.total_count
    }
    /// Normalized probabilities.
    pub fn probs(&self) -> &Tensor {
        self.cat.probs()
    }
    /// Normalized log-probabilities.
    pub fn logits(&self) -> &Tensor {
        self.cat.logits()
    }
}

impl Distribution for Multinomial {
    fn name(&self) -> &'static str {
        "Multinomial"
    }
    fn batch_shape(&self) -> &[i64] {
        self.cat.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(
            Box::new(Constraint::IntegerInterval(0, self.total_count)),
            1,
        )
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let mut s = vec![self.total_count];
        s.extend_from_slice(sample_shape);
        let idx = self.cat.sample(&s)?;
        let k = self.event_shape[0];
        let counts = idx
            .f_one_hot(k)?
            .f_sum_dim_intlist(0, false, None::<Kind>)?;
        Ok(counts.f_to_kind(self.probs().kind())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        if validation_enabled() {
            let sums = value.f_sum_dim_intlist(-1, false, None::<Kind>)?;
            let ok = Constraint::NonnegativeInteger
                .check(value)?
                .f_all()?
                .f_logical_and(&sums.f_eq(self.total_count as f64)?.f_all()?)?;
            if ok.f_int64_value(&[])? == 0 {
                return Err(Error::OutsideSupport {
                    dist: "Multinomial",
                    support: format!("count vectors summing to {}", self.total_count),
                });
            }
        }
        let logits = self.logits().f_add(&value.f_zeros_like()?)?;
        let zero = value.f_eq(0.0)?.f_logical_and(&logits.f_isneginf()?)?;
        let logits = logits.f_masked_fill(&zero, 0.0)?;
        let sum = |t: &Tensor| t.f_sum_dim_intlist(-1, false, None::<Kind>);
        Ok(sum(value)?
            .f_add_scalar(1.0)?
            .f_lgamma()?
            .f_sub(&sum(&value.f_add_scalar(1.0)?.f_lgamma()?)?)?
            .f_add(&sum(&logits.f_mul(value)?)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let logits = super::expand_param(self.logits(), batch_shape, &self.event_shape)?;
        Ok(Rc::new(Self::from_logits(self.total_count, logits)?))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.probs().f_mul_scalar(self.total_count as f64)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let p = self.probs();
        Ok(p.f_mul(&p.f_neg()?.f_add_scalar(1.0)?)?
            .f_mul_scalar(self.total_count as f64)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        // n H(cat) - log n! + Σ_k E[log x_k!], with x_k ~ Binomial(n, p_k).
        let n = self.total_count as f64;
        let term1 = self
            .cat
            .entropy()?
            .f_mul_scalar(n)?
            .f_sub_scalar(libm_lgamma(n + 1.0))?;
        if self.total_count == 0 {
            return Ok(term1);
        }
        let p = self.probs();
        let bin = Binomial::new(n, p)?;
        let support = bin
            .enumerate_support(false)?
            .f_narrow(0, 1, self.total_count)?;
        let w = bin
            .log_prob(&support)?
            .f_exp()?
            .f_mul(&support.f_add_scalar(1.0)?.f_lgamma()?)?;
        Ok(term1.f_add(&w.f_sum_dim_intlist([0, -1].as_slice(), false, None::<Kind>)?)?)
    }
}

fn libm_lgamma(x: f64) -> f64 {
    // ln Γ(x) for integer-valued x >= 1: ln((x-1)!).
    (2..x.round() as i64).map(|i| (i as f64).ln()).sum()
}
