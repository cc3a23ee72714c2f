use std::rc::Rc;

use tch::Tensor;

use super::util::{bound_of, broadcast_shape, uniform_open};
use super::{expand_param, extended_shape, validate_sample, Arg, Cauchy, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// NumPyro's `TruncatedDistribution`: a univariate `base` (with `cdf` and `icdf`) restricted to
/// `[low, high]`; either bound may be infinite (`LeftTruncated`/`RightTruncated` are the
/// one-sided cases).
///
/// Density: `p_base(x) / (F(high) - F(low))` on `[low, high]`. Sampling by the inverse CDF
/// (reparameterized when the base's `cdf` and `icdf` are differentiable).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// // An exponential truncated to [0, 1]: density λ e^(-λx) / (1 - e^(-λ)).
/// let d = TruncatedDistribution::new(Exponential::new(2.0f64)?.boxed(), 0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.5f64))?.double_value(&[]);
/// let want = (2.0f64).ln() - 1.0 - (1.0 - (-2.0f64).exp()).ln();
/// assert!((lp - want).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TruncatedDistribution {
    base: DistRef,
    low: Tensor,
    high: Tensor,
    batch_shape: Vec<i64>,
}

impl TruncatedDistribution {
    /// `base` truncated to `[low, high]` (`f64::NEG_INFINITY`/`INFINITY` for one side).
    pub fn new(base: DistRef, low: impl Into<Arg>, high: impl Into<Arg>) -> Result<Self> {
        if !base.event_shape().is_empty() {
            return Err(Error::Shape(format!(
                "TruncatedDistribution: the base {} has event shape {:?}; truncation is for \
                 scalar events",
                base.name(),
                base.event_shape()
            )));
        }
        let like = base.mean().or_else(|_| base.sample(&[]))?;
        let to = |a: Arg| -> Result<Tensor> {
            Ok(match a {
                Arg::Tensor(t) => t.f_to_kind(like.kind())?,
                Arg::Scalar(v) => Tensor::f_scalar_tensor(v, (like.kind(), like.device()))?,
            })
        };
        let (low, high) = (to(low.into())?, to(high.into())?);
        super::check("TruncatedDistribution", "high", "> low", || {
            high.f_gt_tensor(&low)?.f_all()
        })?;
        let batch_shape = broadcast_shape(
            &broadcast_shape(base.batch_shape(), &low.size()),
            &high.size(),
        );
        let base = if base.batch_shape() == batch_shape.as_slice() {
            base
        } else {
            base.expand(&batch_shape)?
        };
        Ok(TruncatedDistribution {
            base,
            low: expand_param(&low, &batch_shape, &[])?,
            high: expand_param(&high, &batch_shape, &[])?,
            batch_shape,
        })
    }

    /// `(F(low), F(high) - F(low))`.
    fn mass(&self) -> Result<(Tensor, Tensor)> {
        let fl = self.base.cdf(&self.low)?;
        let fh = self.base.cdf(&self.high)?;
        Ok((fl.shallow_clone(), fh.f_sub(&fl)?))
    }
}

impl Distribution for TruncatedDistribution {
    fn name(&self) -> &'static str {
        "TruncatedDistribution"
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
        match (bound_of(&self.low), bound_of(&self.high)) {
            (Ok(a), Ok(b)) => Constraint::Interval(a, b),
            _ => self.base.support(),
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.low)?;
        let x = self.icdf(&u)?;
        Ok(x.f_clamp_tensor(Some(&self.low), Some(&self.high))?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (_, z) = self.mass()?;
        let lp = self.base.log_prob(value)?.f_sub(&z.f_log()?)?;
        let outside = value
            .f_lt_tensor(&self.low)?
            .f_logical_or(&value.f_gt_tensor(&self.high)?)?;
        Ok(lp.f_masked_fill(&outside, f64::NEG_INFINITY)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(TruncatedDistribution {
            base: self.base.expand(batch_shape)?,
            low: expand_param(&self.low, batch_shape, &[])?,
            high: expand_param(&self.high, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let (fl, z) = self.mass()?;
        Ok(self
            .base
            .cdf(value)?
            .f_sub(&fl)?
            .f_div(&z)?
            .f_clamp(0.0, 1.0)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let (fl, z) = self.mass()?;
        self.base.icdf(&fl.f_add(&value.f_mul(&z)?)?)
    }
}

/// NumPyro's `TruncatedCauchy`: [`TruncatedDistribution`] over a [`Cauchy`].
pub struct TruncatedCauchy;

// NumPyro's name for a truncated Cauchy: `new` builds the TruncatedDistribution.
#[allow(clippy::new_ret_no_self)]
impl TruncatedCauchy {
    /// `Cauchy(loc, scale)` truncated to `[low, high]`.
    pub fn new(
        loc: impl Into<Arg>,
        scale: impl Into<Arg>,
        low: impl Into<Arg>,
        high: impl Into<Arg>,
    ) -> Result<TruncatedDistribution> {
        TruncatedDistribution::new(Rc::new(Cauchy::new(loc, scale)?), low, high)
    }
}
