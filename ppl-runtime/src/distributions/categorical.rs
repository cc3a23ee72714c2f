use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{broadcast_args, check, expand_param, validate_sample, Arg, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// The categorical distribution over `{0, ..., K-1}`.
///
/// Mass: `p(k) = probs[k]` (probs normalized along the last dim), or given `logits`,
/// `p(k) = softmax(logits)[k]`. Support: integers `0..K` (int64). Enumerable.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Categorical::new(&Tensor::from_slice(&[1.0f32, 3.0]))?;
/// let lp = d.log_prob(&Tensor::from(1i64))?;
/// assert!((lp.double_value(&[]) - 0.75f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Categorical {
    logits: Tensor,
    probs: Tensor,
    batch_shape: Vec<i64>,
}

impl Categorical {
    /// From nonnegative weights along the last dim (normalized here).
    pub fn new(probs: impl Into<Arg>) -> Result<Categorical> {
        let [probs] = broadcast_args("Categorical", [probs.into()])?;
        if probs.dim() == 0 {
            return Err(Error::InvalidParameter {
                dist: "Categorical",
                param: "probs",
                expected: "at least one dimension (the categories)".into(),
            });
        }
        check(
            "Categorical",
            "probs",
            "nonnegative with a positive sum",
            || {
                probs.f_ge(0.0)?.f_all()?.f_logical_and(
                    &probs
                        .f_sum_dim_intlist(-1, false, None)?
                        .f_gt(0.0)?
                        .f_all()?,
                )
            },
        )?;
        let probs = probs.f_div(&probs.f_sum_dim_intlist(-1, true, None)?)?;
        let logits = probs.f_log()?;
        Ok(Self::build(logits, probs))
    }
    /// From unnormalized log-weights along the last dim.
    pub fn from_logits(logits: impl Into<Arg>) -> Result<Categorical> {
        let [logits] = broadcast_args("Categorical", [logits.into()])?;
        if logits.dim() == 0 {
            return Err(Error::InvalidParameter {
                dist: "Categorical",
                param: "logits",
                expected: "at least one dimension (the categories)".into(),
            });
        }
        let logits = logits.f_sub(&logits.f_logsumexp(-1, true)?)?;
        let probs = logits.f_exp()?;
        Ok(Self::build(logits, probs))
    }
    fn build(logits: Tensor, probs: Tensor) -> Categorical {
        let mut batch_shape = probs.size();
        batch_shape.pop();
        Categorical {
            logits,
            probs,
            batch_shape,
        }
    }
    /// Number of categories.
    pub fn num_categories(&self) -> i64 {
        self.probs.size().last().copied().unwrap_or(0)
    }
    /// Normalized probabilities.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
    /// Normalized log-probabilities.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }
}

impl Distribution for Categorical {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "Categorical"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn support(&self) -> Constraint {
        Constraint::IntegerInterval(0, self.num_categories() - 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| {
            let k = self.num_categories();
            let n: i64 = sample_shape.iter().product();
            let flat = self.probs.f_reshape([-1, k])?;
            let draws = flat.f_multinomial(n.max(1), true)?; // [batch, n]
            let draws = if n == 0 {
                draws.f_narrow(1, 0, 0)?
            } else {
                draws
            };
            let mut shape = sample_shape.to_vec();
            shape.extend_from_slice(&self.batch_shape);
            let batch_numel: i64 = self.batch_shape.iter().product();
            let mut perm_shape = vec![batch_numel];
            perm_shape.extend_from_slice(sample_shape);
            // [batch, sample...] -> [sample..., batch...]
            let d = draws.f_reshape(perm_shape.as_slice())?;
            let nd = d.dim() as i64;
            let mut order: Vec<i64> = (1..nd).collect();
            order.push(0);
            Ok(d.f_permute(order.as_slice())?.f_reshape(shape.as_slice())?)
        })
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        validate_sample(self, value)?;
        let v = value.f_to_kind(Kind::Int64)?.f_unsqueeze(-1)?;
        let k = self.num_categories();
        // Broadcast value's batch dims against the logits' batch dims.
        let mut vshape = v.size();
        let lshape = self.logits.size();
        let nd = vshape.len().max(lshape.len());
        while vshape.len() < nd {
            vshape.insert(0, 1);
        }
        let mut lpad = lshape.clone();
        while lpad.len() < nd {
            lpad.insert(0, 1);
        }
        let mut target = Vec::with_capacity(nd);
        for i in 0..nd - 1 {
            let (a, b) = (vshape[i], lpad[i]);
            if a != b && a != 1 && b != 1 {
                return Err(Error::Shape(format!(
                    "Categorical: value of shape {:?} does not broadcast with batch shape {:?}",
                    value.size(),
                    self.batch_shape
                )));
            }
            target.push(a.max(b));
        }
        let mut lt = target.clone();
        lt.push(k);
        let mut vt = target;
        vt.push(1);
        let logits = self.logits.f_expand(lt.as_slice(), false)?;
        let v = v.f_expand(vt.as_slice(), false)?;
        Ok(logits.f_gather(-1, &v, false)?.f_squeeze_dim(-1)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = [self.num_categories()];
        Ok(Rc::new(Categorical {
            logits: expand_param(&self.logits, batch_shape, &k)?,
            probs: expand_param(&self.probs, batch_shape, &k)?,
            batch_shape: batch_shape.to_vec(),
        }))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let k = self.num_categories();
        let v = Tensor::f_arange(k, (Kind::Int64, self.probs.device()))?;
        let mut shape = vec![k];
        shape.extend(std::iter::repeat_n(1, self.batch_shape.len()));
        let v = v.f_reshape(shape.as_slice())?;
        if expand {
            let mut full = vec![k];
            full.extend_from_slice(&self.batch_shape);
            Ok(v.f_expand(full.as_slice(), false)?)
        } else {
            Ok(v)
        }
    }
    fn mean(&self) -> Result<Tensor> {
        // Undefined for a categorical label, as in torch.
        let k = (self.probs.kind(), self.probs.device());
        Ok(Tensor::f_full(self.batch_shape.as_slice(), f64::NAN, k)?)
    }
    fn variance(&self) -> Result<Tensor> {
        self.mean()
    }
    fn entropy(&self) -> Result<Tensor> {
        let min = match self.logits.kind() {
            Kind::Double => f64::MIN,
            _ => f32::MIN as f64,
        };
        let l = self.logits.f_clamp_min(min)?;
        Ok(l.f_mul(&self.probs)?
            .f_sum_dim_intlist(-1, false, None)?
            .f_neg()?)
    }
}
