use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::multivariate_normal::broadcast_shapes;
use super::{expand_param, extended_shape, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The matrix normal distribution (NumPyro's `MatrixNormal`): `X = M + L_r Z L_cᵀ` with `Z`
/// standard normal `n × p`, i.e. `vec(X) ~ N(vec(M), (L_c L_cᵀ) ⊗ (L_r L_rᵀ))`.
///
/// Density: `(2π)^(-np/2) |L_r|^(-p) |L_c|^(-n) exp(-|L_r⁻¹ (X - M) L_c⁻ᵀ|²/2)`. Parameters:
/// `loc` `[.., n, p]`, `scale_tril_row` `[.., n, n]` and `scale_tril_column` `[.., p, p]`, lower
/// triangular with positive diagonals. Event shape `[n, p]`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let o = (Kind::Double, Device::Cpu);
/// let d = MatrixNormal::new(&Tensor::zeros([2, 3], o), &Tensor::eye(2, o), &Tensor::eye(3, o))?;
/// let lp = d.log_prob(&Tensor::zeros([2, 3], o))?.double_value(&[]);
/// assert!((lp + 3.0 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MatrixNormal {
    loc: Tensor,
    row: Tensor,
    col: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl MatrixNormal {
    /// `MatrixNormal(loc, scale_tril_row, scale_tril_column)`.
    pub fn new(loc: &Tensor, scale_tril_row: &Tensor, scale_tril_column: &Tensor) -> Result<Self> {
        let (l, r, c) = (loc.size(), scale_tril_row.size(), scale_tril_column.size());
        let ok = l.len() >= 2
            && r.len() >= 2
            && c.len() >= 2
            && r[r.len() - 1] == l[l.len() - 2]
            && r[r.len() - 2] == l[l.len() - 2]
            && c[c.len() - 1] == l[l.len() - 1]
            && c[c.len() - 2] == l[l.len() - 1];
        if !ok {
            return Err(Error::InvalidParameter {
                dist: "MatrixNormal",
                param: "loc",
                expected: format!(
                    "loc [.., n, p] with scale_tril_row [.., n, n] and scale_tril_column \
                     [.., p, p]; got {l:?}, {r:?}, {c:?}"
                ),
            });
        }
        for (name, m) in [
            ("scale_tril_row", scale_tril_row),
            ("scale_tril_column", scale_tril_column),
        ] {
            if super::validation_enabled()
                && Constraint::LowerCholesky
                    .check(m)?
                    .f_all()?
                    .f_int64_value(&[])?
                    == 0
            {
                return Err(Error::InvalidParameter {
                    dist: "MatrixNormal",
                    param: name,
                    expected: "lower triangular with a positive diagonal".into(),
                });
            }
        }
        let (n, p) = (l[l.len() - 2], l[l.len() - 1]);
        let batch = broadcast_shapes(
            &broadcast_shapes(&l[..l.len() - 2], &r[..r.len() - 2])?,
            &c[..c.len() - 2],
        )?;
        let kind = loc.kind();
        Ok(MatrixNormal {
            loc: expand_param(loc, &batch, &[n, p])?,
            row: expand_param(&scale_tril_row.f_to_kind(kind)?, &batch, &[n, n])?,
            col: expand_param(&scale_tril_column.f_to_kind(kind)?, &batch, &[p, p])?,
            batch_shape: batch,
            event_shape: vec![n, p],
        })
    }

    fn half_log_det(m: &Tensor) -> Result<Tensor> {
        Ok(m.f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
}

impl Distribution for MatrixNormal {
    fn name(&self) -> &'static str {
        "MatrixNormal"
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
        Constraint::Independent(Box::new(Constraint::Real), 2)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let z = Tensor::f_randn(shape.as_slice(), (self.loc.kind(), self.loc.device()))?;
        Ok(self
            .row
            .f_matmul(&z)?
            .f_matmul(&self.col.f_transpose(-2, -1)?)?
            .f_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let (n, p) = (self.event_shape[0] as f64, self.event_shape[1] as f64);
        let d = value.f_sub(&self.loc)?;
        // A = L_r⁻¹ D, then B = A L_c⁻ᵀ: solve L_c Bᵀ = Aᵀ.
        let a = self.row.f_linalg_solve_triangular(&d, false, true, false)?;
        let bt = self
            .col
            .f_linalg_solve_triangular(&a.f_transpose(-2, -1)?, false, true, false)?;
        let m = bt
            .f_square()?
            .f_sum_dim_intlist([-2i64, -1].as_slice(), false, None::<Kind>)?;
        Ok(m.f_mul_scalar(-0.5)?
            .f_sub_scalar(0.5 * n * p * (2.0 * PI).ln())?
            .f_sub(&Self::half_log_det(&self.row)?.f_mul_scalar(p)?)?
            .f_sub(&Self::half_log_det(&self.col)?.f_mul_scalar(n)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let (n, p) = (self.event_shape[0], self.event_shape[1]);
        Ok(Rc::new(MatrixNormal {
            loc: expand_param(&self.loc, batch_shape, &[n, p])?,
            row: expand_param(&self.row, batch_shape, &[n, n])?,
            col: expand_param(&self.col, batch_shape, &[p, p])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        // Var(X_ij) = (L_r L_rᵀ)_ii (L_c L_cᵀ)_jj
        let rv = self
            .row
            .f_square()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        let cv = self
            .col
            .f_square()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        Ok(rv.f_unsqueeze(-1)?.f_mul(&cv.f_unsqueeze(-2)?)?)
    }
}
