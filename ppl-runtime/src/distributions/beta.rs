use std::rc::Rc;

use tch::Tensor;

use super::{
    broadcast_args, check_positive, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The beta distribution on `(0, 1)`.
///
/// Density: `p(x) = x^(α-1) (1-x)^(β-1) / B(α, β)`. Parameters: `concentration1 = α > 0`,
/// `concentration0 = β > 0`. Reparameterized through the standard-gamma gradient.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Beta::new(2.0, 2.0)?;
/// let lp = d.log_prob(&Tensor::from(0.5f32))?;
/// assert!((lp.double_value(&[]) - 1.5f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Beta {
    c1: Tensor,
    c0: Tensor,
    batch_shape: Vec<i64>,
}

impl Beta {
    /// `Beta(concentration1, concentration0)`, both positive.
    pub fn new(concentration1: impl Into<Arg>, concentration0: impl Into<Arg>) -> Result<Beta> {
        let [c1, c0] = broadcast_args("Beta", [concentration1.into(), concentration0.into()])?;
        check_positive("Beta", "concentration1", &c1)?;
        check_positive("Beta", "concentration0", &c0)?;
        let batch_shape = c1.size();
        Ok(Beta {
            c1,
            c0,
            batch_shape,
        })
    }
    /// `α`.
    pub fn concentration1(&self) -> &Tensor {
        &self.c1
    }
    /// `β`.
    pub fn concentration0(&self) -> &Tensor {
        &self.c0
    }
}

impl Distribution for Beta {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "Beta"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
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
        let shape = extended_shape(self, sample_shape);
        let g1 = self
            .c1
            .f_expand(shape.as_slice(), false)?
            .f_internal_standard_gamma()?;
        let g0 = self
            .c0
            .f_expand(shape.as_slice(), false)?
            .f_internal_standard_gamma()?;
        let x = g1.f_div(&g1.f_add(&g0)?)?;
        let eps = super::bernoulli::eps(x.kind());
        Ok(x.f_clamp(eps, 1.0 - eps)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let a = value.f_log()?.f_mul(&self.c1.f_sub_scalar(1.0)?)?.f_add(
            &value
                .f_neg()?
                .f_log1p()?
                .f_mul(&self.c0.f_sub_scalar(1.0)?)?,
        )?;
        let lbeta = self
            .c1
            .f_lgamma()?
            .f_add(&self.c0.f_lgamma()?)?
            .f_sub(&self.c1.f_add(&self.c0)?.f_lgamma()?)?;
        Ok(a.f_sub(&lbeta)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Beta {
            c1: expand_param(&self.c1, batch_shape, &[])?,
            c0: expand_param(&self.c0, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.c1.f_div(&self.c1.f_add(&self.c0)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let t = self.c1.f_add(&self.c0)?;
        Ok(self
            .c1
            .f_mul(&self.c0)?
            .f_div(&t.f_square()?.f_mul(&t.f_add_scalar(1.0)?)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let (a, b) = (&self.c1, &self.c0);
        let t = a.f_add(b)?;
        let lbeta = a.f_lgamma()?.f_add(&b.f_lgamma()?)?.f_sub(&t.f_lgamma()?)?;
        Ok(lbeta
            .f_sub(&a.f_sub_scalar(1.0)?.f_mul(&a.f_digamma()?)?)?
            .f_sub(&b.f_sub_scalar(1.0)?.f_mul(&b.f_digamma()?)?)?
            .f_add(&t.f_sub_scalar(2.0)?.f_mul(&t.f_digamma()?)?)?)
    }
}
