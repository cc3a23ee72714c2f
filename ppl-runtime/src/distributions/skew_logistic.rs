use tch::Tensor;

use super::util::{scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// Pyro's `SkewLogistic` (the type I generalized logistic): a logistic distribution skewed by
/// `asymmetry = a` (`a = 1` is the logistic).
///
/// Density: with `z = (x - loc)/scale`, `p(x) = a σ(z)^(a+1) e^(-z) / scale`; CDF `σ(z)^a`.
/// Parameters: `loc` real, `scale > 0`, `asymmetry > 0`. Support: the reals. Mean
/// `loc + scale (ψ(a) - ψ(1))`, variance `scale² (ψ'(a) + ψ'(1))`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let s = SkewLogistic::new(0.0f64, 1.0, 1.0)?;
/// let l = Logistic::new(0.0f64, 1.0)?;
/// let x = Tensor::from(0.7f64);
/// assert!((s.log_prob(&x)? - l.log_prob(&x)?).abs().double_value(&[]) < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SkewLogistic {
    loc: Tensor,
    scale: Tensor,
    asymmetry: Tensor,
    batch_shape: Vec<i64>,
}

impl SkewLogistic {
    /// `SkewLogistic(loc, scale, asymmetry)`.
    pub fn new(
        loc: impl Into<Arg>,
        scale: impl Into<Arg>,
        asymmetry: impl Into<Arg>,
    ) -> Result<SkewLogistic> {
        let [loc, scale, asymmetry] =
            broadcast_args("SkewLogistic", [loc.into(), scale.into(), asymmetry.into()])?;
        check_positive("SkewLogistic", "scale", &scale)?;
        check_positive("SkewLogistic", "asymmetry", &asymmetry)?;
        let batch_shape = loc.size();
        Ok(SkewLogistic {
            loc,
            scale,
            asymmetry,
            batch_shape,
        })
    }
}

impl Distribution for SkewLogistic {
    scalar_family!("SkewLogistic"; loc, scale, asymmetry);
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.loc)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        let a = &self.asymmetry;
        Ok(a.f_log()?
            .f_sub(&z)?
            .f_add(&z.f_log_sigmoid()?.f_mul(&a.f_add_scalar(1.0)?)?)?
            .f_sub(&self.scale.f_log()?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        // ψ(1) = -γ
        let d = self
            .asymmetry
            .f_digamma()?
            .f_add_scalar(super::util::EULER_GAMMA)?;
        Ok(self.loc.f_add(&self.scale.f_mul(&d)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        // ψ'(1) = π²/6
        let t = self
            .asymmetry
            .f_polygamma(1)?
            .f_add_scalar(std::f64::consts::PI.powi(2) / 6.0)?;
        Ok(self.scale.f_square()?.f_mul(&t)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        Ok(z.f_log_sigmoid()?.f_mul(&self.asymmetry)?.f_exp()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        // z = logit(u^(1/a))
        let p = value.f_log()?.f_div(&self.asymmetry)?.f_exp()?;
        Ok(p.f_logit(None)?.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
}
