use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{Categorical, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// A finite mixture whose `K` components are one batched distribution: the component batch
/// shape is `batch + [K]`, the mixing [`Categorical`] has batch shape `batch`.
///
/// Density: `p(x) = Σ_k π_k p_k(x)`. Parameters: the mixing distribution (weights `π`) and the
/// component distribution. Support: the components'. Not reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let mix = Categorical::new(&Tensor::from_slice(&[0.5f64, 0.5]))?;
/// let comp = Normal::new(&Tensor::from_slice(&[-1.0f64, 1.0]), 1.0)?;
/// let d = MixtureSameFamily::new(mix, comp.boxed())?;
/// assert_eq!(d.mean()?.double_value(&[]), 0.0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MixtureSameFamily {
    mixture: Categorical,
    component: DistRef,
    batch_shape: Vec<i64>,
}

impl MixtureSameFamily {
    /// Mixes the `K` components in the rightmost batch dim of `component` with `mixture`.
    pub fn new(mixture: Categorical, component: DistRef) -> Result<MixtureSameFamily> {
        let cb = component.batch_shape();
        let k = mixture.num_categories();
        if cb.last() != Some(&k) {
            return Err(Error::InvalidParameter {
                dist: "MixtureSameFamily",
                param: "component",
                expected: format!("batch shape ending in {k} (the mixture size), got {cb:?}"),
            });
        }
        let batch_shape = cb[..cb.len() - 1].to_vec();
        let mixture = if mixture.batch_shape() == batch_shape.as_slice() {
            mixture
        } else {
            let logits = super::expand_param(mixture.logits(), &batch_shape, &[k])?;
            Categorical::from_logits(logits)?
        };
        Ok(MixtureSameFamily {
            mixture,
            component,
            batch_shape,
        })
    }
    /// The mixing distribution.
    pub fn mixture_distribution(&self) -> &Categorical {
        &self.mixture
    }
    /// The batched components.
    pub fn component_distribution(&self) -> &DistRef {
        &self.component
    }
    fn comp_dim(&self) -> i64 {
        -1 - self.component.event_dim() as i64
    }
    /// Mixing probabilities shaped to broadcast against component statistics.
    fn weights(&self) -> Result<Tensor> {
        let mut p = self.mixture.probs().shallow_clone();
        for _ in 0..self.component.event_dim() {
            p = p.f_unsqueeze(-1)?;
        }
        Ok(p)
    }
    fn sum_k(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.f_sum_dim_intlist(self.comp_dim(), false, None::<Kind>)?)
    }
}

impl Distribution for MixtureSameFamily {
    fn name(&self) -> &'static str {
        "MixtureSameFamily"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        self.component.event_shape()
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        self.component.support()
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let idx = self.mixture.sample(sample_shape)?; // sample + batch
        let x = self.component.sample(sample_shape)?; // sample + batch + [K] + event
        let mut idx = idx.f_unsqueeze(-1)?;
        let ev = self.component.event_shape().to_vec();
        for _ in &ev {
            idx = idx.f_unsqueeze(-1)?;
        }
        let mut shape = idx.size();
        let n = shape.len();
        shape[n - ev.len()..].copy_from_slice(&ev);
        let idx = idx.f_expand(shape.as_slice(), false)?;
        Ok(x.f_gather(self.comp_dim(), &idx, false)?
            .f_squeeze_dim(self.comp_dim())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let x = value.f_unsqueeze(self.comp_dim())?;
        let lp = self.component.log_prob(&x)?; // .. + [K]
        Ok(lp
            .f_add(self.mixture.logits())?
            .f_logsumexp([-1].as_slice(), false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = self.mixture.num_categories();
        let mut cb = batch_shape.to_vec();
        cb.push(k);
        let logits = super::expand_param(self.mixture.logits(), batch_shape, &[k])?;
        Ok(Rc::new(MixtureSameFamily::new(
            Categorical::from_logits(logits)?,
            self.component.expand(&cb)?,
        )?))
    }
    fn mean(&self) -> Result<Tensor> {
        self.sum_k(&self.weights()?.f_mul(&self.component.mean()?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let w = self.weights()?;
        let m = self.component.mean()?;
        let mean = self.mean()?.f_unsqueeze(self.comp_dim())?;
        let within = self.sum_k(&w.f_mul(&self.component.variance()?)?)?;
        let between = self.sum_k(&w.f_mul(&m.f_sub(&mean)?.f_square()?)?)?;
        Ok(within.f_add(&between)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let x = value.f_unsqueeze(self.comp_dim())?;
        self.sum_k(&self.component.cdf(&x)?.f_mul(&self.weights()?)?)
    }
}
