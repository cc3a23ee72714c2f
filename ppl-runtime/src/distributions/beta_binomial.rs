use tch::Tensor;

use super::binomial::{check_count, check_counts, count_support};
use super::util::{lbeta, scalar_family, standard_gamma, to_float};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The beta-binomial distribution (Pyro's `BetaBinomial`): `Binomial(n, p)` with
/// `p ~ Beta(concentration1, concentration0)`.
///
/// Mass: `p(k) = C(n, k) B(k + α, n - k + β) / B(α, β)` for integers `0 <= k <= n`.
/// Parameters: `concentration1 = α > 0`, `concentration0 = β > 0`, `total_count = n >= 0`
/// (integer-valued). Support: `0..=n` (as floats). Enumerable when all `n` are equal.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = BetaBinomial::new(1.0, 1.0, 3.0)?; // uniform on 0..=3
/// let lp = d.log_prob(&Tensor::from(2.0f32))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BetaBinomial {
    concentration1: Tensor,
    concentration0: Tensor,
    total_count: Tensor,
    batch_shape: Vec<i64>,
}

impl BetaBinomial {
    /// `BetaBinomial(concentration1, concentration0, total_count)`.
    pub fn new(
        concentration1: impl Into<Arg>,
        concentration0: impl Into<Arg>,
        total_count: impl Into<Arg>,
    ) -> Result<BetaBinomial> {
        let [concentration1, concentration0, total_count] = broadcast_args(
            "BetaBinomial",
            [
                concentration1.into(),
                concentration0.into(),
                total_count.into(),
            ],
        )?;
        check_positive("BetaBinomial", "concentration1", &concentration1)?;
        check_positive("BetaBinomial", "concentration0", &concentration0)?;
        check_count("BetaBinomial", &total_count)?;
        let batch_shape = total_count.size();
        Ok(BetaBinomial {
            concentration1,
            concentration0,
            total_count,
            batch_shape,
        })
    }
    /// `α`.
    pub fn concentration1(&self) -> &Tensor {
        &self.concentration1
    }
    /// `β`.
    pub fn concentration0(&self) -> &Tensor {
        &self.concentration0
    }
    /// `n`.
    pub fn total_count(&self) -> &Tensor {
        &self.total_count
    }
}

impl Distribution for BetaBinomial {
    scalar_family!("BetaBinomial"; concentration1, concentration0, total_count);
    fn support(&self) -> Constraint {
        let max = self.total_count.f_max().and_then(|m| m.f_double_value(&[]));
        Constraint::IntegerInterval(0, max.unwrap_or(0.0) as i64)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let g1 = standard_gamma(&self.concentration1, &shape)?;
            let g0 = standard_gamma(&self.concentration0, &shape)?;
            let p = g1.f_div(&g1.f_add(&g0)?)?;
            let n = self.total_count.f_expand(shape.as_slice(), false)?;
            to_float(Tensor::f_binomial(&n, &p)?, p.kind())
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_counts("BetaBinomial", value, &self.total_count)?;
        let (a, b, n) = (
            &self.concentration1,
            &self.concentration0,
            &self.total_count,
        );
        let n_k = n.f_sub(value)?;
        Ok(n.f_add_scalar(1.0)?
            .f_lgamma()?
            .f_sub(&value.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_sub(&n_k.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_add(&lbeta(&value.f_add(a)?, &n_k.f_add(b)?)?)?
            .f_sub(&lbeta(a, b)?)?)
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        count_support(self, &self.total_count, expand)
    }
    fn mean(&self) -> Result<Tensor> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        Ok(self.total_count.f_mul(a)?.f_div(&a.f_add(b)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let (a, b, n) = (
            &self.concentration1,
            &self.concentration0,
            &self.total_count,
        );
        let s = a.f_add(b)?;
        Ok(n.f_mul(a)?
            .f_mul(b)?
            .f_mul(&s.f_add(n)?)?
            .f_div(&s.f_square()?.f_mul(&s.f_add_scalar(1.0)?)?)?)
    }
}
