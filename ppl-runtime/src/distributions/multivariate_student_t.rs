use std::f64::consts::PI;
use std::rc::Rc;

use tch::Tensor;

use super::multivariate_normal::{broadcast_shapes, mahalanobis};
use super::util::standard_gamma;
use super::{
    check_positive, expand_param, extended_shape, DistRef, Distribution, MultivariateNormal,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The multivariate Student's t distribution (Pyro's `MultivariateStudentT`): `loc + L z
/// sqrt(df / g)` with `z` standard normal and `g ~ χ²(df)`.
///
/// Density: `Γ((ν+k)/2) / (Γ(ν/2) (νπ)^(k/2) |L|) (1 + m/ν)^(-(ν+k)/2)` with
/// `m = |L⁻¹(x - loc)|²`. Parameters: `df = ν > 0` (batch-shaped), `loc` `[.., k]`, `scale_tril`
/// `L` `[.., k, k]` lower triangular with a positive diagonal. Event shape `[k]`.
/// Reparameterized. The mean is NaN for `ν <= 1`; the variance infinite for `1 < ν <= 2` and NaN
/// for `ν <= 1`, as Pyro reports them.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = MultivariateStudentT::new(&Tensor::from(3.0f64), &Tensor::zeros([2], (Kind::Double, Device::Cpu)),
///     &Tensor::eye(2, (Kind::Double, Device::Cpu)))?;
/// assert_eq!(d.event_shape(), &[2]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MultivariateStudentT {
    df: Tensor,
    loc: Tensor,
    scale_tril: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl MultivariateStudentT {
    /// `MultivariateStudentT(df, loc, scale_tril)`.
    pub fn new(df: &Tensor, loc: &Tensor, scale_tril: &Tensor) -> Result<Self> {
        // The normal's checks and broadcasting of loc and the factor.
        let mvn = MultivariateNormal::from_scale_tril(loc, scale_tril)?;
        let df = df.f_to_kind(mvn.loc().kind())?;
        check_positive("MultivariateStudentT", "df", &df)?;
        let k = mvn.event_shape()[0];
        let batch = broadcast_shapes(mvn.batch_shape(), &df.size())?;
        Ok(MultivariateStudentT {
            df: expand_param(&df, &batch, &[])?,
            loc: expand_param(mvn.loc(), &batch, &[k])?,
            scale_tril: expand_param(mvn.scale_tril(), &batch, &[k, k])?,
            batch_shape: batch,
            event_shape: vec![k],
        })
    }
    /// The degrees of freedom.
    pub fn df(&self) -> &Tensor {
        &self.df
    }
    /// The location.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The scale's lower Cholesky factor.
    pub fn scale_tril(&self) -> &Tensor {
        &self.scale_tril
    }
}

impl Distribution for MultivariateStudentT {
    fn name(&self) -> &'static str {
        "MultivariateStudentT"
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
        let z = Tensor::f_randn(shape.as_slice(), (self.loc.kind(), self.loc.device()))?;
        let batch = &shape[..shape.len() - 1];
        // χ²(ν) / ν = Gamma(ν/2, ν/2).
        let half = self.df.f_mul_scalar(0.5)?;
        let g = standard_gamma(&half, batch)?.f_div(&half)?;
        let lz = self
            .scale_tril
            .f_matmul(&z.f_unsqueeze(-1)?)?
            .f_squeeze_dim(-1)?;
        Ok(lz.f_mul(&g.f_rsqrt()?.f_unsqueeze(-1)?)?.f_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let k = self.event_shape[0] as f64;
        let m = mahalanobis(&self.scale_tril, &value.f_sub(&self.loc)?)?;
        let half_log_det = self
            .scale_tril
            .f_diagonal(0, -2, -1)?
            .f_log()?
            .f_sum_dim_intlist(-1, false, None::<tch::Kind>)?;
        let nu = &self.df;
        let z = nu
            .f_mul_scalar(0.5)?
            .f_lgamma()?
            .f_add(&nu.f_log()?.f_add_scalar(PI.ln())?.f_mul_scalar(0.5 * k)?)?
            .f_add(&half_log_det)?
            .f_sub(&nu.f_add_scalar(k)?.f_mul_scalar(0.5)?.f_lgamma()?)?;
        Ok(nu
            .f_add_scalar(k)?
            .f_mul_scalar(-0.5)?
            .f_mul(&m.f_div(nu)?.f_log1p()?)?
            .f_sub(&z)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = self.event_shape[0];
        Ok(Rc::new(MultivariateStudentT {
            df: expand_param(&self.df, batch_shape, &[])?,
            loc: expand_param(&self.loc, batch_shape, &[k])?,
            scale_tril: expand_param(&self.scale_tril, batch_shape, &[k, k])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let undefined = self.df.f_le(1.0)?.f_unsqueeze(-1)?;
        Ok(self.loc.f_masked_fill(&undefined, f64::NAN)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let nu = &self.df;
        let v = self
            .scale_tril
            .f_square()?
            .f_sum_dim_intlist(-1, false, None::<tch::Kind>)?
            .f_mul(&nu.f_div(&nu.f_sub_scalar(2.0)?)?.f_unsqueeze(-1)?)?;
        let inf = nu
            .f_le(2.0)?
            .f_logical_and(&nu.f_gt(1.0)?)?
            .f_unsqueeze(-1)?;
        let nan = nu.f_le(1.0)?.f_unsqueeze(-1)?;
        Ok(v.f_masked_fill(&inf, f64::INFINITY)?
            .f_masked_fill(&nan, f64::NAN)?)
    }
}
