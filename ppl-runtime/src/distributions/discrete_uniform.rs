use tch::Tensor;

use super::util::{scalar_family, to_float};
use super::{broadcast_args, check, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The discrete uniform distribution on the integers `low..=high` (NumPyro's
/// `DiscreteUniform`).
///
/// Mass: `1 / (high - low + 1)`. Parameters: integer-valued `low <= high`. Support: the integers
/// in `[low, high]`; enumerable (with batch-shared bounds).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = DiscreteUniform::new(1.0, 6.0)?;
/// let lp = d.log_prob(&Tensor::from(3.0f64))?;
/// assert!((lp.double_value(&[]) + 6f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DiscreteUniform {
    low: Tensor,
    high: Tensor,
    batch_shape: Vec<i64>,
}

impl DiscreteUniform {
    /// `DiscreteUniform(low, high)`; integers with `low <= high`.
    pub fn new(low: impl Into<Arg>, high: impl Into<Arg>) -> Result<DiscreteUniform> {
        let [low, high] = broadcast_args("DiscreteUniform", [low.into(), high.into()])?;
        check("DiscreteUniform", "high", ">= low", || {
            high.f_ge_tensor(&low)?.f_all()
        })?;
        check("DiscreteUniform", "low and high", "integers", || {
            low.f_eq_tensor(&low.f_floor()?)?
                .f_logical_and(&high.f_eq_tensor(&high.f_floor()?)?)?
                .f_all()
        })?;
        let batch_shape = low.size();
        Ok(DiscreteUniform {
            low,
            high,
            batch_shape,
        })
    }

    fn count(&self) -> Result<Tensor> {
        Ok(self.high.f_sub(&self.low)?.f_add_scalar(1.0)?)
    }

    /// The bounds, when every batch member shares them.
    fn shared_bounds(&self) -> Result<Option<(i64, i64)>> {
        let (lo_min, lo_max) = (self.low.f_min()?, self.low.f_max()?);
        let (hi_min, hi_max) = (self.high.f_min()?, self.high.f_max()?);
        let v = |t: &Tensor| t.f_double_value(&[]);
        if v(&lo_min)? == v(&lo_max)? && v(&hi_min)? == v(&hi_max)? {
            Ok(Some((v(&lo_min)? as i64, v(&hi_min)? as i64)))
        } else {
            Ok(None)
        }
    }
}

impl Distribution for DiscreteUniform {
    scalar_family!("DiscreteUniform"; low, high);
    fn support(&self) -> Constraint {
        match self.shared_bounds() {
            Ok(Some((a, b))) => Constraint::IntegerInterval(a, b),
            _ => Constraint::Integer,
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let u = Tensor::f_rand(shape.as_slice(), (self.low.kind(), self.low.device()))?;
            let k = u.f_mul(&self.count()?)?.f_floor()?.f_add(&self.low)?;
            // u < 1, but rounding of u·count can reach count.
            Ok(k.f_minimum(&self.high)?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let lp = self
            .count()?
            .f_log()?
            .f_neg()?
            .f_add(&value.f_zeros_like()?.f_to_kind(self.low.kind())?)?;
        let outside = value
            .f_lt_tensor(&self.low)?
            .f_logical_or(&value.f_gt_tensor(&self.high)?)?
            .f_logical_or(&value.f_ne_tensor(&value.f_floor()?)?)?;
        Ok(lp.f_masked_fill(&outside, f64::NEG_INFINITY)?)
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let Some((a, b)) = self.shared_bounds()? else {
            return Err(Error::Unsupported(
                "DiscreteUniform: enumeration needs the same bounds for every batch member".into(),
            ));
        };
        let n = b - a + 1;
        let values = to_float(
            Tensor::f_arange_start(a, b + 1, (tch::Kind::Int64, self.low.device()))?,
            self.low.kind(),
        )?;
        let mut shape = vec![n];
        shape.extend(std::iter::repeat_n(1, self.batch_shape.len()));
        let values = values.f_reshape(shape.as_slice())?;
        if expand {
            let mut full = vec![n];
            full.extend_from_slice(&self.batch_shape);
            Ok(values.f_expand(full.as_slice(), false)?)
        } else {
            Ok(values)
        }
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.low.f_add(&self.high)?.f_mul_scalar(0.5)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self
            .count()?
            .f_square()?
            .f_sub_scalar(1.0)?
            .f_div_scalar(12.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.count()?.f_log()?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let c = value
            .f_floor()?
            .f_sub(&self.low)?
            .f_add_scalar(1.0)?
            .f_div(&self.count()?)?;
        Ok(c.f_clamp(0.0, 1.0)?)
    }
}
