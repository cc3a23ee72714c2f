use tch::Tensor;

use super::util::{scalar_family, standard_gamma};
use super::{
    broadcast_args, check_positive, extended_shape, finfo_tiny, validate_sample, Arg, Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The Fisher–Snedecor (F) distribution, the ratio of two scaled chi-squares.
///
/// Density: `p(x) = Γ((d₁+d₂)/2) / (Γ(d₁/2) Γ(d₂/2)) (d₁/d₂)^(d₁/2) x^(d₁/2-1)
/// (1 + d₁x/d₂)^(-(d₁+d₂)/2)`. Parameters: `df1 = d₁ > 0`, `df2 = d₂ > 0`. Support: `x > 0`.
/// Reparameterized (through gamma draws). Mean and variance are NaN where they do not exist
/// (`d₂ <= 2`, `d₂ <= 4`), as torch reports them.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = FisherSnedecor::new(2.0, 2.0)?;
/// // F(2, 2): p(x) = 1 / (1 + x)².
/// let lp = d.log_prob(&Tensor::from(1.0f64))?;
/// assert!((lp.double_value(&[]) - 0.25f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FisherSnedecor {
    df1: Tensor,
    df2: Tensor,
    batch_shape: Vec<i64>,
}

impl FisherSnedecor {
    /// `FisherSnedecor(df1, df2)`; both positive.
    pub fn new(df1: impl Into<Arg>, df2: impl Into<Arg>) -> Result<FisherSnedecor> {
        let [df1, df2] = broadcast_args("FisherSnedecor", [df1.into(), df2.into()])?;
        check_positive("FisherSnedecor", "df1", &df1)?;
        check_positive("FisherSnedecor", "df2", &df2)?;
        let batch_shape = df1.size();
        Ok(FisherSnedecor {
            df1,
            df2,
            batch_shape,
        })
    }
}

impl Distribution for FisherSnedecor {
    scalar_family!("FisherSnedecor"; df1, df2);
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        // (X₁/d₁) / (X₂/d₂) with X_i ~ χ²(d_i) = 2 Gamma(d_i/2): Gamma(d/2, d/2) draws.
        let shape = extended_shape(self, sample_shape);
        let h1 = self.df1.f_mul_scalar(0.5)?;
        let h2 = self.df2.f_mul_scalar(0.5)?;
        let x1 = standard_gamma(&h1, &shape)?.f_div(&h1)?;
        let tiny = finfo_tiny(self.df1.kind());
        let x2 = standard_gamma(&h2, &shape)?.f_div(&h2)?.f_clamp_min(tiny)?;
        Ok(x1.f_div(&x2)?.f_clamp_min(tiny)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let h1 = self.df1.f_mul_scalar(0.5)?;
        let h2 = self.df2.f_mul_scalar(0.5)?;
        let ratio = self.df1.f_div(&self.df2)?;
        let hsum = h1.f_add(&h2)?;
        let t1 = hsum
            .f_lgamma()?
            .f_sub(&h1.f_lgamma()?)?
            .f_sub(&h2.f_lgamma()?)?;
        let t2 = h1
            .f_mul(&ratio.f_log()?)?
            .f_add(&h1.f_sub_scalar(1.0)?.f_mul(&value.f_log()?)?)?;
        let t3 = hsum.f_mul(&ratio.f_mul(value)?.f_log1p()?)?;
        Ok(t1.f_add(&t2)?.f_sub(&t3)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let d2 = self.df2.f_masked_fill(&self.df2.f_le(2.0)?, f64::NAN)?;
        Ok(d2.f_div(&d2.f_sub_scalar(2.0)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let d2 = self.df2.f_masked_fill(&self.df2.f_le(4.0)?, f64::NAN)?;
        let num = d2
            .f_square()?
            .f_mul_scalar(2.0)?
            .f_mul(&self.df1.f_add(&d2)?.f_sub_scalar(2.0)?)?;
        let den = self
            .df1
            .f_mul(&d2.f_sub_scalar(2.0)?.f_square()?)?
            .f_mul(&d2.f_sub_scalar(4.0)?)?;
        Ok(num.f_div(&den)?)
    }
}
