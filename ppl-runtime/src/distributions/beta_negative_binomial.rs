use tch::Tensor;

use super::util::{lbeta, scalar_family};
use super::{
    broadcast_args, check_positive, validate_sample, Arg, Beta, Distribution, NegativeBinomial,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// NumPyro's `BetaNegativeBinomial`: `p ~ Beta(α, β)`, then `X ~ NegativeBinomial(n, p)`.
///
/// Mass: `P(k) = C(n + k - 1, k) B(α + k, β + n) / B(α, β)`. Parameters:
/// `concentration1 = α > 0`, `concentration0 = β > 0`, `n > 0`. Mean `nα/(β-1)` (for `β > 1`,
/// else infinite), variance `nα(n+β-1)(α+β-1) / ((β-2)(β-1)²)` (for `β > 2`).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = BetaNegativeBinomial::new(1.0f64, 1.0, 1.0)?;
/// // α = β = n = 1: P(k) = 1 / ((k + 1)(k + 2)).
/// let lp = d.log_prob(&Tensor::from(2.0f64))?.double_value(&[]);
/// assert!((lp + 12f64.ln()).abs() < 1e-9);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BetaNegativeBinomial {
    concentration1: Tensor,
    concentration0: Tensor,
    n: Tensor,
    batch_shape: Vec<i64>,
}

impl BetaNegativeBinomial {
    /// `BetaNegativeBinomial(concentration1, concentration0, n)`.
    pub fn new(
        concentration1: impl Into<Arg>,
        concentration0: impl Into<Arg>,
        n: impl Into<Arg>,
    ) -> Result<BetaNegativeBinomial> {
        let [a, b, n] = broadcast_args(
            "BetaNegativeBinomial",
            [concentration1.into(), concentration0.into(), n.into()],
        )?;
        check_positive("BetaNegativeBinomial", "concentration1", &a)?;
        check_positive("BetaNegativeBinomial", "concentration0", &b)?;
        check_positive("BetaNegativeBinomial", "n", &n)?;
        let batch_shape = a.size();
        Ok(BetaNegativeBinomial {
            concentration1: a,
            concentration0: b,
            n,
            batch_shape,
        })
    }
}

impl Distribution for BetaNegativeBinomial {
    scalar_family!("BetaNegativeBinomial"; concentration1, concentration0, n);
    fn support(&self) -> Constraint {
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let p = Beta::new(&self.concentration1, &self.concentration0)?.sample(sample_shape)?;
            NegativeBinomial::new(&self.n, p)?.sample(&[])
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (a, b, n) = (&self.concentration1, &self.concentration0, &self.n);
        Ok(n.f_add(value)?
            .f_lgamma()?
            .f_sub(&n.f_lgamma()?)?
            .f_sub(&value.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_add(&lbeta(&a.f_add(value)?, &b.f_add(n)?)?)?
            .f_sub(&lbeta(a, b)?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let (a, b, n) = (&self.concentration1, &self.concentration0, &self.n);
        let m = n.f_mul(a)?.f_div(&b.f_sub_scalar(1.0)?)?;
        Ok(m.f_masked_fill(&b.f_le(1.0)?, f64::INFINITY)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let (a, b, n) = (&self.concentration1, &self.concentration0, &self.n);
        let num = n
            .f_mul(a)?
            .f_mul(&n.f_add(b)?.f_sub_scalar(1.0)?)?
            .f_mul(&a.f_add(b)?.f_sub_scalar(1.0)?)?;
        let den = b
            .f_sub_scalar(2.0)?
            .f_mul(&b.f_sub_scalar(1.0)?.f_square()?)?;
        Ok(num
            .f_div(&den)?
            .f_masked_fill(&b.f_le(2.0)?, f64::INFINITY)?)
    }
}
