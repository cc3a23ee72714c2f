use tch::Tensor;

use super::util::{probs_to_logits, scalar_family, uniform_open};
use super::{broadcast_args, check_unit, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// Where the closed forms lose precision (`λ` near 1/2), torch switches to Taylor expansions
/// around 1/2; so does ppl, on the same interval.
const LIMS: (f64, f64) = (0.499, 0.501);

/// The continuous Bernoulli distribution on `[0, 1]` (Loaiza-Ganem and Cunningham 2019; torch's
/// `ContinuousBernoulli`).
///
/// Density: `C(λ) λ^x (1 - λ)^(1-x)` with the normalizer `C(λ) = 2 atanh(1 - 2λ) / (1 - 2λ)`
/// (2 at `λ = 1/2`). Parameters: `probs = λ` in `(0, 1)` or `logits`. Support: the unit
/// interval. Reparameterized (through the inverse CDF).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = ContinuousBernoulli::new(0.5)?;
/// // At λ = 1/2 the density is 1 everywhere.
/// assert!(d.log_prob(&Tensor::from(0.3f32))?.double_value(&[]).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ContinuousBernoulli {
    probs: Tensor,
    logits: Tensor,
    batch_shape: Vec<i64>,
}

impl ContinuousBernoulli {
    /// `ContinuousBernoulli(probs)`, `probs` in `[0, 1]`.
    pub fn new(probs: impl Into<Arg>) -> Result<ContinuousBernoulli> {
        let [probs] = broadcast_args("ContinuousBernoulli", [probs.into()])?;
        check_unit("ContinuousBernoulli", "probs", &probs)?;
        let logits = probs_to_logits(&probs)?;
        let batch_shape = probs.size();
        Ok(ContinuousBernoulli {
            probs,
            logits,
            batch_shape,
        })
    }
    /// From log-odds.
    pub fn from_logits(logits: impl Into<Arg>) -> Result<ContinuousBernoulli> {
        let [logits] = broadcast_args("ContinuousBernoulli", [logits.into()])?;
        let probs = logits.f_sigmoid()?;
        let batch_shape = probs.size();
        Ok(ContinuousBernoulli {
            probs,
            logits,
            batch_shape,
        })
    }

    /// Where the closed forms are used.
    fn outside(&self) -> Result<Tensor> {
        Ok(self
            .probs
            .f_le(LIMS.0)?
            .f_logical_or(&self.probs.f_gt(LIMS.1)?)?)
    }

    /// `λ` where the closed forms are used, `LIMS.0` elsewhere (kept finite for gradients).
    fn cut(&self) -> Result<Tensor> {
        let fill = self.probs.f_full_like(LIMS.0)?;
        Ok(self.probs.f_where_self(&self.outside()?, &fill)?)
    }

    /// `log C(λ)`.
    fn log_norm(&self) -> Result<Tensor> {
        let c = self.cut()?;
        let below = c.f_le(0.5)?;
        let c_below = c.f_where_self(&below, &c.f_zeros_like()?)?;
        let c_above = c.f_where_self(&c.f_ge(0.5)?, &c.f_ones_like()?)?;
        let closed = c
            .f_neg()?
            .f_log1p()?
            .f_sub(&c.f_log()?)?
            .f_abs()?
            .f_log()?
            .f_sub(&c_below.f_mul_scalar(-2.0)?.f_log1p()?.f_where_self(
                &below,
                &c_above.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?.f_log()?,
            )?)?;
        let x = self.probs.f_sub_scalar(0.5)?.f_square()?;
        let taylor = x
            .f_mul_scalar(104.0 / 45.0)?
            .f_add_scalar(4.0 / 3.0)?
            .f_mul(&x)?
            .f_add_scalar(std::f64::consts::LN_2)?;
        Ok(closed.f_where_self(&self.outside()?, &taylor)?)
    }
}

impl Distribution for ContinuousBernoulli {
    scalar_family!("ContinuousBernoulli"; probs, logits);
    fn support(&self) -> Constraint {
        Constraint::UnitInterval
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.probs)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        // -BCE(logits, x) + log C, with -BCE = x·logits - softplus(logits).
        let ll = value
            .f_mul(&self.logits)?
            .f_sub(&self.logits.f_softplus()?)?;
        Ok(ll.f_add(&self.log_norm()?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let c = self.cut()?;
        let closed = c
            .f_div(&c.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?)?
            .f_add(&c.f_neg()?.f_log1p()?.f_sub(&c.f_log()?)?.f_reciprocal()?)?;
        let x = self.probs.f_sub_scalar(0.5)?;
        let taylor = x
            .f_square()?
            .f_mul_scalar(16.0 / 45.0)?
            .f_add_scalar(1.0 / 3.0)?
            .f_mul(&x)?
            .f_add_scalar(0.5)?;
        Ok(closed.f_where_self(&self.outside()?, &taylor)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let c = self.cut()?;
        let closed = c
            .f_mul(&c.f_sub_scalar(1.0)?)?
            .f_div(&c.f_mul_scalar(-2.0)?.f_add_scalar(1.0)?.f_square()?)?
            .f_add(
                &c.f_neg()?
                    .f_log1p()?
                    .f_sub(&c.f_log()?)?
                    .f_square()?
                    .f_reciprocal()?,
            )?;
        let x = self.probs.f_sub_scalar(0.5)?.f_square()?;
        let taylor = x
            .f_mul_scalar(128.0 / 945.0)?
            .f_neg()?
            .f_add_scalar(1.0 / 15.0)?
            .f_mul(&x)?
            .f_neg()?
            .f_add_scalar(1.0 / 12.0)?;
        Ok(closed.f_where_self(&self.outside()?, &taylor)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let log0 = self.probs.f_neg()?.f_log1p()?;
        let log1 = self.probs.f_log()?;
        Ok(self
            .mean()?
            .f_mul(&log0.f_sub(&log1)?)?
            .f_sub(&self.log_norm()?)?
            .f_sub(&log0)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let c = self.cut()?;
        let closed = c
            .f_pow(value)?
            .f_mul(
                &c.f_neg()?
                    .f_add_scalar(1.0)?
                    .f_pow(&value.f_neg()?.f_add_scalar(1.0)?)?,
            )?
            .f_add(&c)?
            .f_sub_scalar(1.0)?
            .f_div(&c.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?)?;
        let unbounded = closed.f_where_self(&self.outside()?, value)?;
        let zeros = unbounded.f_zeros_like()?;
        let ones = unbounded.f_ones_like()?;
        let upper = ones.f_where_self(&value.f_ge(1.0)?, &unbounded)?;
        Ok(zeros.f_where_self(&value.f_le(0.0)?, &upper)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let c = self.cut()?;
        let closed = c
            .f_neg()?
            .f_add(&value.f_mul(&c.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?)?)?
            .f_log1p()?
            .f_sub(&c.f_neg()?.f_log1p()?)?
            .f_div(&c.f_log()?.f_sub(&c.f_neg()?.f_log1p()?)?)?;
        Ok(closed.f_where_self(&self.outside()?, value)?)
    }
}
