use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{
    broadcast_args, check_positive, expand_param, Arg, Dirichlet, DistRef, Distribution,
    Multinomial,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The Dirichlet-multinomial distribution (Pyro's `DirichletMultinomial`): counts of
/// `total_count` draws from category probabilities that are themselves `Dirichlet(α)`.
///
/// Mass: `Γ(α₀) Γ(n+1) / Γ(n+α₀) Π_i Γ(x_i+α_i) / (Γ(α_i) Γ(x_i+1))`, `α₀ = Σ α_i`.
/// Parameters: `concentration` `[.., k]` positive, `total_count = n >= 0`. Event shape `[k]`;
/// support: nonnegative integer vectors summing to `n`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = DirichletMultinomial::new(&Tensor::from_slice(&[1.0f64, 1.0]), 2)?;
/// // Uniform over the 3 ways to split 2 draws between 2 categories.
/// let lp = d.log_prob(&Tensor::from_slice(&[1.0f64, 1.0]))?;
/// assert!((lp.double_value(&[]) + 3f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DirichletMultinomial {
    concentration: Tensor,
    total_count: i64,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl DirichletMultinomial {
    /// `DirichletMultinomial(concentration, total_count)`.
    pub fn new(concentration: impl Into<Arg>, total_count: i64) -> Result<Self> {
        let [c] = broadcast_args("DirichletMultinomial", [concentration.into()])?;
        if c.dim() == 0 {
            return Err(Error::InvalidParameter {
                dist: "DirichletMultinomial",
                param: "concentration",
                expected: "at least one dimension (the categories)".into(),
            });
        }
        if total_count < 0 {
            return Err(Error::InvalidParameter {
                dist: "DirichletMultinomial",
                param: "total_count",
                expected: ">= 0".into(),
            });
        }
        check_positive("DirichletMultinomial", "concentration", &c)?;
        let mut batch_shape = c.size();
        let k = batch_shape.pop().unwrap_or(0);
        Ok(DirichletMultinomial {
            concentration: c,
            total_count,
            batch_shape,
            event_shape: vec![k],
        })
    }
    /// The concentration `α`.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }

    fn alpha0(&self) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_sum_dim_intlist(-1, true, None::<Kind>)?)
    }
}

impl Distribution for DirichletMultinomial {
    fn name(&self) -> &'static str {
        "DirichletMultinomial"
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
        Constraint::Multinomial(self.total_count)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let p = Dirichlet::new(&self.concentration)?.sample(sample_shape)?;
            Multinomial::new(self.total_count, p)?.sample(&[])
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        if super::validation_enabled() {
            let ok = Constraint::Multinomial(self.total_count).check(value)?;
            let sums = value.f_sum_dim_intlist(-1, false, None::<Kind>)?;
            let exact = sums.f_eq(self.total_count as f64)?;
            if ok.f_logical_and(&exact)?.f_all()?.f_int64_value(&[])? == 0 {
                return Err(Error::OutsideSupport {
                    dist: "DirichletMultinomial",
                    support: format!(
                        "nonnegative integer vectors summing to total_count = {}",
                        self.total_count
                    ),
                });
            }
        }
        let a = &self.concentration;
        let a0 = self.alpha0()?.f_squeeze_dim(-1)?;
        let n = self.total_count as f64;
        let norm = a0
            .f_lgamma()?
            .f_add_scalar(libm::lgamma(n + 1.0))?
            .f_sub(&a0.f_add_scalar(n)?.f_lgamma()?)?;
        let terms = value
            .f_add(a)?
            .f_lgamma()?
            .f_sub(&a.f_lgamma()?)?
            .f_sub(&value.f_add_scalar(1.0)?.f_lgamma()?)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
        Ok(norm.f_add(&terms)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(DirichletMultinomial {
            concentration: expand_param(&self.concentration, batch_shape, &self.event_shape)?,
            total_count: self.total_count,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self
            .concentration
            .f_div(&self.alpha0()?)?
            .f_mul_scalar(self.total_count as f64)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let n = self.total_count as f64;
        let a0 = self.alpha0()?;
        let p = self.concentration.f_div(&a0)?;
        Ok(p.f_mul(&p.f_neg()?.f_add_scalar(1.0)?)?
            .f_mul_scalar(n)?
            .f_mul(&a0.f_add_scalar(n)?.f_div(&a0.f_add_scalar(1.0)?)?)?)
    }
}
