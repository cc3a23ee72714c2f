use std::rc::Rc;

use tch::Tensor;

use super::{validate_sample, Arg, DistRef, Distribution, LKJCholesky};
use crate::constraints::Constraint;
use crate::error::Result;
use crate::transforms::{CorrMatrixCholeskyTransform, Transform};

/// The LKJ distribution over correlation matrices (NumPyro's `LKJ`): `L Lᵀ` for
/// `L ~ LKJCholesky(dim, concentration)`, so `p(C) ∝ det(C)^(η - 1)`.
///
/// The density is [`LKJCholesky`]'s at `L = cholesky(C)` times the Jacobian of `C -> L`
/// ([`CorrMatrixCholeskyTransform`]). Parameters: `dim >= 2`, `concentration = η > 0`. Event
/// shape `[dim, dim]`; support: correlation matrices.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = LKJ::new(3, 1.0)?;
/// let c = d.sample(&[])?;
/// assert_eq!(c.size(), vec![3, 3]);
/// assert!(bool::try_from(constraints::corr_matrix().check(&c)?)?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LKJ {
    cholesky: LKJCholesky,
}

impl LKJ {
    /// `LKJ(dim, concentration)`.
    pub fn new(dim: i64, concentration: impl Into<Arg>) -> Result<LKJ> {
        Ok(LKJ {
            cholesky: LKJCholesky::new(dim, concentration)?,
        })
    }
    /// The distribution of the Cholesky factors.
    pub fn cholesky(&self) -> &LKJCholesky {
        &self.cholesky
    }
}

impl Distribution for LKJ {
    fn name(&self) -> &'static str {
        "LKJ"
    }
    fn batch_shape(&self) -> &[i64] {
        self.cholesky.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        self.cholesky.event_shape()
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::CorrMatrix
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let l = self.cholesky.sample(sample_shape)?;
        CorrMatrixCholeskyTransform.inverse(&l)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let t = CorrMatrixCholeskyTransform;
        let l = t.forward(value)?;
        Ok(self
            .cholesky
            .log_prob(&l)?
            .f_add(&t.log_abs_det_jacobian(value, &l)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(LKJ {
            cholesky: LKJCholesky::new(
                self.cholesky.dim(),
                super::expand_param(self.cholesky.concentration(), batch_shape, &[])?,
            )?,
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        // Off-diagonal correlations have mean 0 by symmetry.
        let d = self.cholesky.dim();
        let c = self.cholesky.concentration();
        let eye = Tensor::f_eye(d, (c.kind(), c.device()))?;
        let mut shape = self.batch_shape().to_vec();
        shape.extend([d, d]);
        Ok(eye.f_expand(shape.as_slice(), false)?.f_contiguous()?)
    }
}
