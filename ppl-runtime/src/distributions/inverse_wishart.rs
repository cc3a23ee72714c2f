use std::f64::consts::LN_2;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::multivariate_normal::broadcast_shapes;
use super::{check, check_positive, expand_param, validate_sample, DistRef, Distribution, Wishart};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The inverse Wishart distribution (NumPyro's `InverseWishart`): `X⁻¹ ~ Wishart(ν, Ψ⁻¹)`, the
/// conjugate prior of a normal covariance.
///
/// Density: `|Ψ|^(ν/2) |X|^(-(ν+p+1)/2) exp(-tr(Ψ X⁻¹)/2) / (2^(νp/2) Γ_p(ν/2))`. Parameters:
/// `concentration = ν > p - 1` (batch-shaped), `scale_matrix = Ψ` positive definite
/// `[.., p, p]`. Event shape `[p, p]`; mean `Ψ / (ν - p - 1)` (NaN for `ν <= p + 1`, as NumPyro
/// reports it).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let eye = Tensor::eye(2, (Kind::Double, Device::Cpu));
/// let d = InverseWishart::new(&Tensor::from(5.0f64), &eye)?;
/// assert!((d.mean()? - &eye * 0.5).abs().max().double_value(&[]) < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InverseWishart {
    concentration: Tensor,
    scale_matrix: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl InverseWishart {
    /// `InverseWishart(concentration, scale_matrix)`.
    pub fn new(concentration: &Tensor, scale_matrix: &Tensor) -> Result<InverseWishart> {
        let s = scale_matrix.size();
        if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
            return Err(Error::InvalidParameter {
                dist: "InverseWishart",
                param: "scale_matrix",
                expected: format!("a [.., p, p] matrix, got shape {s:?}"),
            });
        }
        let p = s[s.len() - 1];
        let nu = concentration.f_to_kind(scale_matrix.kind())?;
        check_positive("InverseWishart", "concentration", &nu)?;
        check("InverseWishart", "concentration", "> dim - 1", || {
            nu.f_gt((p - 1) as f64)?.f_all()
        })?;
        if super::validation_enabled()
            && Constraint::PositiveDefinite
                .check(scale_matrix)?
                .f_all()?
                .f_int64_value(&[])?
                == 0
        {
            return Err(Error::InvalidParameter {
                dist: "InverseWishart",
                param: "scale_matrix",
                expected: "positive definite".into(),
            });
        }
        let batch = broadcast_shapes(&s[..s.len() - 2], &nu.size())?;
        Ok(InverseWishart {
            concentration: expand_param(&nu, &batch, &[])?,
            scale_matrix: expand_param(scale_matrix, &batch, &[p, p])?,
            batch_shape: batch,
            event_shape: vec![p, p],
        })
    }
}

fn log_det_pd(m: &Tensor) -> Result<Tensor> {
    Ok(m.f_linalg_cholesky(false)?
        .f_diagonal(0, -2, -1)?
        .f_log()?
        .f_sum_dim_intlist(-1, false, None::<Kind>)?
        .f_mul_scalar(2.0)?)
}

impl Distribution for InverseWishart {
    fn name(&self) -> &'static str {
        "InverseWishart"
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
        let inv = self.scale_matrix.f_inverse()?;
        let inv = inv.f_add(&inv.f_transpose(-2, -1)?)?.f_mul_scalar(0.5)?;
        let w = Wishart::new(&self.concentration, &inv)?.rsample(sample_shape)?;
        let x = w.f_inverse()?;
        Ok(x.f_add(&x.f_transpose(-2, -1)?)?.f_mul_scalar(0.5)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let p = self.event_shape[0] as f64;
        let nu = &self.concentration;
        // tr(Ψ X⁻¹) via a solve.
        let trace = Tensor::f_linalg_solve(value, &self.scale_matrix, true)?
            .f_diagonal(0, -2, -1)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        Ok(nu
            .f_mul_scalar(0.5)?
            .f_mul(&log_det_pd(&self.scale_matrix)?)?
            .f_sub(&nu.f_mul_scalar(0.5 * p * LN_2)?)?
            .f_sub(&nu.f_mul_scalar(0.5)?.f_mvlgamma(p as i64)?)?
            .f_sub(
                &nu.f_add_scalar(p + 1.0)?
                    .f_mul_scalar(0.5)?
                    .f_mul(&log_det_pd(value)?)?,
            )?
            .f_sub(&trace.f_mul_scalar(0.5)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let p = self.event_shape[0];
        Ok(Rc::new(InverseWishart {
            concentration: expand_param(&self.concentration, batch_shape, &[])?,
            scale_matrix: expand_param(&self.scale_matrix, batch_shape, &[p, p])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let p = self.event_shape[0] as f64;
        let d = self.concentration.f_sub_scalar(p + 1.0)?;
        let m = self
            .scale_matrix
            .f_div(&d.f_unsqueeze(-1)?.f_unsqueeze(-1)?)?;
        let undefined = d.f_le(0.0)?.f_unsqueeze(-1)?.f_unsqueeze(-1)?;
        Ok(m.f_masked_fill(&undefined, f64::NAN)?)
    }
}
