use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::uniform_open;
use super::{
    broadcast_args, check_positive, expand_param, extended_shape, Arg, DistRef, Distribution,
    VonMises,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Orders `m` of the normalizer's series, and terms of each `I_m` series (Pyro uses 50 and 51;
/// more terms keep the Bessel sums exact for larger concentrations).
const ORDERS: i64 = 50;
const TERMS: i64 = 120;

/// Pyro's `SineBivariateVonMises`: a distribution of two angles `(φ, ψ)` on the torus, with
/// density `exp(κ₁ cos(φ - μ) + κ₂ cos(ψ - ν) + λ sin(φ - μ) sin(ψ - ν)) / C` (Singh, Mardia
/// and Hughes 2002).
///
/// The normalizer is the series `C = 4π² Σ_m C(2m, m) (λ² / (4κ₁κ₂))^m I_m(κ₁) I_m(κ₂)` (50
/// orders, as Pyro sums it). Parameters: locations `phi_loc`, `psi_loc`; concentrations
/// `phi_concentration`, `psi_concentration > 0`; `correlation = λ`. Values have shape `[.., 2]`.
/// Draws by rejection from the product of the two von Mises marginals (acceptance
/// `exp(λ sin a sin b - |λ|)`: efficient for moderate `|λ|`).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// // No correlation: the product of two von Mises densities.
/// let d = SineBivariateVonMises::new(0.0f64, 1.0, 2.0, 0.5, 0.0)?;
/// let x = Tensor::from_slice(&[0.3f64, -0.4]);
/// let a = VonMises::new(0.0f64, 2.0)?.log_prob(&Tensor::from(0.3f64))?;
/// let b = VonMises::new(1.0f64, 0.5)?.log_prob(&Tensor::from(-0.4f64))?;
/// assert!((d.log_prob(&x)? - a - b).abs().double_value(&[]) < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SineBivariateVonMises {
    phi_loc: Tensor,
    psi_loc: Tensor,
    phi_concentration: Tensor,
    psi_concentration: Tensor,
    correlation: Tensor,
    batch_shape: Vec<i64>,
}

impl SineBivariateVonMises {
    /// `SineBivariateVonMises(phi_loc, psi_loc, phi_concentration, psi_concentration,
    /// correlation)`.
    pub fn new(
        phi_loc: impl Into<Arg>,
        psi_loc: impl Into<Arg>,
        phi_concentration: impl Into<Arg>,
        psi_concentration: impl Into<Arg>,
        correlation: impl Into<Arg>,
    ) -> Result<SineBivariateVonMises> {
        let [phi_loc, psi_loc, k1, k2, lam] = broadcast_args(
            "SineBivariateVonMises",
            [
                phi_loc.into(),
                psi_loc.into(),
                phi_concentration.into(),
                psi_concentration.into(),
                correlation.into(),
            ],
        )?;
        check_positive("SineBivariateVonMises", "phi_concentration", &k1)?;
        check_positive("SineBivariateVonMises", "psi_concentration", &k2)?;
        let batch_shape = phi_loc.size();
        Ok(SineBivariateVonMises {
            phi_loc,
            psi_loc,
            phi_concentration: k1,
            psi_concentration: k2,
            correlation: lam,
            batch_shape,
        })
    }

    /// `log I_m(x)` for orders `0..ORDERS`, shape `batch + [ORDERS]`, by the power series.
    fn log_bessel(x: &Tensor) -> Result<Tensor> {
        let opts = (x.kind(), x.device());
        let m = Tensor::f_arange(ORDERS, opts)?.f_view([ORDERS, 1])?;
        let k = Tensor::f_arange(TERMS, opts)?.f_view([1, TERMS])?;
        let log_half = x
            .f_mul_scalar(0.5)?
            .f_log()?
            .f_unsqueeze(-1)?
            .f_unsqueeze(-1)?;
        let terms = k
            .f_mul_scalar(2.0)?
            .f_add(&m)?
            .f_mul(&log_half)?
            .f_sub(&k.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_sub(&k.f_add(&m)?.f_add_scalar(1.0)?.f_lgamma()?)?;
        Ok(terms.f_logsumexp([-1i64].as_slice(), false)?)
    }

    /// `log C`.
    fn log_norm(&self) -> Result<Tensor> {
        let (k1, k2, lam) = (
            &self.phi_concentration,
            &self.psi_concentration,
            &self.correlation,
        );
        let opts = (k1.kind(), k1.device());
        let m = Tensor::f_arange(ORDERS, opts)?;
        // log C(2m, m) = lgamma(2m + 1) - 2 lgamma(m + 1)
        let lbinom = m
            .f_mul_scalar(2.0)?
            .f_add_scalar(1.0)?
            .f_lgamma()?
            .f_sub(&m.f_add_scalar(1.0)?.f_lgamma()?.f_mul_scalar(2.0)?)?;
        // m log(λ² / (4 κ₁ κ₂)); the m = 0 term is 0 even at λ = 0.
        let ratio = lam
            .f_square()?
            .f_div(&k1.f_mul(k2)?.f_mul_scalar(4.0)?)?
            .f_log()?
            .f_unsqueeze(-1)?;
        let power = m.f_mul(&ratio)?.f_nan_to_num(Some(0.0), None, None)?;
        let power = power.f_masked_fill(&m.f_eq(0.0)?, 0.0)?;
        let fs = power
            .f_add(&lbinom)?
            .f_add(&Self::log_bessel(k1)?)?
            .f_add(&Self::log_bessel(k2)?)?;
        Ok(fs
            .f_logsumexp([-1i64].as_slice(), false)?
            .f_add_scalar(2.0 * (2.0 * PI).ln())?)
    }
}

impl Distribution for SineBivariateVonMises {
    fn name(&self) -> &'static str {
        "SineBivariateVonMises"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[2]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(Constraint::Interval((-PI).into(), PI.into())), 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let shape = extended_shape(self, sample_shape);
            let batch = &shape[..shape.len() - 1];
            let a_dist = VonMises::new(0.0, &self.phi_concentration)?;
            let b_dist = VonMises::new(0.0, &self.psi_concentration)?;
            let lam = self.correlation.f_expand(batch, false)?;
            let mut a = Tensor::f_zeros(batch, (self.phi_loc.kind(), self.phi_loc.device()))?;
            let mut b = a.f_zeros_like()?;
            let mut todo = a.f_ones_like()?.f_to_kind(Kind::Bool)?;
            for _ in 0..1000 {
                let pa = a_dist.sample(sample_shape)?.f_expand(batch, false)?;
                let pb = b_dist.sample(sample_shape)?.f_expand(batch, false)?;
                let log_acc = lam
                    .f_mul(&pa.f_sin()?)?
                    .f_mul(&pb.f_sin()?)?
                    .f_sub(&lam.f_abs()?)?;
                let u = uniform_open(batch, &a)?.f_log()?;
                let take = u.f_lt_tensor(&log_acc)?.f_logical_and(&todo)?;
                a = pa.f_where_self(&take, &a)?;
                b = pb.f_where_self(&take, &b)?;
                todo = todo.f_logical_and(&take.f_logical_not()?)?;
                if todo.f_any()?.f_int64_value(&[])? == 0 {
                    let wrap = |t: Tensor, loc: &Tensor| -> Result<Tensor> {
                        // Back to [-π, π) after shifting by the location.
                        Ok(t.f_add(loc)?
                            .f_add_scalar(PI)?
                            .f_remainder(2.0 * PI)?
                            .f_sub_scalar(PI)?)
                    };
                    let phi = wrap(a, &self.phi_loc)?;
                    let psi = wrap(b, &self.psi_loc)?;
                    return Ok(Tensor::f_stack(&[phi, psi], -1)?);
                }
            }
            Err(Error::Invalid(
                "SineBivariateVonMises: rejection sampling did not finish in 1000 rounds (a very \
                 large |correlation|)"
                    .into(),
            ))
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let a = value.f_select(-1, 0)?.f_sub(&self.phi_loc)?;
        let b = value.f_select(-1, 1)?.f_sub(&self.psi_loc)?;
        Ok(self
            .phi_concentration
            .f_mul(&a.f_cos()?)?
            .f_add(&self.psi_concentration.f_mul(&b.f_cos()?)?)?
            .f_add(&self.correlation.f_mul(&a.f_sin()?)?.f_mul(&b.f_sin()?)?)?
            .f_sub(&self.log_norm()?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let e = |t: &Tensor| expand_param(t, batch_shape, &[]);
        Ok(Rc::new(SineBivariateVonMises {
            phi_loc: e(&self.phi_loc)?,
            psi_loc: e(&self.psi_loc)?,
            phi_concentration: e(&self.phi_concentration)?,
            psi_concentration: e(&self.psi_concentration)?,
            correlation: e(&self.correlation)?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
}
