use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{expand_param, extended_shape, validation_enabled, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The multivariate normal distribution `N(loc, Σ)` over `R^k`, parameterized by its
/// covariance, precision or lower Cholesky factor `L` (`Σ = L Lᵀ`).
///
/// Density: `p(x) = exp(-½ (x - loc)ᵀ Σ⁻¹ (x - loc)) / √((2π)^k det Σ)`. Parameters: `loc`
/// (`batch + [k]`) and a `batch + [k, k]` matrix: `Σ` and the precision `Σ⁻¹` symmetric positive
/// definite, `L` lower triangular with a positive diagonal; batch dims broadcast. Support:
/// `R^k` (event shape `[k]`). Reparameterized through `L`: `x = loc + L ε`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = MultivariateNormal::new(&Tensor::zeros([2], (Kind::Double, Device::Cpu)),
///                                 &Tensor::eye(2, (Kind::Double, Device::Cpu)))?;
/// let lp = d.log_prob(&Tensor::zeros([2], (Kind::Double, Device::Cpu)))?;
/// assert!((lp.double_value(&[]) + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MultivariateNormal {
    loc: Tensor,
    scale_tril: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

/// Broadcasts two shapes as torch does.
pub(crate) fn broadcast_shapes(a: &[i64], b: &[i64]) -> Result<Vec<i64>> {
    let n = a.len().max(b.len());
    let get = |s: &[i64], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            (x, y) => Err(Error::Shape(format!(
                "shapes {a:?} and {b:?} do not broadcast ({x} vs {y})"
            ))),
        })
        .collect()
}

fn invalid(param: &'static str, expected: &str) -> Error {
    Error::InvalidParameter {
        dist: "MultivariateNormal",
        param,
        expected: expected.into(),
    }
}

/// Errors unless `m` is a batch of symmetric positive-definite matrices (when validating).
pub(crate) fn check_pd(dist: &'static str, param: &'static str, m: &Tensor) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    let ok = Constraint::PositiveDefinite
        .check(m)?
        .f_all()?
        .f_int64_value(&[])?
        != 0;
    if !ok {
        return Err(Error::InvalidParameter {
            dist,
            param,
            expected: "symmetric positive definite".into(),
        });
    }
    Ok(())
}

impl MultivariateNormal {
    /// `N(loc, covariance)`.
    pub fn new(loc: &Tensor, covariance: &Tensor) -> Result<MultivariateNormal> {
        check_pd("MultivariateNormal", "covariance_matrix", covariance)?;
        Self::build(loc, covariance.f_linalg_cholesky(false)?)
    }
    /// `N(loc, precision⁻¹)`.
    pub fn from_precision(loc: &Tensor, precision: &Tensor) -> Result<MultivariateNormal> {
        check_pd("MultivariateNormal", "precision_matrix", precision)?;
        // L = (chol of the flipped precision, flipped back, transposed)⁻¹, as torch does.
        let lf = precision.f_flip([-2, -1])?.f_linalg_cholesky(false)?;
        let l_inv = lf.f_flip([-2, -1])?.f_transpose(-2, -1)?;
        let k = *precision.size().last().unwrap_or(&0);
        let eye = Tensor::f_eye(k, (precision.kind(), precision.device()))?;
        Self::build(
            loc,
            l_inv.f_linalg_solve_triangular(&eye, false, true, false)?,
        )
    }
    /// `N(loc, L Lᵀ)` from a lower Cholesky factor.
    pub fn from_scale_tril(loc: &Tensor, scale_tril: &Tensor) -> Result<MultivariateNormal> {
        if validation_enabled() && scale_tril.dim() >= 2 {
            let ok = Constraint::LowerCholesky.check(scale_tril)?.f_all()?;
            if ok.f_int64_value(&[])? == 0 {
                return Err(invalid(
                    "scale_tril",
                    "lower triangular with a positive diagonal",
                ));
            }
        }
        Self::build(loc, scale_tril.shallow_clone())
    }
    fn build(loc: &Tensor, scale_tril: Tensor) -> Result<MultivariateNormal> {
        let (ls, ms) = (loc.size(), scale_tril.size());
        if ls.is_empty() || ms.len() < 2 || ms[ms.len() - 1] != ms[ms.len() - 2] {
            return Err(invalid("loc", "a [.., k] loc and a [.., k, k] matrix"));
        }
        let k = ms[ms.len() - 1];
        if ls[ls.len() - 1] != k {
            return Err(invalid("loc", &format!("last dim {k} to match the matrix")));
        }
        let batch = broadcast_shapes(&ls[..ls.len() - 1], &ms[..ms.len() - 2])?;
        let loc = loc.f_to_kind(scale_tril.kind())?;
        Ok(MultivariateNormal {
            loc: expand_param(&loc, &batch, &[k])?,
            scale_tril: expand_param(&scale_tril, &batch, &[k, k])?,
            batch_shape: batch,
            event_shape: vec![k],
        })
    }
    /// The mean.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The lower Cholesky factor `L` of the covariance.
    pub fn scale_tril(&self) -> &Tensor {
        &self.scale_tril
    }
    /// The covariance `L Lᵀ`.
    pub fn covariance_matrix(&self) -> Result<Tensor> {
        Ok(self
            .scale_tril
            .f_matmul(&self.scale_tril.f_transpose(-2, -1)?)?)
    }
    /// `log √det Σ = Σ log diag L`.
    pub(crate) fn half_log_det(&self) -> Result<Tensor> {
        Ok(self
            .scale_tril
            .f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
}

/// `|L⁻¹ x|²` for a batch of lower-triangular `L` and vectors `x` (broadcasting).
pub(crate) fn mahalanobis(l: &Tensor, x: &Tensor) -> Result<Tensor> {
    let y = l.f_linalg_solve_triangular(&x.f_unsqueeze(-1)?, false, true, false)?;
    Ok(y.f_squeeze_dim(-1)?
        .f_square()?
        .f_sum_dim_intlist(-1, false, None::<Kind>)?)
}

impl Distribution for MultivariateNormal {
    fn name(&self) -> &'static str {
        "MultivariateNormal"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::RealVector
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let eps = Tensor::f_randn(shape.as_slice(), (self.loc.kind(), self.loc.device()))?;
        let le = self
            .scale_tril
            .f_matmul(&eps.f_unsqueeze(-1)?)?
            .f_squeeze_dim(-1)?;
        Ok(le.f_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let k = self.event_shape[0] as f64;
        let diff = value.f_sub(&self.loc)?;
        let m = mahalanobis(&self.scale_tril, &diff)?;
        Ok(m.f_add_scalar(k * (2.0 * PI).ln())?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.half_log_det()?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = self.event_shape[0];
        Ok(Rc::new(MultivariateNormal {
            loc: expand_param(&self.loc, batch_shape, &[k])?,
            scale_tril: expand_param(&self.scale_tril, batch_shape, &[k, k])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self
            .scale_tril
            .f_square()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let k = self.event_shape[0] as f64;
        Ok(self
            .half_log_det()?
            .f_add_scalar(0.5 * k * (1.0 + (2.0 * PI).ln()))?)
    }
}
