use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Which side an observation is censored on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// NumPyro's `LeftCensoredDistribution` and `RightCensoredDistribution`: where `censored` is
/// true, the observed value `c` is a bound on the outcome, and the likelihood is `P(X <= c)`
/// (left) or `P(X > c)` (right); elsewhere it is the base density.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let base = Exponential::new(1.0f64)?.boxed();
/// let d = CensoredDistribution::right(base, &Tensor::from_slice(&[false, true]))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[1.0f64, 2.0]))?;
/// // Observed at 1: log(e^-1) = -1; still alive at 2: log P(X > 2) = -2.
/// assert!((lp - Tensor::from_slice(&[-1.0f64, -2.0])).abs().max().double_value(&[]) < 1e-9);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CensoredDistribution {
    base: DistRef,
    censored: Tensor,
    side: Side,
}

impl CensoredDistribution {
    /// Left censoring (detection limits: the outcome is at most the value).
    pub fn left(base: DistRef, censored: &Tensor) -> Result<Self> {
        Self::build(base, censored, Side::Left)
    }
    /// Right censoring (survival: the outcome exceeds the value).
    pub fn right(base: DistRef, censored: &Tensor) -> Result<Self> {
        Self::build(base, censored, Side::Right)
    }
    fn build(base: DistRef, censored: &Tensor, side: Side) -> Result<Self> {
        if !base.event_shape().is_empty() {
            return Err(Error::Shape(format!(
                "CensoredDistribution: the base {} has event shape {:?}; censoring is for \
                 scalar events",
                base.name(),
                base.event_shape()
            )));
        }
        Ok(CensoredDistribution {
            base,
            censored: censored.f_to_kind(Kind::Bool)?,
            side,
        })
    }
}

impl Distribution for CensoredDistribution {
    fn name(&self) -> &'static str {
        match self.side {
            Side::Left => "LeftCensoredDistribution",
            Side::Right => "RightCensoredDistribution",
        }
    }
    fn batch_shape(&self) -> &[i64] {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        self.base.support()
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        self.base.sample(sample_shape)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let lp = self.base.log_prob(value)?;
        let f = self.base.cdf(value)?;
        let tail = match self.side {
            Side::Left => f.f_log()?,
            Side::Right => f.f_neg()?.f_log1p()?,
        };
        Ok(tail.f_where_self(&self.censored, &lp)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(CensoredDistribution {
            base: self.base.expand(batch_shape)?,
            censored: self.censored.shallow_clone(),
            side: self.side,
        }))
    }
}

/// NumPyro's `IntervalCensoredDistribution`: each observation is a pair `(lower, upper)`
/// (`value` of shape `[.., 2]`), with flags per observation. The log-likelihood is
/// `log F(upper)` when only `left_censored`, `log(1 - F(lower))` when only `right_censored`,
/// `log(F(upper) - F(lower))` when neither (the base density at `lower` when
/// `lower == upper`), and `log(1 - (F(upper) - F(lower)))` when both (the outcome lies outside
/// the interval).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let base = Exponential::new(1.0f64)?.boxed();
/// let no = Tensor::from_slice(&[false]);
/// let d = IntervalCensoredDistribution::new(base, &no, &no)?;
/// let lp = d.log_prob(&Tensor::from_slice(&[1.0f64, 2.0]).reshape([1, 2]))?;
/// let want = ((-1f64).exp() - (-2f64).exp()).ln();
/// assert!((lp.double_value(&[0]) - want).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct IntervalCensoredDistribution {
    base: DistRef,
    left: Tensor,
    right: Tensor,
    event_shape: Vec<i64>,
}

impl IntervalCensoredDistribution {
    /// `base` with per-observation flags.
    pub fn new(base: DistRef, left_censored: &Tensor, right_censored: &Tensor) -> Result<Self> {
        if !base.event_shape().is_empty() {
            return Err(Error::Shape(format!(
                "IntervalCensoredDistribution: the base {} has event shape {:?}; censoring is \
                 for scalar events",
                base.name(),
                base.event_shape()
            )));
        }
        Ok(IntervalCensoredDistribution {
            base,
            left: left_censored.f_to_kind(Kind::Bool)?,
            right: right_censored.f_to_kind(Kind::Bool)?,
            event_shape: vec![2],
        })
    }
}

impl Distribution for IntervalCensoredDistribution {
    fn name(&self) -> &'static str {
        "IntervalCensoredDistribution"
    }
    fn batch_shape(&self) -> &[i64] {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(Constraint::Real), 1)
    }
    fn sample(&self, _sample_shape: &[i64]) -> Result<Tensor> {
        Err(Error::Unsupported(
            "IntervalCensoredDistribution describes observed intervals and has no sampler; \
             sample the base distribution"
                .into(),
        ))
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        if value.size().last() != Some(&2) {
            return Err(Error::Shape(format!(
                "IntervalCensoredDistribution: values are (lower, upper) pairs, shape [.., 2]; \
                 got {:?}",
                value.size()
            )));
        }
        let lo = value.f_select(-1, 0)?;
        let hi = value.f_select(-1, 1)?;
        let (fl, fh) = (self.base.cdf(&lo)?, self.base.cdf(&hi)?);
        let point = lo.f_eq_tensor(&hi)?;
        let interval = fh
            .f_sub(&fl)?
            .f_log()?
            .f_where_self(&point.f_logical_not()?, &self.base.log_prob(&lo)?)?;
        let left_only = self.left.f_logical_and(&self.right.f_logical_not()?)?;
        let right_only = self.right.f_logical_and(&self.left.f_logical_not()?)?;
        let both = self.left.f_logical_and(&self.right)?;
        let outside = fh.f_sub(&fl)?.f_neg()?.f_log1p()?;
        let lp = outside.f_where_self(&both, &interval)?;
        let lp = fh.f_log()?.f_where_self(&left_only, &lp)?;
        Ok(fl.f_neg()?.f_log1p()?.f_where_self(&right_only, &lp)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(IntervalCensoredDistribution {
            base: self.base.expand(batch_shape)?,
            left: self.left.shallow_clone(),
            right: self.right.shallow_clone(),
            event_shape: self.event_shape.clone(),
        }))
    }
}
