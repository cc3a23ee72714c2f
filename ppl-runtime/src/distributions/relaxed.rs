//! Continuous relaxations of discrete distributions (the Concrete / Gumbel-softmax
//! distributions, Maddison et al. 2017, Jang et al. 2017), for VAEs with discrete codes:
//! [`RelaxedBernoulli`] and [`RelaxedOneHotCategorical`] as torch defines them, and their
//! straight-through forms (Pyro's `RelaxedBernoulliStraightThrough`,
//! `RelaxedOneHotCategoricalStraightThrough`): a hard (discrete) value forwards, the relaxed
//! sample's gradient backwards.

use std::cell::RefCell;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::util::uniform_open;
use super::{
    broadcast_args, check_positive, extended_shape, Arg, DistRef, Distribution,
    TransformedDistribution,
};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::transforms::{ExpTransform, SigmoidTransform};

/// `temperature` as a positive tensor like `like`.
fn temperature_tensor(dist: &'static str, t: Arg, like: &Tensor) -> Result<Tensor> {
    let t = match t {
        Arg::Tensor(t) => t,
        other => {
            let [t] = broadcast_args(dist, [other])?;
            t.f_to_kind(like.kind())?.f_to_device(like.device())?
        }
    };
    check_positive(dist, "temperature", &t)?;
    Ok(t)
}

/// The logit of a relaxed Bernoulli draw (torch's `LogitRelaxedBernoulli`):
/// `y = (logits + log u - log(1 - u)) / temperature`, `u ~ U(0, 1)`.
#[derive(Debug)]
pub struct LogitRelaxedBernoulli {
    temperature: Tensor,
    logits: Tensor,
    batch_shape: Vec<i64>,
}

impl LogitRelaxedBernoulli {
    /// With log-odds `logits` and a positive `temperature`.
    pub fn new(temperature: impl Into<Arg>, logits: impl Into<Arg>) -> Result<Self> {
        let [logits] = broadcast_args("LogitRelaxedBernoulli", [logits.into()])?;
        let temperature = temperature_tensor("LogitRelaxedBernoulli", temperature.into(), &logits)?;
        let batch_shape = logits.size();
        Ok(LogitRelaxedBernoulli {
            temperature,
            logits,
            batch_shape,
        })
    }
}

impl Distribution for LogitRelaxedBernoulli {
    fn name(&self) -> &'static str {
        "LogitRelaxedBernoulli"
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
        Constraint::Real
    }
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(s))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, s);
        let u = uniform_open(&shape, &self.logits)?;
        let noise = u.f_log()?.f_sub(&u.f_neg()?.f_log1p()?)?;
        Ok(self.logits.f_add(&noise)?.f_div(&self.temperature)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        // diff = logits - value · T; log T + diff - 2 softplus(diff).
        let diff = self.logits.f_sub(&value.f_mul(&self.temperature)?)?;
        Ok(self
            .temperature
            .f_log()?
            .f_add(&diff)?
            .f_sub(&diff.f_softplus()?.f_mul_scalar(2.0)?)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(LogitRelaxedBernoulli {
            temperature: self.temperature.shallow_clone(),
            logits: self.logits.f_expand(batch_shape, false)?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
}

/// The log of a relaxed one-hot categorical draw (torch's `ExpRelaxedCategorical`):
/// `y = s - logsumexp(s)` with `s = (logits + g) / temperature`, `g` standard Gumbel.
#[derive(Debug)]
pub struct ExpRelaxedCategorical {
    temperature: Tensor,
    /// Normalized log-probabilities, `[..., K]`.
    logits: Tensor,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

impl ExpRelaxedCategorical {
    /// With log-probabilities `logits` (`[..., K]`, normalized here) and a positive
    /// `temperature`.
    pub fn new(temperature: impl Into<Arg>, logits: impl Into<Arg>) -> Result<Self> {
        let [logits] = broadcast_args("ExpRelaxedCategorical", [logits.into()])?;
        if logits.dim() == 0 {
            return Err(Error::Shape(
                "ExpRelaxedCategorical: logits need a last dim of categories".into(),
            ));
        }
        let logits = logits.f_sub(&logits.f_logsumexp([-1i64].as_slice(), true)?)?;
        let temperature = temperature_tensor("ExpRelaxedCategorical", temperature.into(), &logits)?;
        let mut batch_shape = logits.size();
        let k = batch_shape.pop().unwrap_or(1);
        Ok(ExpRelaxedCategorical {
            temperature,
            logits,
            batch_shape,
            event_shape: vec![k],
        })
    }
}

impl Distribution for ExpRelaxedCategorical {
    fn name(&self) -> &'static str {
        "ExpRelaxedCategorical"
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
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(s))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        let shape = extended_shape(self, s);
        let u = uniform_open(&shape, &self.logits)?;
        let gumbel = u.f_log()?.f_neg()?.f_log()?.f_neg()?;
        let scores = self.logits.f_add(&gumbel)?.f_div(&self.temperature)?;
        Ok(scores.f_sub(&scores.f_logsumexp([-1i64].as_slice(), true)?)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        // log Γ(K) + (K - 1) log T + Σ (score - logsumexp(score)), score = logits - value · T.
        let k = self.event_shape[0] as f64;
        let log_scale = self
            .temperature
            .f_log()?
            .f_mul_scalar(k - 1.0)?
            .f_add_scalar(libm_lgamma(k))?;
        let score = self.logits.f_sub(&value.f_mul(&self.temperature)?)?;
        let score = score
            .f_sub(&score.f_logsumexp([-1i64].as_slice(), true)?)?
            .f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?;
        Ok(score.f_add(&log_scale)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let mut full = batch_shape.to_vec();
        full.extend_from_slice(&self.event_shape);
        Ok(Rc::new(ExpRelaxedCategorical {
            temperature: self.temperature.shallow_clone(),
            logits: self.logits.f_expand(full.as_slice(), false)?,
            batch_shape: batch_shape.to_vec(),
            event_shape: self.event_shape.clone(),
        }))
    }
}

/// `log Γ(k)` for a positive integer-valued `k`: `log (k - 1)!`.
fn libm_lgamma(k: f64) -> f64 {
    (1..(k as u64)).map(|i| (i as f64).ln()).sum()
}

/// The last straight-through draw: `(value, relaxed sample)`, so that `log_prob` of the hard
/// value scores the relaxed one (Pyro keeps it on the tensor as `_unquantize`).
#[derive(Debug, Default)]
struct Unquantize(RefCell<Option<(Tensor, Tensor)>>);

impl Unquantize {
    fn relaxed(&self, value: &Tensor) -> Tensor {
        self.0
            .borrow()
            .as_ref()
            .filter(|(v, _)| v.data_ptr() == value.data_ptr() && v.size() == value.size())
            .map_or_else(|| value.shallow_clone(), |(_, soft)| soft.shallow_clone())
    }
}

macro_rules! relaxed_wrapper {
    ($name:ident, $label:literal, $support:expr, $hard:literal) => {
        impl $name {
            fn wrap(inner: TransformedDistribution) -> Self {
                $name {
                    inner: Rc::new(inner),
                    straight_through: false,
                    unquantize: Unquantize::default(),
                }
            }

            #[doc = concat!("The straight-through form: ", $hard, " draws with the relaxed gradient.")]
            pub fn straight_through(mut self) -> Self {
                self.straight_through = true;
                self
            }
        }

        impl Distribution for $name {
            fn name(&self) -> &'static str {
                $label
            }
            fn batch_shape(&self) -> &[i64] {
                self.inner.batch_shape()
            }
            fn event_shape(&self) -> &[i64] {
                self.inner.event_shape()
            }
            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
            fn support(&self) -> Constraint {
                $support
            }
            fn sample(&self, s: &[i64]) -> Result<Tensor> {
                tch::no_grad(|| self.rsample(s))
            }
            fn has_rsample(&self) -> bool {
                true
            }
            fn rsample(&self, s: &[i64]) -> Result<Tensor> {
                let soft = self.inner.rsample(s)?;
                if !self.straight_through {
                    return Ok(soft);
                }
                let hard = Self::quantize(&soft)?;
                // The hard value forwards, the relaxed sample's gradient backwards.
                let value = hard.f_add(&soft.f_sub(&soft.f_detach()?)?)?;
                *self.unquantize.0.borrow_mut() = Some((value.shallow_clone(), soft));
                Ok(value)
            }
            fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
                let v = if self.straight_through {
                    self.unquantize.relaxed(value)
                } else {
                    value.shallow_clone()
                };
                self.inner.log_prob(&v)
            }
            fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
                Ok(Rc::new($name {
                    inner: self.inner.expand(batch_shape)?,
                    straight_through: self.straight_through,
                    unquantize: Unquantize::default(),
                }))
            }
        }
    };
}

/// The relaxed Bernoulli (binary Concrete) distribution on `(0, 1)`: `sigmoid` of a
/// [`LogitRelaxedBernoulli`] draw. As the temperature goes to 0 its draws approach Bernoulli
/// draws. Reparameterized. [`RelaxedBernoulli::straight_through`] gives Pyro's
/// `RelaxedBernoulliStraightThrough`: draws rounded to `{0, 1}`, with the relaxed draw's
/// gradient, and `log_prob` of such a draw scores the relaxed value.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = RelaxedBernoulli::new(0.5, 0.3)?;
/// let x = d.rsample(&[4])?;
/// assert!(x.gt(0.0).all().int64_value(&[]) == 1 && x.lt(1.0).all().int64_value(&[]) == 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RelaxedBernoulli {
    inner: DistRef,
    straight_through: bool,
    unquantize: Unquantize,
}

impl RelaxedBernoulli {
    /// With success probability `probs` and a positive `temperature`.
    pub fn new(temperature: impl Into<Arg>, probs: impl Into<Arg>) -> Result<Self> {
        let [probs] = broadcast_args("RelaxedBernoulli", [probs.into()])?;
        super::check_unit("RelaxedBernoulli", "probs", &probs)?;
        let eps = super::finfo_eps(probs.kind());
        let logits = probs.f_clamp(eps, 1.0 - eps)?.f_logit(None)?;
        Self::from_logits(temperature, logits)
    }

    /// With log-odds `logits` and a positive `temperature`.
    pub fn from_logits(temperature: impl Into<Arg>, logits: impl Into<Arg>) -> Result<Self> {
        let base = LogitRelaxedBernoulli::new(temperature, logits)?;
        let inner = TransformedDistribution::new(Rc::new(base), vec![Rc::new(SigmoidTransform)])?;
        Ok(Self::wrap(inner))
    }

    fn quantize(soft: &Tensor) -> Result<Tensor> {
        Ok(soft.f_round()?)
    }
}

relaxed_wrapper!(
    RelaxedBernoulli,
    "RelaxedBernoulli",
    Constraint::UnitInterval,
    "hard `{0, 1}`"
);

/// The relaxed one-hot categorical (Concrete / Gumbel-softmax) distribution on the simplex:
/// `exp` of an [`ExpRelaxedCategorical`] draw. As the temperature goes to 0 its draws approach
/// one-hot draws. Reparameterized. [`RelaxedOneHotCategorical::straight_through`] gives Pyro's
/// `RelaxedOneHotCategoricalStraightThrough`: one-hot draws (the argmax) with the relaxed draw's
/// gradient, and `log_prob` of such a draw scores the relaxed value.
#[derive(Debug)]
pub struct RelaxedOneHotCategorical {
    inner: DistRef,
    straight_through: bool,
    unquantize: Unquantize,
}

impl RelaxedOneHotCategorical {
    /// With probabilities `probs` (`[..., K]`, normalized here) and a positive `temperature`.
    pub fn new(temperature: impl Into<Arg>, probs: impl Into<Arg>) -> Result<Self> {
        let [probs] = broadcast_args("RelaxedOneHotCategorical", [probs.into()])?;
        Self::from_logits(temperature, probs.f_log()?)
    }

    /// With log-probabilities `logits` (`[..., K]`) and a positive `temperature`.
    pub fn from_logits(temperature: impl Into<Arg>, logits: impl Into<Arg>) -> Result<Self> {
        let base = ExpRelaxedCategorical::new(temperature, logits)?;
        let inner = TransformedDistribution::new(Rc::new(base), vec![Rc::new(ExpTransform)])?;
        Ok(Self::wrap(inner))
    }

    fn quantize(soft: &Tensor) -> Result<Tensor> {
        let k = soft.size().last().copied().unwrap_or(1);
        let idx = soft.f_argmax(-1, false)?;
        Ok(idx.f_one_hot(k)?.f_to_kind(soft.kind())?)
    }
}

relaxed_wrapper!(
    RelaxedOneHotCategorical,
    "RelaxedOneHotCategorical",
    Constraint::Simplex,
    "one-hot"
);
