use std::rc::Rc;

use tch::Tensor;

use super::util::{probs_to_logits, to_float};
use super::{
    broadcast_args, check, check_unit, expand_param, extended_shape, validation_enabled, Arg,
    DistRef, Distribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The binomial distribution: successes in `n` independent trials.
///
/// Mass: `p(k) = C(n, k) p^k (1-p)^(n-k)` for integers `0 <= k <= n`. Parameters:
/// `total_count = n >= 0` (integer-valued), and `probs = p` in `[0, 1]` or `logits`.
/// Support: `0..=n` (as floats). Enumerable when all `n` are equal.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Binomial::new(2.0, 0.5)?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?;
/// assert!((lp.double_value(&[]) - 0.5f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Binomial {
    total_count: Tensor,
    probs: Tensor,
    logits: Tensor,
    batch_shape: Vec<i64>,
}

/// Checks that `n` holds nonnegative integers.
pub(crate) fn check_count(dist: &'static str, n: &Tensor) -> Result<()> {
    check(dist, "total_count", "a nonnegative integer", || {
        n.f_ge(0.0)?
            .f_logical_and(&n.f_eq_tensor(&n.f_floor()?)?)?
            .f_all()
    })
}

/// Errors unless `k` holds integers in `0..=n` (when validation is on).
pub(crate) fn check_counts(dist: &'static str, k: &Tensor, n: &Tensor) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    let ok = k
        .f_ge(0.0)?
        .f_logical_and(&k.f_le_tensor(n)?)?
        .f_logical_and(&k.f_eq_tensor(&k.f_floor()?)?)?;
    if ok.f_all()?.f_int64_value(&[])? == 0 {
        return Err(Error::OutsideSupport {
            dist,
            support: "integers in 0..=total_count".into(),
        });
    }
    Ok(())
}

/// `0..=n` in a new leftmost dim, for a homogeneous `n` (shared with [`super::BetaBinomial`]).
pub(crate) fn count_support(d: &dyn Distribution, n: &Tensor, expand: bool) -> Result<Tensor> {
    let max = n.f_max()?.f_double_value(&[])?;
    if n.f_min()?.f_double_value(&[])? != max {
        return Err(d.not_implemented("enumerate_support with unequal total_count"));
    }
    let mut shape = vec![-1];
    shape.extend(std::iter::repeat_n(1, d.batch_shape().len()));
    let v =
        Tensor::f_arange(max as i64 + 1, (n.kind(), n.device()))?.f_reshape(shape.as_slice())?;
    if !expand {
        return Ok(v);
    }
    let mut full = vec![max as i64 + 1];
    full.extend_from_slice(d.batch_shape());
    Ok(v.f_expand(full.as_slice(), false)?)
}

impl Binomial {
    /// `Binomial(total_count, probs)`.
    pub fn new(total_count: impl Into<Arg>, probs: impl Into<Arg>) -> Result<Binomial> {
        let [n, probs] = broadcast_args("Binomial", [total_count.into(), probs.into()])?;
        check_count("Binomial", &n)?;
        check_unit("Binomial", "probs", &probs)?;
        let logits = probs_to_logits(&probs)?;
        Ok(Self::build(n, probs, logits))
    }
    /// `Binomial(total_count, logits)` with log-odds `logits`.
    pub fn from_logits(total_count: impl Into<Arg>, logits: impl Into<Arg>) -> Result<Binomial> {
        let [n, logits] = broadcast_args("Binomial", [total_count.into(), logits.into()])?;
        check_count("Binomial", &n)?;
        let probs = logits.f_sigmoid()?;
        Ok(Self::build(n, probs, logits))
    }
    fn build(total_count: Tensor, probs: Tensor, logits: Tensor) -> Binomial {
        let batch_shape = probs.size();
        Binomial {
            total_count,
            probs,
            logits,
            batch_shape,
        }
    }
    /// The number of trials `n`.
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

impl Distribution for Binomial {
    fn name(&self) -> &'static str {
        "Binomial"
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
        let max = self.total_count.f_max().and_then(|m| m.f_double_value(&[]));
        Constraint::IntegerInterval(0, max.unwrap_or(0.0) as i64)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let n = self.total_count.f_expand(shape.as_slice(), false)?;
            let p = self.probs.f_expand(shape.as_slice(), false)?;
            to_float(Tensor::f_binomial(&n, &p)?, self.probs.kind())
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_counts("Binomial", value, &self.total_count)?;
        let n = &self.total_count;
        let l = &self.logits;
        let log_norm = n
            .f_mul(&l.f_clamp_min(0.0)?)?
            .f_add(&n.f_mul(&l.f_abs()?.f_neg()?.f_exp()?.f_log1p()?)?)?
            .f_sub(&n.f_add_scalar(1.0)?.f_lgamma()?)?;
        Ok(value
            .f_mul(l)?
            .f_sub(&value.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_sub(&n.f_sub(value)?.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_sub(&log_norm)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Binomial {
            total_count: expand_param(&self.total_count, batch_shape, &[])?,
            probs: expand_param(&self.probs, batch_shape, &[])?,
            logits: expand_param(&self.logits, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        count_support(self, &self.total_count, expand)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.total_count.f_mul(&self.probs)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let q = self.probs.f_neg()?.f_add_scalar(1.0)?;
        Ok(self.total_count.f_mul(&self.probs)?.f_mul(&q)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let lp = self.log_prob(&self.enumerate_support(false)?)?;
        Ok(lp
            .f_exp()?
            .f_mul(&lp)?
            .f_sum_dim_intlist(0, false, None)?
            .f_neg()?)
    }
}
