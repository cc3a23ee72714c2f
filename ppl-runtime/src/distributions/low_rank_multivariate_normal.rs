use std::rc::Rc;

use tch::Tensor;

use super::{check_positive, DistRef, Distribution, MultivariateNormal};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The multivariate normal with a low-rank-plus-diagonal covariance `Σ = W Wᵀ + diag(D)`.
///
/// Density: as [`MultivariateNormal`] with that `Σ`. Parameters: `loc` (`batch + [k]`),
/// `cov_factor = W` (`batch + [k, r]`), `cov_diag = D > 0` (`batch + [k]`). Support: `R^k`.
/// Reparameterized. (This implementation factors the full `k × k` covariance.)
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let opts = (Kind::Double, Device::Cpu);
/// let d = LowRankMultivariateNormal::new(
///     &Tensor::zeros([2], opts), &Tensor::zeros([2, 1], opts), &Tensor::ones([2], opts))?;
/// let lp = d.log_prob(&Tensor::zeros([2], opts))?;
/// assert!((lp.double_value(&[]) + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LowRankMultivariateNormal {
    cov_factor: Tensor,
    cov_diag: Tensor,
    mvn: MultivariateNormal,
}

impl LowRankMultivariateNormal {
    /// `N(loc, W Wᵀ + diag(D))`.
    pub fn new(
        loc: &Tensor,
        cov_factor: &Tensor,
        cov_diag: &Tensor,
    ) -> Result<LowRankMultivariateNormal> {
        if cov_factor.dim() < 2 || cov_diag.dim() < 1 {
            return Err(Error::InvalidParameter {
                dist: "LowRankMultivariateNormal",
                param: "cov_factor",
                expected: "a [.., k, r] cov_factor and a [.., k] cov_diag".into(),
            });
        }
        check_positive("LowRankMultivariateNormal", "cov_diag", cov_diag)?;
        let cov = cov_factor
            .f_matmul(&cov_factor.f_transpose(-2, -1)?)?
            .f_add(&cov_diag.f_diag_embed(0, -2, -1)?)?;
        let mvn = MultivariateNormal::from_scale_tril(loc, &cov.f_linalg_cholesky(false)?)?;
        Ok(LowRankMultivariateNormal {
            cov_factor: cov_factor.shallow_clone(),
            cov_diag: cov_diag.shallow_clone(),
            mvn,
        })
    }
    /// `W`.
    pub fn cov_factor(&self) -> &Tensor {
        &self.cov_factor
    }
    /// `D`.
    pub fn cov_diag(&self) -> &Tensor {
        &self.cov_diag
    }
    /// The equivalent full-covariance distribution.
    pub fn as_multivariate_normal(&self) -> &MultivariateNormal {
        &self.mvn
    }
}

impl Distribution for LowRankMultivariateNormal {
    fn name(&self) -> &'static str {
        "LowRankMultivariateNormal"
    }
    fn batch_shape(&self) -> &[i64] {
        self.mvn.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        self.mvn.event_shape()
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::RealVector
    }
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        self.mvn.sample(s)
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        self.mvn.rsample(s)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        self.mvn.log_prob(value)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = self.mvn.event_shape()[0];
        let r = *self.cov_factor.size().last().unwrap_or(&0);
        let e = |t: &Tensor, ev: &[i64]| super::expand_param(t, batch_shape, ev);
        Ok(Rc::new(LowRankMultivariateNormal::new(
            &e(self.mvn.loc(), &[k])?,
            &e(&self.cov_factor, &[k, r])?,
            &e(&self.cov_diag, &[k])?,
        )?))
    }
    fn mean(&self) -> Result<Tensor> {
        self.mvn.mean()
    }
    fn variance(&self) -> Result<Tensor> {
        self.mvn.variance()
    }
    fn entropy(&self) -> Result<Tensor> {
        self.mvn.entropy()
    }
}
