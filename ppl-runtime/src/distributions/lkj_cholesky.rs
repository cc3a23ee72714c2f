use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::standard_gamma;
use super::{
    broadcast_args, check_positive, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The LKJ distribution over Cholesky factors `L` of `dim × dim` correlation matrices
/// (`L Lᵀ` has a unit diagonal).
///
/// Density: `p(L) ∝ ∏_{i=2}^{d} L_ii^(d - i + 2η - 2)` (the LKJ density `det(LLᵀ)^(η-1)` times
/// the Jacobian of `L ↦ LLᵀ`). Parameters: `dim >= 2`, `concentration = η > 0`. Support:
/// `corr_cholesky` (event shape `[dim, dim]`). Sampled by the onion method; not
/// reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = LKJCholesky::new(2, 1.0)?; // uniform correlation L[1][0] in [-1, 1]: density 1/2
/// let l = Tensor::from_slice(&[1.0f32, 0.0, 0.6, 0.8]).reshape([2, 2]);
/// let lp = d.log_prob(&l)?;
/// assert!((lp.double_value(&[]) - 0.5f64.ln()).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LKJCholesky {
    dim: i64,
    concentration: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl LKJCholesky {
    /// `LKJCholesky(dim, concentration)`.
    pub fn new(dim: i64, concentration: impl Into<Arg>) -> Result<LKJCholesky> {
        if dim < 2 {
            return Err(Error::InvalidParameter {
                dist: "LKJCholesky",
                param: "dim",
                expected: format!(">= 2, got {dim}"),
            });
        }
        let [c] = broadcast_args("LKJCholesky", [concentration.into()])?;
        check_positive("LKJCholesky", "concentration", &c)?;
        Ok(LKJCholesky {
            dim,
            batch_shape: c.size(),
            concentration: c,
            event_shape: vec![dim, dim],
        })
    }
    /// The matrix size.
    pub fn dim(&self) -> i64 {
        self.dim
    }
    /// The concentration `η`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
}

impl Distribution for LKJCholesky {
    fn name(&self) -> &'static str {
        "LKJCholesky"
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
        Constraint::CorrCholesky
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        // Onion method (Lewandowski, Kurowicka & Joe 2009, §3.2): row i of L is sqrt(y_i)
        // times a uniform direction in its first i coordinates,
        // y_i ~ Beta(i/2, η + (d-2)/2 - (i-1)/2), completed to unit length on the diagonal.
        let c = &self.concentration;
        let (k, dev) = (c.kind(), c.device());
        tch::no_grad(|| {
            let offset = Tensor::f_arange(self.dim - 1, (k, dev))?;
            let offset = Tensor::f_cat(&[&Tensor::f_zeros([1], (k, dev))?, &offset], 0)?;
            let marginal = c
                .f_add_scalar(0.5 * (self.dim - 2) as f64)?
                .f_unsqueeze(-1)?;
            // Row i >= 1 takes y ~ Beta(i/2, ..): the draw has i free coordinates. (torch
            // 2.11 uses `offset + 0.5`, i.e. Beta(i - 1/2, ..), whose off-diagonal marginals
            // are too wide for dim >= 3; the test checks the LKJ marginal variance.)
            let c1 = offset.f_add_scalar(1.0)?.f_mul_scalar(0.5)?;
            let c0 = marginal.f_sub(&offset.f_mul_scalar(0.5)?)?;
            let mut bshape = sample_shape.to_vec();
            bshape.extend_from_slice(&self.batch_shape);
            bshape.push(self.dim);
            let g1 = standard_gamma(&c1, &bshape)?;
            let g0 = standard_gamma(&c0, &bshape)?;
            let y = g1.f_div(&g1.f_add(&g0)?)?.f_unsqueeze(-1)?;
            let shape = extended_shape(self, sample_shape);
            let u = Tensor::f_randn(shape.as_slice(), (k, dev))?.f_tril(-1)?;
            let norm = u
                .f_square()?
                .f_sum_dim_intlist(-1, true, None::<Kind>)?
                .f_sqrt()?;
            let dir = u.f_div(&norm)?.f_nan_to_num(0.0, None, None)?;
            let w = y.f_sqrt()?.f_mul(&dir)?;
            let tiny = super::finfo_tiny(k);
            let diag = w
                .f_square()?
                .f_sum_dim_intlist(-1, false, None::<Kind>)?
                .f_neg()?
                .f_add_scalar(1.0)?
                .f_clamp_min(tiny)?
                .f_sqrt()?;
            Ok(w.f_add(&diag.f_diag_embed(0, -2, -1)?)?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (d, c) = (self.dim, &self.concentration);
        let diag = value.f_diagonal(0, -2, -1)?.f_narrow(-1, 1, d - 1)?;
        let order = Tensor::f_arange_start(2, d + 1, (c.kind(), c.device()))?;
        let order = c
            .f_sub_scalar(1.0)?
            .f_unsqueeze(-1)?
            .f_mul_scalar(2.0)?
            .f_add_scalar(d as f64)?
            .f_sub(&order)?;
        let unnorm = order
            .f_mul(&diag.f_log()?)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        let dm1 = (d - 1) as f64;
        let alpha = c.f_add_scalar(0.5 * dm1)?;
        let denominator = alpha.f_lgamma()?.f_mul_scalar(dm1)?;
        let numerator = alpha.f_sub_scalar(0.5)?.f_mvlgamma(d - 1)?;
        let norm = numerator
            .f_sub(&denominator)?
            .f_add_scalar(0.5 * dm1 * PI.ln())?;
        Ok(unnorm.f_sub(&norm)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(LKJCholesky {
            dim: self.dim,
            concentration: expand_param(&self.concentration, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
}
