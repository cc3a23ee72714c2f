use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// Pyro's `Empirical`: a distribution over a set of weighted samples, usable as a site's
/// distribution (`sample!` draws one of the samples by weight; `log_prob` is the log of the
/// total normalized weight of the samples equal to the value, `-inf` for any other value).
///
/// `samples` is `[num_samples] + event shape` and `log_weights` `[num_samples]` (unnormalized).
/// Batch shape `[]`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = Empirical::new(&Tensor::from_slice(&[1.0f64, 2.0, 2.0]),
///     &Tensor::from_slice(&[0.0f64, 0.0, 0.0]))?;
/// let lp = d.log_prob(&Tensor::from(2.0f64))?.double_value(&[]);
/// assert!((lp - (2.0f64 / 3.0).ln()).abs() < 1e-12);
/// assert!((d.mean()?.double_value(&[]) - 5.0 / 3.0).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Empirical {
    samples: Tensor,
    /// Normalized: `logsumexp = 0`.
    log_weights: Tensor,
    event_shape: Vec<i64>,
}

impl Empirical {
    /// The weighted samples.
    pub fn new(samples: &Tensor, log_weights: &Tensor) -> Result<Empirical> {
        let s = samples.size();
        if s.is_empty() || log_weights.size() != [s[0]] || s[0] == 0 {
            return Err(Error::Shape(format!(
                "Empirical: samples of shape {s:?} need log_weights of shape [{}] (one per \
                 sample, at least one), got {:?}",
                s.first().copied().unwrap_or(0),
                log_weights.size()
            )));
        }
        let lw = log_weights.f_to_kind(if crate::distributions::is_float(samples.kind()) {
            samples.kind()
        } else {
            Kind::Double
        })?;
        let norm = lw.f_logsumexp([0].as_slice(), false)?;
        Ok(Empirical {
            samples: samples.shallow_clone(),
            log_weights: lw.f_sub(&norm)?,
            event_shape: s[1..].to_vec(),
        })
    }
    /// The samples.
    pub fn samples(&self) -> &Tensor {
        &self.samples
    }
    /// The normalized log-weights.
    pub fn log_weights(&self) -> &Tensor {
        &self.log_weights
    }
    /// The number of samples.
    pub fn num_samples(&self) -> i64 {
        self.samples.size()[0]
    }

    fn weights_like_samples(&self) -> Result<Tensor> {
        let mut shape = vec![self.num_samples()];
        shape.extend(std::iter::repeat_n(1, self.event_shape.len()));
        Ok(self.log_weights.f_exp()?.f_reshape(shape.as_slice())?)
    }
}

impl Distribution for Empirical {
    fn name(&self) -> &'static str {
        "Empirical"
    }
    fn batch_shape(&self) -> &[i64] {
        &[]
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn support(&self) -> Constraint {
        if self.event_shape.is_empty() {
            Constraint::Real
        } else {
            Constraint::Independent(Box::new(Constraint::Real), self.event_shape.len())
        }
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let n: i64 = sample_shape.iter().product();
        let idx = self
            .log_weights
            .f_exp()?
            .f_multinomial(n.max(1), true)?
            .f_narrow(0, 0, n)?;
        let picked = self.samples.f_index_select(0, &idx)?;
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(&self.event_shape);
        Ok(picked.f_reshape(shape.as_slice())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        // Compare each value against every sample: [value batch..., num_samples].
        let e = self.event_shape.len() as i64;
        let v = value.f_unsqueeze(-1 - e)?;
        let mut eq = v.f_eq_tensor(&self.samples)?;
        for _ in 0..e {
            eq = eq.f_all_dim(-1, false)?;
        }
        let lw = self
            .log_weights
            .f_expand(eq.size().as_slice(), false)?
            .f_masked_fill(&eq.f_logical_not()?, f64::NEG_INFINITY)?;
        Ok(lw.f_logsumexp([-1].as_slice(), false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        if batch_shape.is_empty() {
            return Ok(Rc::new(Empirical {
                samples: self.samples.shallow_clone(),
                log_weights: self.log_weights.shallow_clone(),
                event_shape: self.event_shape.clone(),
            }));
        }
        Err(Error::Unsupported(format!(
            "Empirical has batch shape []; expanding it to {batch_shape:?} is not supported \
             (build one Empirical per batch member)"
        )))
    }
    fn mean(&self) -> Result<Tensor> {
        let w = self.weights_like_samples()?;
        Ok(self
            .samples
            .f_to_kind(w.kind())?
            .f_mul(&w)?
            .f_sum_dim_intlist(0, false, None::<Kind>)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let w = self.weights_like_samples()?;
        let x = self.samples.f_to_kind(w.kind())?;
        let d = x.f_sub(&self.mean()?)?;
        Ok(d.f_square()?
            .f_mul(&w)?
            .f_sum_dim_intlist(0, false, None::<Kind>)?)
    }
}
