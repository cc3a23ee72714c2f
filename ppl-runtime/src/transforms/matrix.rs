//! Transforms onto matrix constraints, each from an unconstrained vector (a true bijection,
//! as NumPyro does; torch's lower-Cholesky transform instead takes a square matrix and ignores
//! its upper triangle, which leaves HMC an improper density in those coordinates).

use tch::{Kind, Tensor};

use super::Transform;
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Row-major linear indices of the entries of an `n × n` matrix on or below diagonal `offset`
/// (`0`: with the diagonal, `-1`: strictly below), in torch's `tril_indices` order.
fn tril_lin(n: i64, offset: i64, like: &Tensor) -> Result<Tensor> {
    let ij = Tensor::f_tril_indices(n, n, offset, (Kind::Int64, like.device()))?;
    Ok(ij.f_get(0)?.f_mul_scalar(n)?.f_add(&ij.f_get(1)?)?)
}

/// The matrix size `n` for a vector of `m = n(n+1)/2` (`offset` 0) or `n(n-1)/2` (`-1`).
fn size_of(m: i64, offset: i64) -> Result<i64> {
    let c = if offset == 0 { 1.0 } else { -1.0 };
    let n = ((-c + (c * c + 8.0 * m as f64).sqrt()) / 2.0).round() as i64;
    if n * (n + if offset == 0 { 1 } else { -1 }) / 2 != m {
        return Err(Error::Shape(format!(
            "{m} is not a triangular number of entries"
        )));
    }
    Ok(n)
}

/// Fills the entries on or below diagonal `offset` of an `n × n` matrix with `v`'s last dim.
pub(crate) fn vec_to_tril(v: &Tensor, offset: i64) -> Result<Tensor> {
    let mut shape = v.size();
    let m = shape.pop().unwrap_or(0);
    let n = size_of(m, offset)?;
    let mut flat = shape.clone();
    flat.push(n * n);
    let z = Tensor::f_zeros(flat.as_slice(), (v.kind(), v.device()))?;
    let out = z.f_index_copy(-1, &tril_lin(n, offset, v)?, v)?;
    shape.extend([n, n]);
    Ok(out.f_reshape(shape.as_slice())?)
}

/// The entries on or below diagonal `offset` of the last two dims, as a vector.
pub(crate) fn tril_to_vec(m: &Tensor, offset: i64) -> Result<Tensor> {
    let mut shape = m.size();
    let n = shape.pop().unwrap_or(0);
    shape.pop();
    shape.push(n * n);
    Ok(m.f_reshape(shape.as_slice())?
        .f_index_select(-1, &tril_lin(n, offset, m)?)?)
}

fn shape_to_matrix(shape: &[i64], offset: i64) -> Vec<i64> {
    let mut s = shape.to_vec();
    let m = s.pop().unwrap_or(0);
    let n = size_of(m, offset).unwrap_or(0);
    s.extend([n, n]);
    s
}

fn shape_to_vec(shape: &[i64], offset: i64) -> Vec<i64> {
    let mut s = shape.to_vec();
    let n = s.pop().unwrap_or(0);
    s.pop();
    s.push(if offset == 0 {
        n * (n + 1) / 2
    } else {
        n * (n - 1) / 2
    });
    s
}

/// The event dims and shapes of a transform from the `n(n+1)/2` (`offset` 0) or `n(n-1)/2`
/// (`offset` -1) entries of a vector onto `n × n` matrices.
macro_rules! vector_to_matrix_shapes {
    ($offset:expr) => {
        fn domain_event_dim(&self) -> usize {
            1
        }
        fn codomain_event_dim(&self) -> usize {
            2
        }
        fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
            shape_to_matrix(shape, $offset)
        }
        fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
            shape_to_vec(shape, $offset)
        }
    };
}

fn diag(m: &Tensor) -> Result<Tensor> {
    Ok(m.f_diagonal(0, -2, -1)?)
}

fn sum_last(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_sum_dim_intlist(-1, false, None::<Kind>)?)
}

/// From `R^(n(n+1)/2)` onto lower-triangular matrices with a positive diagonal: the vector fills
/// the lower triangle row by row and the diagonal is exponentiated.
#[derive(Debug, Clone, Copy)]
pub struct LowerCholeskyTransform;

impl Transform for LowerCholeskyTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = vec_to_tril(x, 0)?;
        Ok(m.f_tril(-1)?
            .f_add(&diag(&m)?.f_exp()?.f_diag_embed(0, -2, -1)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let m = y
            .f_tril(-1)?
            .f_add(&diag(y)?.f_log()?.f_diag_embed(0, -2, -1)?)?;
        tril_to_vec(&m, 0)
    }
    fn log_abs_det_jacobian(&self, _x: &Tensor, y: &Tensor) -> Result<Tensor> {
        sum_last(&diag(y)?.f_log()?)
    }
    vector_to_matrix_shapes!(0);
    fn codomain(&self) -> Constraint {
        Constraint::LowerCholesky
    }
}

/// From `R^(n(n+1)/2)` onto symmetric positive-definite matrices: `y = L Lᵀ` with `L` from
/// [`LowerCholeskyTransform`]. The log-Jacobian counts the lower triangle of `y`.
#[derive(Debug, Clone, Copy)]
pub struct PositiveDefiniteTransform;

impl Transform for PositiveDefiniteTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let l = LowerCholeskyTransform.forward(x)?;
        Ok(l.f_matmul(&l.f_transpose(-2, -1)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        LowerCholeskyTransform.inverse(&y.f_linalg_cholesky(false)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        // |∂(LLᵀ)/∂L| = 2^n ∏_i L_ii^(n-i) (0-based i), times |∂L/∂x| = ∏_i L_ii.
        let l = LowerCholeskyTransform.forward(x)?;
        let n = *y.size().last().unwrap_or(&0);
        let log_d = diag(&l)?.f_log()?;
        let w = Tensor::f_arange_start_step(n + 1, 1, -1, (log_d.kind(), log_d.device()))?;
        Ok(sum_last(&log_d.f_mul(&w)?)?.f_add_scalar(n as f64 * 2f64.ln())?)
    }
    vector_to_matrix_shapes!(0);
    fn codomain(&self) -> Constraint {
        Constraint::PositiveDefinite
    }
}

/// From `R^(n(n-1)/2)` onto Cholesky factors of correlation matrices (torch's
/// `CorrCholeskyTransform`): `tanh` maps each entry into `(-1, 1)`, then each row is completed
/// by stick-breaking so that it has unit norm.
#[derive(Debug, Clone, Copy)]
pub struct CorrCholeskyTransform;

impl Transform for CorrCholeskyTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let eps = crate::distributions::finfo_eps(x.kind());
        let r = vec_to_tril(&x.f_tanh()?.f_clamp(eps - 1.0, 1.0 - eps)?, -1)?;
        let n = *r.size().last().unwrap_or(&0);
        let z1m_cumprod_sqrt = r
            .f_square()?
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_sqrt()?
            .f_cumprod(-1, None::<Kind>)?;
        let shifted = z1m_cumprod_sqrt.f_narrow(-1, 0, n - 1)?.f_pad(
            [1, 0].as_slice(),
            "constant",
            Some(1.0),
        )?;
        let eye = Tensor::f_eye(n, (r.kind(), r.device()))?;
        Ok(r.f_add(&eye)?.f_mul(&shifted)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let n = *y.size().last().unwrap_or(&0);
        let cum = y
            .f_square()?
            .f_cumsum(-1, None::<Kind>)?
            .f_neg()?
            .f_add_scalar(1.0)?;
        let shifted =
            cum.f_narrow(-1, 0, n - 1)?
                .f_pad([1, 0].as_slice(), "constant", Some(1.0))?;
        let t = tril_to_vec(y, -1)?.f_div(&tril_to_vec(&shifted, -1)?.f_sqrt()?)?;
        Ok(t.f_log1p()?
            .f_sub(&t.f_neg()?.f_log1p()?)?
            .f_mul_scalar(0.5)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let y1m_cumsum = y
            .f_square()?
            .f_cumsum(-1, None::<Kind>)?
            .f_neg()?
            .f_add_scalar(1.0)?;
        let stick = sum_last(&tril_to_vec(&y1m_cumsum, -2)?.f_log()?)?.f_mul_scalar(0.5)?;
        // log(1 - tanh(x)²) = 2 (log 2 - x - softplus(-2x))
        let tanh = x
            .f_add(&x.f_mul_scalar(-2.0)?.f_softplus()?)?
            .f_sub_scalar(2f64.ln())?;
        Ok(stick.f_add(&sum_last(&tanh)?.f_mul_scalar(-2.0)?)?)
    }
    vector_to_matrix_shapes!(-1);
    fn codomain(&self) -> Constraint {
        Constraint::CorrCholesky
    }
}

/// From `R^(n(n+1)/2)` onto lower-Cholesky factors with the diagonal through softplus instead of
/// exp (Pyro's `SoftplusLowerCholeskyTransform`, as a vector-to-matrix bijection like
/// [`LowerCholeskyTransform`]).
#[derive(Debug, Clone, Copy)]
pub struct SoftplusLowerCholeskyTransform;

impl Transform for SoftplusLowerCholeskyTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = vec_to_tril(x, 0)?;
        Ok(m.f_tril(-1)?
            .f_add(&diag(&m)?.f_softplus()?.f_diag_embed(0, -2, -1)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let d = super::SoftplusTransform.inverse(&diag(y)?)?;
        tril_to_vec(&y.f_tril(-1)?.f_add(&d.f_diag_embed(0, -2, -1)?)?, 0)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let d = diag(&vec_to_tril(x, 0)?)?;
        // log softplus'(d) = -softplus(-d)
        sum_last(&d.f_neg()?.f_softplus()?.f_neg()?)
    }
    vector_to_matrix_shapes!(0);
    fn codomain(&self) -> Constraint {
        Constraint::SoftplusLowerCholesky
    }
}

/// From `R^(n(n-1)/2)` onto lower-triangular matrices with a unit diagonal: the vector fills the
/// strictly lower triangle (Pyro's `UnitLowerCholeskyTransform`, as a vector-to-matrix
/// bijection). Volume-preserving.
#[derive(Debug, Clone, Copy)]
pub struct UnitLowerCholeskyTransform;

impl Transform for UnitLowerCholeskyTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = vec_to_tril(x, -1)?;
        let n = *m.size().last().unwrap_or(&0);
        Ok(m.f_add(&Tensor::f_eye(n, (m.kind(), m.device()))?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        tril_to_vec(y, -1)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        sum_last(&x.f_zeros_like()?)
    }
    vector_to_matrix_shapes!(-1);
    fn codomain(&self) -> Constraint {
        Constraint::UnitLowerCholesky
    }
}

/// From correlation matrices to their Cholesky factors (Pyro's `CorrMatrixCholeskyTransform`;
/// its inverse, `L Lᵀ`, completes [`CorrCholeskyTransform`] to `biject_to(corr_matrix)`). The
/// log-Jacobian counts the strictly lower entries of both: `-Σ_j (n-1-j) log L_jj`.
#[derive(Debug, Clone, Copy)]
pub struct CorrMatrixCholeskyTransform;

impl Transform for CorrMatrixCholeskyTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linalg_cholesky(false)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_matmul(&y.f_transpose(-2, -1)?)?)
    }
    fn log_abs_det_jacobian(&self, _x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let n = *y.size().last().unwrap_or(&0);
        let log_d = diag(y)?.f_log()?;
        let w = Tensor::f_arange_start_step(n - 1, -1, -1, (log_d.kind(), log_d.device()))?;
        Ok(sum_last(&log_d.f_mul(&w)?)?.f_neg()?)
    }
    fn domain_event_dim(&self) -> usize {
        2
    }
    fn codomain(&self) -> Constraint {
        Constraint::CorrCholesky
    }
}

/// `y = loc + scale_tril @ x` on vectors (Pyro's `LowerCholeskyAffine`); `scale_tril` a
/// lower-triangular matrix with positive diagonal, both broadcast against `x`'s batch dims.
#[derive(Debug)]
pub struct LowerCholeskyAffine {
    loc: Tensor,
    scale_tril: Tensor,
}

impl Clone for LowerCholeskyAffine {
    fn clone(&self) -> Self {
        LowerCholeskyAffine {
            loc: self.loc.shallow_clone(),
            scale_tril: self.scale_tril.shallow_clone(),
        }
    }
}

impl LowerCholeskyAffine {
    /// `y = loc + scale_tril @ x`; `loc` `[.., n]`, `scale_tril` `[.., n, n]`.
    pub fn new(loc: &Tensor, scale_tril: &Tensor) -> Result<Self> {
        let (l, s) = (loc.size(), scale_tril.size());
        let n = *l.last().unwrap_or(&0);
        if s.len() < 2 || s[s.len() - 1] != n || s[s.len() - 2] != n {
            return Err(Error::Shape(format!(
                "LowerCholeskyAffine: scale_tril of shape {s:?} is not [.., {n}, {n}] for a loc \
                 of shape {l:?}"
            )));
        }
        Ok(LowerCholeskyAffine {
            loc: loc.shallow_clone(),
            scale_tril: scale_tril.shallow_clone(),
        })
    }
}

impl Transform for LowerCholeskyAffine {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .scale_tril
            .f_matmul(&x.f_unsqueeze(-1)?)?
            .f_squeeze_dim(-1)?
            .f_add(&self.loc)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let d = y.f_sub(&self.loc)?.f_unsqueeze(-1)?;
        let shape = d.size();
        let mut s = self.scale_tril.size();
        // Broadcast the factor against the batch dims for the triangular solve.
        let nb = shape.len().max(s.len());
        let mut batch = vec![1i64; nb - 2];
        for (i, b) in batch.iter_mut().enumerate() {
            let a = shape.len() as i64 - nb as i64 + i as i64;
            let c = s.len() as i64 - nb as i64 + i as i64;
            let da = if a >= 0 { shape[a as usize] } else { 1 };
            let dc = if c >= 0 { s[c as usize] } else { 1 };
            *b = da.max(dc);
        }
        let n = *s.last().unwrap_or(&0);
        s = batch.clone();
        s.extend([n, n]);
        let mut dshape = batch;
        dshape.extend([n, 1]);
        let x = self
            .scale_tril
            .f_expand(s.as_slice(), false)?
            .f_linalg_solve_triangular(
                &d.f_expand(dshape.as_slice(), false)?,
                false,
                true,
                false,
            )?;
        Ok(x.f_squeeze_dim(-1)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let l = sum_last(&diag(&self.scale_tril)?.f_abs()?.f_log()?)?;
        // Broadcast to x's batch shape.
        Ok(x.f_select(-1, 0)?.f_zeros_like()?.f_add(&l)?)
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
}
