use tch::Tensor;

use super::poisson::poisson_log_prob;
use super::util::{scalar_family, to_float};
use super::{
    broadcast_args, check, check_unit, extended_shape, validate_sample, Arg, Distribution,
};
use crate::constraints::Constraint;
use crate::error::Result;

/// The zero-inflated Poisson distribution (Pyro's `ZeroInflatedPoisson`): zero with
/// probability `gate`, else a `Poisson(rate)` draw.
///
/// Mass: `p(0) = gate + (1 - gate) exp(-λ)`, `p(k) = (1 - gate) λ^k exp(-λ) / k!` for `k > 0`.
/// Parameters: `gate` in `[0, 1]`, `rate = λ >= 0`. Support: the nonnegative integers.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = ZeroInflatedPoisson::new(0.5, 1.0)?;
/// let lp = d.log_prob(&Tensor::from(0.0f32))?;
/// assert!((lp.double_value(&[]) - (0.5 + 0.5 * (-1f64).exp()).ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ZeroInflatedPoisson {
    gate: Tensor,
    rate: Tensor,
    batch_shape: Vec<i64>,
}

impl ZeroInflatedPoisson {
    /// `ZeroInflatedPoisson(gate, rate)`.
    pub fn new(gate: impl Into<Arg>, rate: impl Into<Arg>) -> Result<ZeroInflatedPoisson> {
        let [gate, rate] = broadcast_args("ZeroInflatedPoisson", [gate.into(), rate.into()])?;
        check_unit("ZeroInflatedPoisson", "gate", &gate)?;
        check("ZeroInflatedPoisson", "rate", ">= 0", || {
            rate.f_ge(0.0)?.f_all()
        })?;
        let batch_shape = rate.size();
        Ok(ZeroInflatedPoisson {
            gate,
            rate,
            batch_shape,
        })
    }
    /// From the gate's log-odds.
    pub fn from_gate_logits(
        gate_logits: impl Into<Arg>,
        rate: impl Into<Arg>,
    ) -> Result<ZeroInflatedPoisson> {
        let [g, rate] = broadcast_args("ZeroInflatedPoisson", [gate_logits.into(), rate.into()])?;
        Self::new(g.f_sigmoid()?, rate)
    }
    /// The probability of an extra zero.
    pub fn gate(&self) -> &Tensor {
        &self.gate
    }
    /// The Poisson rate.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

impl Distribution for ZeroInflatedPoisson {
    scalar_family!("ZeroInflatedPoisson"; gate, rate);
    fn support(&self) -> Constraint {
        Constraint::NonnegativeInteger
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, sample_shape);
        tch::no_grad(|| {
            let k = self.rate.f_expand(shape.as_slice(), false)?.f_poisson()?;
            let zero = self.gate.f_expand(shape.as_slice(), false)?.f_bernoulli()?;
            let k = to_float(k, self.rate.kind())?;
            Ok(k.f_masked_fill(&zero.f_gt(0.5)?, 0.0)?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let log1m_gate = self.gate.f_neg()?.f_log1p()?;
        let pois = poisson_log_prob(&self.rate, value)?.f_add(&log1m_gate)?;
        let zero = self.gate.f_log()?.f_logaddexp(&pois)?;
        Ok(zero.f_where_self(&value.f_eq(0.0)?, &pois)?)
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.gate.f_neg()?.f_add_scalar(1.0)?.f_mul(&self.rate)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let m = self.mean()?;
        Ok(m.f_mul(&self.rate.f_mul(&self.gate)?.f_add_scalar(1.0)?)?)
    }
}
