use std::f64::consts::PI;

use tch::Tensor;

use super::util::{scalar_family, standard_gamma, where_scalar};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// Student's t distribution with `ν` degrees of freedom, location and scale.
///
/// Density: with `y = (x - loc) / scale`,
/// `p(x) = Γ((ν+1)/2) / (Γ(ν/2) √(νπ) scale) (1 + y²/ν)^(-(ν+1)/2)`. Parameters: `df = ν > 0`,
/// `loc` real, `scale > 0`. Support: the reals. Reparameterized (through a chi-squared draw).
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = StudentT::new(1.0, 0.0, 1.0)?; // = Cauchy(0, 1)
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) + std::f64::consts::PI.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StudentT {
    df: Tensor,
    loc: Tensor,
    scale: Tensor,
    batch_shape: Vec<i64>,
}

impl StudentT {
    /// `StudentT(df, loc, scale)`; `df` and `scale` must be positive.
    pub fn new(df: impl Into<Arg>, loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<StudentT> {
        let [df, loc, scale] = broadcast_args("StudentT", [df.into(), loc.into(), scale.into()])?;
        check_positive("StudentT", "df", &df)?;
        check_positive("StudentT", "scale", &scale)?;
        let batch_shape = loc.size();
        Ok(StudentT {
            df,
            loc,
            scale,
            batch_shape,
        })
    }
    /// The degrees of freedom `ν`.
    pub fn df(&self) -> &Tensor {
        &self.df
    }
    /// The location.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for StudentT {
    scalar_family!("StudentT"; df, loc, scale);
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
        // Y = X / sqrt(Z / ν) with X ~ N(0, 1) and Z ~ Chi2(ν) = 2 Gamma(ν/2).
        let shape = extended_shape(self, sample_shape);
        let x = Tensor::f_randn(shape.as_slice(), (self.df.kind(), self.df.device()))?;
        let z = standard_gamma(&self.df.f_mul_scalar(0.5)?, &shape)?.f_mul_scalar(2.0)?;
        let y = x.f_mul(&z.f_div(&self.df)?.f_rsqrt()?)?;
        Ok(y.f_mul(&self.scale)?.f_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let df = &self.df;
        let y = value.f_sub(&self.loc)?.f_div(&self.scale)?;
        let half_df1 = df.f_add_scalar(1.0)?.f_mul_scalar(0.5)?;
        let z = self
            .scale
            .f_log()?
            .f_add(&df.f_log()?.f_mul_scalar(0.5)?)?
            .f_add_scalar(0.5 * PI.ln())?
            .f_add(&df.f_mul_scalar(0.5)?.f_lgamma()?)?
            .f_sub(&half_df1.f_lgamma()?)?;
        Ok(half_df1
            .f_neg()?
            .f_mul(&y.f_square()?.f_div(df)?.f_log1p()?)?
            .f_sub(&z)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let m = self.loc.f_add(&self.df.f_zeros_like()?)?;
        where_scalar(&self.df.f_gt(1.0)?, &m, f64::NAN)
    }
    fn variance(&self) -> Result<Tensor> {
        let df = &self.df;
        let v = self
            .scale
            .f_square()?
            .f_mul(df)?
            .f_div(&df.f_sub_scalar(2.0)?)?;
        let v = where_scalar(&df.f_gt(2.0)?, &v, f64::INFINITY)?;
        where_scalar(&df.f_gt(1.0)?, &v, f64::NAN)
    }
    fn entropy(&self) -> Result<Tensor> {
        let df = &self.df;
        let half = df.f_mul_scalar(0.5)?;
        let half1 = df.f_add_scalar(1.0)?.f_mul_scalar(0.5)?;
        let lbeta = half
            .f_lgamma()?
            .f_add_scalar(0.5 * PI.ln())?
            .f_sub(&half1.f_lgamma()?)?;
        Ok(self
            .scale
            .f_log()?
            .f_add(&half1.f_mul(&half1.f_digamma()?.f_sub(&half.f_digamma()?)?)?)?
            .f_add(&df.f_log()?.f_mul_scalar(0.5)?)?
            .f_add(&lbeta)?)
    }
}
