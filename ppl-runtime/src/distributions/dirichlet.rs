use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::standard_gamma;
use super::{
    broadcast_args, check_positive, expand_param, extended_shape, validate_sample, Arg, DistRef,
    Distribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The Dirichlet distribution on the `K`-simplex.
///
/// Density: `p(x) = Γ(Σ α_k) / ∏ Γ(α_k) ∏ x_k^(α_k - 1)`. Parameters: `concentration = α`,
/// positive, with the `K` categories in the last dim (event shape `[K]`). Support: the simplex.
/// Reparameterized: normalized standard-gamma draws, differentiable through the standard-gamma
/// gradient.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Dirichlet::new(&Tensor::from_slice(&[1.0f32, 1.0, 1.0]))?;
/// let lp = d.log_prob(&Tensor::from_slice(&[0.2f32, 0.3, 0.5]))?;
/// assert!((lp.double_value(&[]) - 2f64.ln()).abs() < 1e-6); // uniform: Γ(3) = 2
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Dirichlet {
    concentration: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl Dirichlet {
    /// `Dirichlet(concentration)`; positive, at least one dim.
    pub fn new(concentration: impl Into<Arg>) -> Result<Dirichlet> {
        let [c] = broadcast_args("Dirichlet", [concentration.into()])?;
        if c.dim() == 0 {
            return Err(Error::InvalidParameter {
                dist: "Dirichlet",
                param: "concentration",
                expected: "at least one dimension (the categories)".into(),
            });
        }
        check_positive("Dirichlet", "concentration", &c)?;
        let mut batch_shape = c.size();
        let k = batch_shape.pop().unwrap_or(0);
        Ok(Dirichlet {
            concentration: c,
            batch_shape,
            event_shape: vec![k],
        })
    }
    /// The concentration `α`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }
}

fn sum_last(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_sum_dim_intlist(-1, false, None::<Kind>)?)
}

impl Distribution for Dirichlet {
    fn name(&self) -> &'static str {
        "Dirichlet"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        Constraint::Simplex
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let g = standard_gamma(&self.concentration, &shape)?;
        let x = g.f_div(&g.f_sum_dim_intlist(-1, true, None::<Kind>)?)?;
        let tiny = super::finfo_tiny(x.kind());
        Ok(x.f_clamp(tiny, 1.0 - super::finfo_eps(x.kind()))?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let a = &self.concentration;
        let t = sum_last(&a.f_sub_scalar(1.0)?.f_xlogy(value)?)?;
        Ok(t.f_add(&sum_last(a)?.f_lgamma()?)?
            .f_sub(&sum_last(&a.f_lgamma()?)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(Dirichlet {
            concentration: expand_param(&self.concentration, batch_shape, &self.event_shape)?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let a = &self.concentration;
        Ok(a.f_div(&a.f_sum_dim_intlist(-1, true, None::<Kind>)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let a = &self.concentration;
        let a0 = a.f_sum_dim_intlist(-1, true, None::<Kind>)?;
        Ok(a.f_mul(&a0.f_sub(a)?)?
            .f_div(&a0.f_square()?.f_mul(&a0.f_add_scalar(1.0)?)?)?)
    }
    fn entropy(&self) -> Result<Tensor> {
        let a = &self.concentration;
        let k = *self.event_shape.first().unwrap_or(&0) as f64;
        let a0 = sum_last(a)?;
        Ok(sum_last(&a.f_lgamma()?)?
            .f_sub(&a0.f_lgamma()?)?
            .f_sub(&a0.f_neg()?.f_add_scalar(k)?.f_mul(&a0.f_digamma()?)?)?
            .f_sub(&sum_last(&a.f_sub_scalar(1.0)?.f_mul(&a.f_digamma()?)?)?)?)
    }
}
