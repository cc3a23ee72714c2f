use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{DistRef, Distribution, Independent};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::transforms::TransformRef;

/// The distribution of `y = t_n(...t_1(x))` for `x` from a base distribution.
///
/// Density: `p(y) = p_base(x) / |det ∂y/∂x|` (change of variables). Parameters: the base
/// distribution and the transforms, first applied first. Support: the last transform's
/// codomain. Reparameterized when the base is. `cdf`/`icdf` exist for monotone scalar
/// transforms.
///
/// ```
/// use std::rc::Rc;
/// use ppl::prelude::*;
/// use ppl::transforms::ExpTransform;
/// # fn main() -> ppl::Result<()> {
/// let d = TransformedDistribution::new(Normal::new(0.0, 1.0)?.boxed(), vec![Rc::new(ExpTransform)])?;
/// let lp = d.log_prob(&Tensor::from(1.0f32))?; // = LogNormal(0, 1) at 1
/// assert!((lp.double_value(&[]) + 0.9189385).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TransformedDistribution {
    base: DistRef,
    transforms: Vec<TransformRef>,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl TransformedDistribution {
    /// Pushes `base` through `transforms` in order.
    pub fn new(base: DistRef, transforms: Vec<TransformRef>) -> Result<TransformedDistribution> {
        // The event dims the transforms need; extra ones come out of the base's batch dims.
        let mut need = base.event_dim();
        let mut ev = need;
        for t in &transforms {
            ev = ev.max(t.domain_event_dim());
            need = need.max(ev);
            ev = ev + t.codomain_event_dim() - t.domain_event_dim();
        }
        let extra = need.saturating_sub(base.event_dim());
        let base: DistRef = if extra > 0 {
            Rc::new(Independent::new(base, extra)?)
        } else {
            base
        };
        let mut shape = base.batch_shape().to_vec();
        shape.extend_from_slice(base.event_shape());
        let mut ev = base.event_dim();
        for t in &transforms {
            shape = t.forward_shape(&shape);
            ev = ev + t.codomain_event_dim() - t.domain_event_dim();
        }
        if ev > shape.len() {
            return Err(Error::Shape(format!(
                "transforms need {ev} event dims of {shape:?}"
            )));
        }
        let split = shape.len() - ev;
        Ok(TransformedDistribution {
            base,
            transforms,
            batch_shape: shape[..split].to_vec(),
            event_shape: shape[split..].to_vec(),
        })
    }
    /// The base distribution.
    pub fn base_dist(&self) -> &DistRef {
        &self.base
    }
    /// The transforms, first applied first.
    pub fn transforms(&self) -> &[TransformRef] {
        &self.transforms
    }
    fn forward(&self, x: Tensor) -> Result<Tensor> {
        self.transforms.iter().try_fold(x, |x, t| t.forward(&x))
    }
    fn monotone_sign(&self) -> Result<f64> {
        let s = self
            .transforms
            .iter()
            .try_fold(1.0, |s, t| t.sign().map(|x| s * x));
        match s {
            Some(s) if self.event_shape.is_empty() => Ok(s),
            _ => Err(self.not_implemented("cdf (of a non-monotone transform)")),
        }
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.transforms
            .iter()
            .rev()
            .try_fold(y.shallow_clone(), |y, t| t.inverse(&y))
    }
}

fn sum_rightmost(t: Tensor, n: usize) -> Result<Tensor> {
    if n == 0 || t.dim() == 0 {
        return Ok(t);
    }
    let nd = t.dim() as i64;
    let dims: Vec<i64> = (nd - n as i64..nd).collect();
    Ok(t.f_sum_dim_intlist(dims.as_slice(), false, None::<Kind>)?)
}

impl Distribution for TransformedDistribution {
    fn name(&self) -> &'static str {
        "TransformedDistribution"
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
        let c = self
            .transforms
            .last()
            .map_or_else(|| self.base.support(), |t| t.codomain());
        let extra = self.event_shape.len().saturating_sub(c.event_dim());
        if extra > 0 {
            Constraint::Independent(Box::new(c), extra)
        } else {
            c
        }
    }
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.forward(self.base.sample(s)?))
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        self.forward(self.base.rsample(s)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let mut ev = self.event_shape.len();
        let mut y = value.shallow_clone();
        let mut lp: Option<Tensor> = None;
        for t in self.transforms.iter().rev() {
            let x = t.inverse(&y)?;
            ev = ev + t.domain_event_dim() - t.codomain_event_dim();
            let ladj = sum_rightmost(t.log_abs_det_jacobian(&x, &y)?, ev - t.domain_event_dim())?;
            lp = Some(match lp {
                None => ladj.f_neg()?,
                Some(l) => l.f_sub(&ladj)?,
            });
            y = x;
        }
        let base = sum_rightmost(self.base.log_prob(&y)?, ev - self.base.event_dim())?;
        match lp {
            Some(l) => Ok(base.f_add(&l)?),
            None => Ok(base),
        }
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let extra = self
            .base
            .batch_shape()
            .len()
            .saturating_sub(self.batch_shape.len());
        let mut b = batch_shape.to_vec();
        b.extend_from_slice(&self.base.batch_shape()[self.base.batch_shape().len() - extra..]);
        Ok(Rc::new(TransformedDistribution::new(
            self.base.expand(&b)?,
            self.transforms.clone(),
        )?))
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let sign = self.monotone_sign()?;
        let c = self.base.cdf(&self.inverse(value)?)?;
        Ok(if sign < 0.0 {
            c.f_neg()?.f_add_scalar(1.0)?
        } else {
            c
        })
    }
    fn icdf(&self, value: &Tensor) -> Result<Tensor> {
        let sign = self.monotone_sign()?;
        let v = if sign < 0.0 {
            value.f_neg()?.f_add_scalar(1.0)?
        } else {
            value.shallow_clone()
        };
        self.forward(self.base.icdf(&v)?)
    }
}
