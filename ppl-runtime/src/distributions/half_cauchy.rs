use std::f64::consts::PI;

use tch::Tensor;

use super::util::{full_like, scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The half-Cauchy distribution: `|Y|` for `Y ~ Cauchy(0, scale)`.
///
/// Density: `p(x) = 2 / (π scale (1 + (x / scale)²))` for `x >= 0`. Parameters: `scale > 0`.
/// Support: `x >= 0`. Reparameterized. Mean and variance are infinite.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = HalfCauchy::new(1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) - (2.0 / std::f64::consts::PI).ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HalfCauchy {
    scale: Tensor,
    /// The scale when given as a plain number (`log_prob` folds it into scalars).
    scale_const: Option<f64>,
    batch_shape: Vec<i64>,
}

impl HalfCauchy {
    /// `HalfCauchy(scale)`; `scale` must be positive.
    pub fn new(scale: impl Into<Arg>) -> Result<HalfCauchy> {
        let scale = scale.into();
        let scale_const = match scale {
            Arg::Scalar(v) => Some(v),
            Arg::Tensor(_) => None,
        };
        let [scale] = broadcast_args("HalfCauchy", [scale])?;
        check_positive("HalfCauchy", "scale", &scale)?;
        let batch_shape = scale.size();
        Ok(HalfCauchy {
            scale,
            scale_const,
            batch_shape,
        })
    }
    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for HalfCauchy {
    scalar_family!("HalfCauchy"; scale; copy scale_const);
    fn support(&self) -> Constraint {
        Constraint::Nonnegative
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let u = uniform_open(&shape, &self.scale)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        if let (Some(s), true) = (self.scale_const, crate::distributions::validation_enabled()) {
            // Validation has ruled out negative values: no masking needed.
            let lp = value
                .f_mul_scalar(1.0 / s)?
                .f_square()?
                .f_log1p()?
                .f_neg()?
                .f_add_scalar(-s.ln() - (PI / 2.0).ln())?;
            let shape = super::util::broadcast_shape(&lp.size(), &self.batch_shape);
            return Ok(if lp.size() == shape {
                lp
            } else {
                lp.f_expand(shape.as_slice(), false)?
            });
        }
        let z = value.f_div(&self.scale)?;
        let lp = z
            .f_square()?
            .f_log1p()?
            .f_add(&self.scale.f_log()?)?
            .f_add_scalar((PI / 2.0).ln())?
            .f_neg()?;
        // Zero density below 0 (reachable with validation off), as torch.
        Ok(lp.f_masked_fill(&value.f_lt(0.0)?, f64::NEG_INFINITY)?)
    }
    fn mean(&self) -> Result<Tensor> {
        full_like(&self.scale, f64::INFINITY)
    }
    fn variance(&self) -> Result<Tensor> {
        full_like(&self.scale, f64::INFINITY)
    }
    fn entropy(&self) -> Result<Tensor> {
        Ok(self.scale.f_log()?.f_add_scalar((2.0 * PI).ln())?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value.f_div(&self.scale)?.f_atan()?.f_mul_scalar(2.0 / PI)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(value.f_mul_scalar(PI / 2.0)?.f_tan()?.f_mul(&self.scale)?)
    }
}
