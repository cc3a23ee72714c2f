use std::f64::consts::LN_2;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::multivariate_normal::broadcast_shapes;
use super::util::standard_gamma;
use super::{
    check_positive, expand_param, extended_shape, validate_sample, DistRef, Distribution,
    MultivariateNormal,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The Wishart distribution over positive-definite matrices (torch's `Wishart`), by degrees of
/// freedom and the scale's Cholesky factor `L` (`Σ = L Lᵀ`).
///
/// Density: `|X|^((ν-p-1)/2) exp(-tr(Σ⁻¹X)/2) / (2^(νp/2) |Σ|^(ν/2) Γ_p(ν/2))`. Parameters:
/// `df = ν > p - 1` (batch-shaped), `scale_tril` `[.., p, p]`. Event shape `[p, p]`; mean `νΣ`,
/// variance `ν (Σ_ij² + Σ_ii Σ_jj)`. Reparameterized (Bartlett's decomposition, with
/// differentiable chi-square draws).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let eye = Tensor::eye(2, (Kind::Double, Device::Cpu));
/// let d = Wishart::from_scale_tril(&Tensor::from(3.0f64), &eye)?;
/// assert_eq!(d.sample(&[4])?.size(), vec![4, 2, 2]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Wishart {
    df: Tensor,
    scale_tril: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl Wishart {
    /// With the scale matrix `Σ` (positive definite).
    pub fn new(df: &Tensor, covariance_matrix: &Tensor) -> Result<Wishart> {
        let p = covariance_matrix.size().last().copied().unwrap_or(0);
        let zeros = Tensor::f_zeros([p], (covariance_matrix.kind(), covariance_matrix.device()))?;
        let mvn = MultivariateNormal::new(&zeros, covariance_matrix)?;
        Self::from_scale_tril(df, mvn.scale_tril())
    }

    /// With the scale's lower Cholesky factor.
    pub fn from_scale_tril(df: &Tensor, scale_tril: &Tensor) -> Result<Wishart> {
        let s = scale_tril.size();
        if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
            return Err(Error::InvalidParameter {
                dist: "Wishart",
                param: "scale_tril",
                expected: format!("a [.., p, p] matrix, got shape {s:?}"),
            });
        }
        let p = s[s.len() - 1];
        let df = df.f_to_kind(scale_tril.kind())?;
        check_positive("Wishart", "df", &df)?;
        super::check("Wishart", "df", "> dim - 1", || {
            df.f_gt((p - 1) as f64)?.f_all()
        })?;
        let batch = broadcast_shapes(&s[..s.len() - 2], &df.size())?;
        Ok(Wishart {
            df: expand_param(&df, &batch, &[])?,
            scale_tril: expand_param(scale_tril, &batch, &[p, p])?,
            batch_shape: batch,
            event_shape: vec![p, p],
        })
    }

    /// The scale matrix `Σ = L Lᵀ`.
    pub fn covariance_matrix(&self) -> Result<Tensor> {
        Ok(self
            .scale_tril
            .f_matmul(&self.scale_tril.f_transpose(-2, -1)?)?)
    }
}

impl Distribution for Wishart {
    fn name(&self) -> &'static str {
        "Wishart"
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
        Constraint::PositiveDefinite
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        // Bartlett: A lower triangular, A_ii² ~ χ²(ν - i), A_ij ~ N(0, 1) below; X = L A Aᵀ Lᵀ.
        let p = self.event_shape[0];
        let shape = extended_shape(self, sample_shape);
        let batch = &shape[..shape.len() - 2];
        let opts = (self.df.kind(), self.df.device());
        let offsets = Tensor::f_arange(p, opts)?;
        // χ²(k) = 2 Gamma(k/2): shape batch + [p].
        let half = self
            .df
            .f_unsqueeze(-1)?
            .f_sub(&offsets)?
            .f_mul_scalar(0.5)?;
        let mut vshape = batch.to_vec();
        vshape.push(p);
        let chi2 = standard_gamma(&half, &vshape)?.f_mul_scalar(2.0)?;
        let noise = Tensor::f_randn(shape.as_slice(), opts)?.f_tril(-1)?;
        let a = noise.f_add(&chi2.f_sqrt()?.f_diag_embed(0, -2, -1)?)?;
        let la = self.scale_tril.f_matmul(&a)?;
        Ok(la.f_matmul(&la.f_transpose(-2, -1)?)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let p = self.event_shape[0] as f64;
        let nu = &self.df;
        let log_det_x = value
            .f_linalg_cholesky(false)?
            .f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?
            .f_mul_scalar(2.0)?;
        let log_det_s = self
            .scale_tril
            .f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?
            .f_mul_scalar(2.0)?;
        // tr(Σ⁻¹X) = |L⁻¹ M|² summed, with X = M Mᵀ... computed directly: solve L Y = X, then
        // Lᵀ Z = Y, trace of Z.
        let y = self
            .scale_tril
            .f_linalg_solve_triangular(value, false, true, false)?;
        let z = self
            .scale_tril
            .f_transpose(-2, -1)?
            .f_linalg_solve_triangular(&y, true, true, false)?;
        let trace = z
            .f_diagonal(0, -2, -1)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        let mvlgamma = nu.f_mul_scalar(0.5)?.f_mvlgamma(p as i64)?;
        Ok(nu
            .f_sub_scalar(p + 1.0)?
            .f_mul_scalar(0.5)?
            .f_mul(&log_det_x)?
            .f_sub(&trace.f_mul_scalar(0.5)?)?
            .f_sub(&nu.f_mul_scalar(0.5 * p * LN_2)?)?
            .f_sub(&nu.f_mul_scalar(0.5)?.f_mul(&log_det_s)?)?
            .f_sub(&mvlgamma)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let p = self.event_shape[0];
        Ok(Rc::new(Wishart {
            df: expand_param(&self.df, batch_shape, &[])?,
            scale_tril: expand_param(&self.scale_tril, batch_shape, &[p, p])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self
            .covariance_matrix()?
            .f_mul(&self.df.f_unsqueeze(-1)?.f_unsqueeze(-1)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        // (p+1)/2 log|Σ| + p(p+1)/2 log 2 + log Γ_p(ν/2) - (ν-p-1)/2 ψ_p(ν/2) + νp/2, with the
        // multivariate digamma ψ_p(a) = Σ_(i<p) ψ(a - i/2).
        let p = self.event_shape[0];
        let pf = p as f64;
        let nu = &self.df;
        let half_log_det = self
            .scale_tril
            .f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        let a = nu.f_mul_scalar(0.5)?;
        let offsets = Tensor::f_arange(p, (nu.kind(), nu.device()))?.f_mul_scalar(0.5)?;
        let mvdigamma = a
            .f_unsqueeze(-1)?
            .f_sub(&offsets)?
            .f_digamma()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        Ok(half_log_det
            .f_add_scalar(pf * LN_2 / 2.0)?
            .f_mul_scalar(pf + 1.0)?
            .f_add(&a.f_mvlgamma(p)?)?
            .f_sub(
                &nu.f_sub_scalar(pf + 1.0)?
                    .f_mul_scalar(0.5)?
                    .f_mul(&mvdigamma)?,
            )?
            .f_add(&nu.f_mul_scalar(pf / 2.0)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let s = self.covariance_matrix()?;
        let d = s.f_diagonal(0, -2, -1)?;
        let outer = d.f_unsqueeze(-1)?.f_mul(&d.f_unsqueeze(-2)?)?;
        Ok(s.f_square()?
            .f_add(&outer)?
            .f_mul(&self.df.f_unsqueeze(-1)?.f_unsqueeze(-1)?)?)
    }
}
