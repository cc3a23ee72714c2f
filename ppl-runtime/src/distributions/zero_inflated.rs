use std::rc::Rc;

use tch::Tensor;

use super::util::broadcast_shape;
use super::{
    check_unit, expand_param, extended_shape, validate_sample, Arg, DistRef, Distribution,
    GammaPoisson, NegativeBinomial,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `ZeroInflatedDistribution`: zero with probability `gate`, else a draw from `base`
/// (a distribution with scalar events whose support holds 0).
///
/// Mass: `p(0) = gate + (1 - gate) p_base(0)`, `p(x) = (1 - gate) p_base(x)` otherwise. Batch
/// shape: `base`'s broadcast with `gate`'s.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = ZeroInflatedDistribution::new(Poisson::new(1.0)?.boxed(), 0.5)?;
/// let lp = d.log_prob(&Tensor::from(0.0f64))?;
/// assert!((lp.double_value(&[]) - (0.5 + 0.5 * (-1f64).exp()).ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ZeroInflatedDistribution {
    base: DistRef,
    gate: Tensor,
    batch_shape: Vec<i64>,
}

impl ZeroInflatedDistribution {
    /// `base` inflated at zero by `gate` (in `[0, 1]`).
    pub fn new(base: DistRef, gate: impl Into<Arg>) -> Result<ZeroInflatedDistribution> {
        if !base.event_shape().is_empty() {
            return Err(Error::Shape(format!(
                "ZeroInflatedDistribution: the base {} has event shape {:?}; zero inflation is \
                 for scalar events",
                base.name(),
                base.event_shape()
            )));
        }
        let gate = match gate.into() {
            Arg::Tensor(t) => t,
            Arg::Scalar(v) => {
                // The base's dtype and device, read off its mean.
                let (kind, device) = base
                    .mean()
                    .map(|m| (m.kind(), m.device()))
                    .unwrap_or((tch::Kind::Float, tch::Device::Cpu));
                Tensor::f_scalar_tensor(v, (kind, device))?
            }
        };
        check_unit("ZeroInflatedDistribution", "gate", &gate)?;
        let batch_shape = broadcast_shape(base.batch_shape(), &gate.size());
        let base = if base.batch_shape() == batch_shape.as_slice() {
            base
        } else {
            base.expand(&batch_shape)?
        };
        let gate = expand_param(&gate, &batch_shape, &[])?;
        Ok(ZeroInflatedDistribution {
            base,
            gate,
            batch_shape,
        })
    }
    /// From the gate's log-odds.
    pub fn from_gate_logits(base: DistRef, gate_logits: &Tensor) -> Result<Self> {
        Self::new(base, gate_logits.f_sigmoid()?)
    }
    /// The probability of an extra zero.
    pub fn gate(&self) -> &Tensor {
        &self.gate
    }
    /// The distribution inflated.
    pub fn base(&self) -> &DistRef {
        &self.base
    }
}

impl Distribution for ZeroInflatedDistribution {
    fn name(&self) -> &'static str {
        "ZeroInflatedDistribution"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        self.base.support()
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let x = self.base.sample(sample_shape)?;
            let zero = self.gate.f_expand(shape.as_slice(), false)?.f_bernoulli()?;
            Ok(x.f_masked_fill(&zero.f_gt(0.5)?, 0.0)?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let log1m_gate = self.gate.f_neg()?.f_log1p()?;
        let inflated = self.base.log_prob(value)?.f_add(&log1m_gate)?;
        let zero = self.gate.f_log()?.f_logaddexp(&inflated)?;
        Ok(zero.f_where_self(&value.f_eq(0.0)?, &inflated)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(ZeroInflatedDistribution {
            base: self.base.expand(batch_shape)?,
            gate: expand_param(&self.gate, batch_shape, &[])?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self
            .gate
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_mul(&self.base.mean()?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let keep = self.gate.f_neg()?.f_add_scalar(1.0)?;
        let m = self.base.mean()?;
        let second = self.base.variance()?.f_add(&m.f_square()?)?;
        Ok(keep.f_mul(&second)?.f_sub(&keep.f_mul(&m)?.f_square()?)?)
    }
}

/// Pyro's `ZeroInflatedNegativeBinomial`: [`ZeroInflatedDistribution`] over a
/// [`NegativeBinomial`].
pub struct ZeroInflatedNegativeBinomial;

// Pyro's name for a configured ZeroInflatedDistribution: `new` builds that.
#[allow(clippy::new_ret_no_self)]
impl ZeroInflatedNegativeBinomial {
    /// `NegativeBinomial(total_count, probs)` inflated at zero by `gate`.
    pub fn new(
        total_count: impl Into<Arg>,
        probs: impl Into<Arg>,
        gate: impl Into<Arg>,
    ) -> Result<ZeroInflatedDistribution> {
        let nb = NegativeBinomial::new(total_count, probs)?;
        ZeroInflatedDistribution::new(Rc::new(nb), gate)
    }
    /// With the negative binomial's log-odds.
    pub fn from_logits(
        total_count: impl Into<Arg>,
        logits: impl Into<Arg>,
        gate: impl Into<Arg>,
    ) -> Result<ZeroInflatedDistribution> {
        let nb = NegativeBinomial::from_logits(total_count, logits)?;
        ZeroInflatedDistribution::new(Rc::new(nb), gate)
    }
}

/// NumPyro's `NegativeBinomial2`: the negative binomial by its mean and concentration, i.e.
/// `GammaPoisson(concentration, concentration / mean)` (variance `mean + mean² / concentration`).
pub struct NegativeBinomial2;

// NumPyro's name for a GammaPoisson by mean and concentration: `new` builds that.
#[allow(clippy::new_ret_no_self)]
impl NegativeBinomial2 {
    /// `NegativeBinomial2(mean, concentration)`; both positive.
    pub fn new(mean: impl Into<Arg>, concentration: impl Into<Arg>) -> Result<GammaPoisson> {
        let [mean, c] =
            super::broadcast_args("NegativeBinomial2", [mean.into(), concentration.into()])?;
        super::check_positive("NegativeBinomial2", "mean", &mean)?;
        GammaPoisson::new(&c, c.f_div(&mean)?)
    }
}
