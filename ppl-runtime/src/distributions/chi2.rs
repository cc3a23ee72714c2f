use tch::Tensor;

use super::gamma::{gamma_entropy, gamma_log_prob};
use super::util::{scalar_family, standard_gamma};
use super::{broadcast_args, check_positive, extended_shape, validate_sample, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// The chi-squared distribution with `ν` degrees of freedom, `Gamma(ν/2, 1/2)`.
///
/// Density: `p(x) = x^(ν/2-1) exp(-x/2) / (2^(ν/2) Γ(ν/2))` for `x > 0`. Parameters:
/// `df = ν > 0`. Support: `x > 0`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Chi2::new(2.0)?; // = Exponential(1/2)
/// let lp = d.log_prob(&Tensor::from(2.0f32))?;
/// assert!((lp.double_value(&[]) - (0.5f64.ln() - 1.0)).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Chi2 {
    df: Tensor,
    batch_shape: Vec<i64>,
}

impl Chi2 {
    /// `Chi2(df)`; `df` must be positive.
    pub fn new(df: impl Into<Arg>) -> Result<Chi2> {
        let [df] = broadcast_args("Chi2", [df.into()])?;
        check_positive("Chi2", "df", &df)?;
        let batch_shape = df.size();
        Ok(Chi2 { df, batch_shape })
    }
    /// The degrees of freedom `ν`.
    pub fn df(&self) -> &Tensor {
        &self.df
    }
    fn alpha_rate(&self) -> Result<(Tensor, Tensor)> {
        Ok((self.df.f_mul_scalar(0.5)?, self.df.f_full_like(0.5)?))
    }
}

impl Distribution for Chi2 {
    scalar_family!("Chi2"; df);
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
        let shape = extended_shape(self, sample_shape);
        let g = standard_gamma(&self.df.f_mul_scalar(0.5)?, &shape)?;
        Ok(g.f_mul_scalar(2.0)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let (a, r) = self.alpha_rate()?;
        gamma_log_prob(&a, &r, value)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.df.shallow_clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.df.f_mul_scalar(2.0)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let (a, r) = self.alpha_rate()?;
        gamma_entropy(&a, &r)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        Ok(self
            .df
            .f_mul_scalar(0.5)?
            .f_special_gammainc(&value.f_mul_scalar(0.5)?)?)
    }
}
