use std::f64::consts::PI;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{
    broadcast_args, check_positive, expand_param, extended_shape, Arg, DistRef, Distribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// NumPyro's `GaussianRandomWalk`: `x_1 ~ N(0, scale)`, `x_t ~ N(x_(t-1), scale)` for
/// `t = 2..=num_steps`, as one vector event of `num_steps` values.
///
/// Parameters: `scale > 0` (batch-shaped), `num_steps >= 1`. Event shape `[num_steps]`; mean 0,
/// variance `t scale²` at step `t`. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = GaussianRandomWalk::new(1.0, 3)?;
/// assert_eq!(d.event_shape(), &[3]);
/// let x = Tensor::from_slice(&[0.0f32, 0.0, 0.0]);
/// let lp = d.log_prob(&x)?.double_value(&[]);
/// assert!((lp + 1.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GaussianRandomWalk {
    scale: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl GaussianRandomWalk {
    /// `GaussianRandomWalk(scale, num_steps)`.
    pub fn new(scale: impl Into<Arg>, num_steps: i64) -> Result<GaussianRandomWalk> {
        let [scale] = broadcast_args("GaussianRandomWalk", [scale.into()])?;
        check_positive("GaussianRandomWalk", "scale", &scale)?;
        if num_steps < 1 {
            return Err(Error::InvalidParameter {
                dist: "GaussianRandomWalk",
                param: "num_steps",
                expected: format!(">= 1, got {num_steps}"),
            });
        }
        let batch_shape = scale.size();
        Ok(GaussianRandomWalk {
            scale,
            batch_shape,
            event_shape: vec![num_steps],
        })
    }
    /// The step scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

impl Distribution for GaussianRandomWalk {
    fn name(&self) -> &'static str {
        "GaussianRandomWalk"
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
        Constraint::RealVector
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        let z = Tensor::f_randn(shape.as_slice(), (self.scale.kind(), self.scale.device()))?;
        Ok(z.f_mul(&self.scale.f_unsqueeze(-1)?)?
            .f_cumsum(-1, None::<Kind>)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let n = self.event_shape[0];
        // Steps: x_1 - 0, x_t - x_(t-1).
        let prev = Tensor::f_cat(
            &[
                value.f_narrow(-1, 0, 1)?.f_zeros_like()?,
                value.f_narrow(-1, 0, n - 1)?,
            ],
            -1,
        )?;
        let z = value.f_sub(&prev)?.f_div(&self.scale.f_unsqueeze(-1)?)?;
        let per_step = z
            .f_square()?
            .f_mul_scalar(-0.5)?
            .f_sub(&self.scale.f_log()?.f_unsqueeze(-1)?)?
            .f_sub_scalar(0.5 * (2.0 * PI).ln())?;
        Ok(per_step.f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(GaussianRandomWalk {
            scale: expand_param(&self.scale, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let mut shape = self.batch_shape.clone();
        shape.extend_from_slice(&self.event_shape);
        Ok(Tensor::f_zeros(
            shape.as_slice(),
            (self.scale.kind(), self.scale.device()),
        )?)
    }
    fn variance(&self) -> Result<Tensor> {
        let n = self.event_shape[0];
        let t = Tensor::f_arange_start(1, n + 1, (self.scale.kind(), self.scale.device()))?;
        Ok(self.scale.f_square()?.f_unsqueeze(-1)?.f_mul(&t)?)
    }
}
