use tch::Tensor;

use super::util::{scalar_family, uniform_open, EULER_GAMMA};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Kumaraswamy distribution on `(0, 1)`, a Beta look-alike with a closed-form CDF.
///
/// Density: `p(x) = a b x^(a-1) (1 - x^a)^(b-1)`. Parameters: `concentration1 = a > 0`,
/// `concentration0 = b > 0`. Support: the unit interval. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Kumaraswamy::new(1.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.3f64))?;
/// assert!(lp.double_value(&[]).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Kumaraswamy {
    concentration1: Tensor,
    concentration0: Tensor,
    batch_shape: Vec<i64>,
}

impl Kumaraswamy {
    /// `Kumaraswamy(a, b)`; both positive.
    pub fn new(concentration1: impl Into<Arg>, concentration0: impl Into<Arg>) -> Result<Self> {
        let [a, b] = broadcast_args(
            "Kumaraswamy",
            [concentration1.into(), concentration0.into()],
        )?;
        check_positive("Kumaraswamy", "concentration1", &a)?;
        check_positive("Kumaraswamy", "concentration0", &b)?;
        let batch_shape = a.size();
        Ok(Kumaraswamy {
            concentration1: a,
            concentration0: b,
            batch_shape,
        })
    }

    /// `E[x^n] = b B(1 + n/a, b)`.
    fn moment(&self, n: f64) -> Result<Tensor> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        let arg = a.f_reciprocal()?.f_mul_scalar(n)?.f_add_scalar(1.0)?;
        let log_beta = arg
            .f_lgamma()?
            .f_add(&b.f_lgamma()?)?
            .f_sub(&arg.f_add(b)?.f_lgamma()?)?;
        Ok(b.f_mul(&log_beta.f_exp()?)?)
    }
}

impl Distribution for Kumaraswamy {
    scalar_family!("Kumaraswamy"; concentration1, concentration0);
    fn support(&self) -> Constraint {
        Constraint::UnitInterval
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let u = uniform_open(&extended_shape(self, sample_shape), &self.concentration1)?;
        self.icdf(&u)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (a, b) = (&self.concentration1, &self.concentration0);
        let xa = value.f_pow(a)?;
        Ok(a.f_log()?
            .f_add(&b.f_log()?)?
            .f_add(&a.f_sub_scalar(1.0)?.f_mul(&value.f_log()?)?)?
            .f_add(&b.f_sub_scalar(1.0)?.f_mul(&xa.f_neg()?.f_log1p()?)?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        self.moment(1.0)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.moment(2.0)?.f_sub(&self.moment(1.0)?.f_square()?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        // (1 - 1/b) + (1 - 1/a) H_b - log a - log b, with H_b = ψ(b + 1) + γ.
        let (a, b) = (&self.concentration1, &self.concentration0);
        let t1 = a.f_reciprocal()?.f_neg()?.f_add_scalar(1.0)?;
        let t0 = b.f_reciprocal()?.f_neg()?.f_add_scalar(1.0)?;
        let h = b
            .f_add_scalar(1.0)?
            .f_digamma()?
            .f_add_scalar(EULER_GAMMA)?;
        Ok(t0
            .f_add(&t1.f_mul(&h)?)?
            .f_sub(&a.f_log()?)?
            .f_sub(&b.f_log()?)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        let x = value.f_clamp(0.0, 1.0)?;
        // 1 - (1 - x^a)^b
        Ok(b.f_mul(&x.f_pow(a)?.f_neg()?.f_log1p()?)?
            .f_expm1()?
            .f_neg()?)
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        // (1 - (1 - u)^(1/b))^(1/a)
        let t = value.f_neg()?.f_log1p()?.f_div(b)?.f_expm1()?.f_neg()?;
        Ok(t.f_log()?.f_div(a)?.f_exp()?)
    }
}
