use std::f64::consts::PI;

use tch::{Kind, Tensor};

use super::util::scalar_family;
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The von Mises distribution on the circle `[-π, π)`.
///
/// Density: `p(x) = exp(κ cos(x - loc)) / (2π I₀(κ))`. Parameters: `loc` real (an angle),
/// `concentration = κ > 0`. Support: `[-π, π]`. Sampled by the Best–Fisher rejection method;
/// not reparameterized. `variance` is the circular variance `1 - I₁(κ) / I₀(κ)`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = VonMises::new(0.0, 1e-6)?; // nearly uniform
/// let lp = d.log_prob(&Tensor::from(1.0f64))?;
/// assert!((lp.double_value(&[]) + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VonMises {
    loc: Tensor,
    concentration: Tensor,
    batch_shape: Vec<i64>,
}

impl VonMises {
    /// `VonMises(loc, concentration)`; `concentration` must be positive.
    pub fn new(loc: impl Into<Arg>, concentration: impl Into<Arg>) -> Result<VonMises> {
        let [loc, concentration] = broadcast_args("VonMises", [loc.into(), concentration.into()])?;
        check_positive("VonMises", "concentration", &concentration)?;
        let batch_shape = loc.size();
        Ok(VonMises {
            loc,
            concentration,
            batch_shape,
        })
    }
    /// The mean direction.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The concentration `κ`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
    /// The Best–Fisher proposal parameter `r`, in float64.
    fn proposal_r(k: &Tensor) -> Result<Tensor> {
        let tau = k
            .f_square()?
            .f_mul_scalar(4.0)?
            .f_add_scalar(1.0)?
            .f_sqrt()?
            .f_add_scalar(1.0)?;
        let rho = tau
            .f_sub(&tau.f_mul_scalar(2.0)?.f_sqrt()?)?
            .f_div(&k.f_mul_scalar(2.0)?)?;
        let r = rho
            .f_square()?
            .f_add_scalar(1.0)?
            .f_div(&rho.f_mul_scalar(2.0)?)?;
        let taylor = k.f_reciprocal()?.f_add(k)?;
        Ok(taylor.f_where_self(&k.f_lt(1e-5)?, &r)?)
    }
}

impl Distribution for VonMises {
    scalar_family!("VonMises"; loc, concentration);
    fn support(&self) -> Constraint {
        Constraint::Interval((-PI).into(), PI.into())
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let dev = self.loc.device();
            let k = self
                .concentration
                .f_to_kind(Kind::Double)?
                .f_expand(shape.as_slice(), false)?;
            let r = Self::proposal_r(&k)?;
            let mut x = Tensor::f_zeros(shape.as_slice(), (Kind::Double, dev))?;
            let mut done = Tensor::f_zeros(shape.as_slice(), (Kind::Bool, dev))?;
            while done.f_all()?.f_int64_value(&[])? == 0 {
                let u = |_| Tensor::f_rand(shape.as_slice(), (Kind::Double, dev));
                let (u1, u2, u3) = (u(1)?, u(2)?, u(3)?);
                let z = u1.f_mul_scalar(PI)?.f_cos()?;
                let f = r.f_mul(&z)?.f_add_scalar(1.0)?.f_div(&r.f_add(&z)?)?;
                let c = k.f_mul(&r.f_sub(&f)?)?;
                let a1 = c
                    .f_mul(&c.f_neg()?.f_add_scalar(2.0)?)?
                    .f_sub(&u2)?
                    .f_gt(0.0)?;
                let a2 = c
                    .f_div(&u2)?
                    .f_log()?
                    .f_add_scalar(1.0)?
                    .f_sub(&c)?
                    .f_ge(0.0)?;
                let accept = a1
                    .f_logical_or(&a2)?
                    .f_logical_and(&done.f_logical_not()?)?;
                let cand = u3.f_sub_scalar(0.5)?.f_sign()?.f_mul(&f.f_acos()?)?;
                x = cand.f_where_self(&accept, &x)?;
                done = done.f_logical_or(&accept)?;
            }
            let loc = self.loc.f_to_kind(Kind::Double)?;
            let y = x
                .f_add_scalar(PI)?
                .f_add(&loc)?
                .f_remainder(2.0 * PI)?
                .f_sub_scalar(PI)?;
            Ok(y.f_to_kind(self.loc.kind())?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let k = &self.concentration;
        let log_i0 = k.f_special_i0e()?.f_log()?.f_add(k)?;
        Ok(value
            .f_sub(&self.loc)?
            .f_cos()?
            .f_mul(k)?
            .f_sub_scalar((2.0 * PI).ln())?
            .f_sub(&log_i0)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        let k = &self.concentration;
        Ok(k.f_special_i1e()?
            .f_div(&k.f_special_i0e()?)?
            .f_neg()?
            .f_add_scalar(1.0)?)
    }
}
