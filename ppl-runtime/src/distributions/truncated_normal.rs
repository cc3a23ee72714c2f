use std::f64::consts::{PI, SQRT_2};

use tch::Tensor;

use super::util::{bound_of, scalar_family, std_normal_cdf, uniform_open};
use super::{
    broadcast_args, check, check_positive, extended_shape, validate_sample, Arg, Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The normal distribution truncated to `[low, high]` (NumPyro's `TruncatedNormal`; either
/// bound may be infinite for a one-sided truncation).
///
/// Density: `φ((x - loc)/scale) / (scale Z)` on `[low, high]`, with `Z = Φ(β) - Φ(α)`,
/// `α = (low - loc)/scale`, `β = (high - loc)/scale`. `Z` is computed in the lower tail of
/// whichever side keeps it accurate (NumPyro's trick). Support: `[low, high]` per element.
/// Reparameterized (through the inverse CDF).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// // Truncated to [0, inf): the half-normal, density 2 φ(x).
/// let d = TruncatedNormal::new(0.0, 1.0, 0.0, f64::INFINITY)?;
/// let lp = d.log_prob(&Tensor::from(1.0f64))?;
/// let half_normal = (2.0 / (2.0 * std::f64::consts::PI).sqrt()).ln() - 0.5;
/// assert!((lp.double_value(&[]) - half_normal).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TruncatedNormal {
    loc: Tensor,
    scale: Tensor,
    low: Tensor,
    high: Tensor,
    batch_shape: Vec<i64>,
}

/// `log φ(z)`.
fn log_phi(z: &Tensor) -> Result<Tensor> {
    Ok(z.f_square()?
        .f_mul_scalar(-0.5)?
        .f_sub_scalar(0.5 * (2.0 * PI).ln())?)
}

/// `Φ⁻¹(p)`.
fn std_normal_icdf(p: &Tensor) -> Result<Tensor> {
    Ok(p.f_mul_scalar(2.0)?
        .f_sub_scalar(1.0)?
        .f_erfinv()?
        .f_mul_scalar(SQRT_2)?)
}

/// `z φ(z)`, 0 at infinite `z`.
fn z_phi(z: &Tensor) -> Result<Tensor> {
    let v = z.f_mul(&log_phi(z)?.f_exp()?)?;
    Ok(v.f_nan_to_num(Some(0.0), Some(0.0), Some(0.0))?)
}

impl TruncatedNormal {
    /// `TruncatedNormal(loc, scale, low, high)`; `scale > 0`, `low < high`.
    pub fn new(
        loc: impl Into<Arg>,
        scale: impl Into<Arg>,
        low: impl Into<Arg>,
        high: impl Into<Arg>,
    ) -> Result<TruncatedNormal> {
        let [loc, scale, low, high] = broadcast_args(
            "TruncatedNormal",
            [loc.into(), scale.into(), low.into(), high.into()],
        )?;
        check_positive("TruncatedNormal", "scale", &scale)?;
        check("TruncatedNormal", "high", "> low", || {
            high.f_gt_tensor(&low)?.f_all()
        })?;
        let batch_shape = loc.size();
        Ok(TruncatedNormal {
            loc,
            scale,
            low,
            high,
            batch_shape,
        })
    }

    /// `(α, β)`, the standardized bounds.
    fn alpha_beta(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.low.f_sub(&self.loc)?.f_div(&self.scale)?,
            self.high.f_sub(&self.loc)?.f_div(&self.scale)?,
        ))
    }

    /// `sign` (-1 where both bounds sit above the mean) and `Z = sign (Φ(sign β) - Φ(sign α))`.
    fn sign_and_z(&self) -> Result<(Tensor, Tensor)> {
        let (a, b) = self.alpha_beta()?;
        let sign = a
            .f_gt(0.0)?
            .f_to_kind(a.kind())?
            .f_mul_scalar(-2.0)?
            .f_add_scalar(1.0)?;
        let z = std_normal_cdf(&sign.f_mul(&b)?)?
            .f_sub(&std_normal_cdf(&sign.f_mul(&a)?)?)?
            .f_mul(&sign)?;
        Ok((sign, z))
    }
}

impl Distribution for TruncatedNormal {
    scalar_family!("TruncatedNormal"; loc, scale, low, high);
    fn support(&self) -> Constraint {
        match (bound_of(&self.low), bound_of(&self.high)) {
            (Ok(a), Ok(b)) => Constraint::Interval(a, b),
            _ => Constraint::Real,
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.loc)?;
        let x = self.icdf(&u)?;
        // Rounding can land a hair outside the bounds.
        Ok(x.f_clamp_tensor(Some(&self.low), Some(&self.high))?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (_, z) = self.sign_and_z()?;
        let xi = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        let lp = log_phi(&xi)?
            .f_sub(&self.scale.f_log()?)?
            .f_sub(&z.f_log()?)?;
        let outside = value
            .f_lt_tensor(&self.low)?
            .f_logical_or(&value.f_gt_tensor(&self.high)?)?;
        Ok(lp.f_masked_fill(&outside, f64::NEG_INFINITY)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let (a, b) = self.alpha_beta()?;
        let (_, z) = self.sign_and_z()?;
        let d = log_phi(&a)?.f_exp()?.f_sub(&log_phi(&b)?.f_exp()?)?;
        Ok(self.loc.f_add(&self.scale.f_mul(&d.f_div(&z)?)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let (a, b) = self.alpha_beta()?;
        let (_, z) = self.sign_and_z()?;
        let d = log_phi(&a)?
            .f_exp()?
            .f_sub(&log_phi(&b)?.f_exp()?)?
            .f_div(&z)?;
        let t = z_phi(&a)?.f_sub(&z_phi(&b)?)?.f_div(&z)?;
        Ok(self
            .scale
            .f_square()?
            .f_mul(&t.f_add_scalar(1.0)?.f_sub(&d.f_square()?)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let (a, b) = self.alpha_beta()?;
        let (_, z) = self.sign_and_z()?;
        let t = z_phi(&a)?
            .f_sub(&z_phi(&b)?)?
            .f_div(&z)?
            .f_mul_scalar(0.5)?;
        Ok(self
            .scale
            .f_mul(&z)?
            .f_log()?
            .f_add_scalar(0.5 * (2.0 * PI * std::f64::consts::E).ln())?
            .f_add(&t)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let (a, _) = self.alpha_beta()?;
        let (sign, z) = self.sign_and_z()?;
        let xi = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        let c = std_normal_cdf(&sign.f_mul(&xi)?)?
            .f_sub(&std_normal_cdf(&sign.f_mul(&a)?)?)?
            .f_mul(&sign)?
            .f_div(&z)?;
        Ok(c.f_clamp(0.0, 1.0)?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        // ξ = sign Φ⁻¹(Φ(sign α) + sign u Z)
        let (a, _) = self.alpha_beta()?;
        let (sign, z) = self.sign_and_z()?;
        let p = std_normal_cdf(&sign.f_mul(&a)?)?.f_add(&sign.f_mul(value)?.f_mul(&z)?)?;
        let xi = std_normal_icdf(&p)?.f_mul(&sign)?;
        Ok(self.loc.f_add(&self.scale.f_mul(&xi)?)?)
    }
}
