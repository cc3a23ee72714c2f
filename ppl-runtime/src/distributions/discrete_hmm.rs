use std::rc::Rc;

use tch::Tensor;

use super::{broadcast_shapes, Categorical, DistRef, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// A hidden Markov model with discrete latent states and any observation distribution, its
/// states summed out (Pyro's `DiscreteHMM`).
///
/// Definition: a state `x₋₁ ~ Categorical(initial)`, then for `t = 0..T`
/// `x_t ~ Categorical(transition[t, x_{t-1}])` and `y_t ~ observation[t, x_t]`. The value is
/// `y = (y_0, ..., y_{T-1})`; the density is `p(y) = Σ_x p(x, y)`, computed by a parallel scan of
/// log-space matrix products over time: `O(log T)` sequential steps of `O(T K³)` work, for long
/// sequences without a `markov` loop.
///
/// Parameters: `initial_logits` (`batch + [K]`), `transition_logits` (`batch + [T or 1, K, K]`,
/// rows: from, columns: to), and an observation distribution with batch shape
/// `batch + [T or 1, K]`. Logits are normalized here. Event shape: `[T] + observation event`.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let init = Tensor::from_slice(&[0.0f64, 0.0]);
/// let trans = Tensor::from_slice(&[0.9f64, 0.1, 0.2, 0.8]).log().view([1, 2, 2]);
/// let locs = Tensor::from_slice(&[-1.0f64, 1.0]).view([1, 2]).expand([3, 2], false);
/// let obs = Normal::new(&locs, 1.0)?; // 3 steps, 2 states
/// let hmm = DiscreteHmm::new(&init, &trans, obs.boxed())?;
/// let y = Tensor::from_slice(&[-0.8f64, -1.1, 0.9]);
/// assert_eq!(hmm.event_shape(), &[3]);
/// assert!(hmm.log_prob(&y)?.double_value(&[]) < 0.0);
/// # Ok(()) }
/// ```
///
/// Reference: Pyro's `pyro.distributions.DiscreteHMM`.
#[derive(Debug)]
pub struct DiscreteHmm {
    initial_logits: Tensor,
    transition_logits: Tensor,
    observation: DistRef,
    batch_shape: Vec<i64>,
    event_shape: Vec<i64>,
}

fn invalid(param: &'static str, expected: String) -> Error {
    Error::InvalidParameter {
        dist: "DiscreteHmm",
        param,
        expected,
    }
}

impl DiscreteHmm {
    /// An HMM from its initial and transition logits and its per-state observation distribution.
    pub fn new(
        initial_logits: &Tensor,
        transition_logits: &Tensor,
        observation: DistRef,
    ) -> Result<DiscreteHmm> {
        let is = initial_logits.size();
        let ts = transition_logits.size();
        let os = observation.batch_shape().to_vec();
        let k = *is
            .last()
            .ok_or_else(|| invalid("initial_logits", "at least one dim (the states)".into()))?;
        if ts.len() < 3 || ts[ts.len() - 1] != k || ts[ts.len() - 2] != k {
            return Err(invalid(
                "transition_logits",
                format!("shape batch + [T, {k}, {k}], got {ts:?}"),
            ));
        }
        if os.len() < 2 || os[os.len() - 1] != k {
            return Err(invalid(
                "observation",
                format!("batch shape batch + [T, {k}], got {os:?}"),
            ));
        }
        let (tt, ot) = (ts[ts.len() - 3], os[os.len() - 2]);
        if tt != ot && tt != 1 && ot != 1 {
            return Err(invalid(
                "observation",
                format!("{ot} time steps, but transition_logits has {tt}"),
            ));
        }
        let batch_shape = broadcast_shapes(
            &broadcast_shapes(&is[..is.len() - 1], &ts[..ts.len() - 3])?,
            &os[..os.len() - 2],
        )?;
        let mut event_shape = vec![tt.max(ot)];
        event_shape.extend_from_slice(observation.event_shape());
        Ok(DiscreteHmm {
            initial_logits: initial_logits.f_sub(&initial_logits.f_logsumexp([-1], true)?)?,
            transition_logits: transition_logits
                .f_sub(&transition_logits.f_logsumexp([-1], true)?)?,
            observation,
            batch_shape,
            event_shape,
        })
    }

    fn num_steps(&self) -> i64 {
        self.event_shape[0]
    }
}

/// `log(exp(x) @ exp(y))` for batches of square matrices, by broadcasting (it compiles).
fn log_matmul_exp(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(x.f_unsqueeze(-1)?
        .f_add(&y.f_unsqueeze(-3)?)?
        .f_logsumexp([-2], false)?)
}

/// The log-space product of the matrices along dim -3, as a balanced tree.
fn sequential_log_matmul_exp(logits: &Tensor) -> Result<Tensor> {
    let mut logits = logits.shallow_clone();
    loop {
        let size = logits.size();
        let n = size.len();
        let time = size[n - 3];
        if time <= 1 {
            return Ok(logits.f_squeeze_dim(-3)?);
        }
        let even = time / 2 * 2;
        let mut pairs = size.clone();
        pairs.splice(n - 3..n - 2, [even / 2, 2]);
        let xy = logits.f_narrow(-3, 0, even)?.f_reshape(pairs.as_slice())?;
        let mut next = log_matmul_exp(&xy.f_select(-3, 0)?, &xy.f_select(-3, 1)?)?;
        if time > even {
            next = Tensor::f_cat(&[next, logits.f_narrow(-3, time - 1, 1)?], -3)?;
        }
        logits = next;
    }
}

impl Distribution for DiscreteHmm {
    fn name(&self) -> &'static str {
        "DiscreteHmm"
    }
    fn batch_shape(&self) -> &[i64] {
        &self.batch_shape
    }
    fn event_shape(&self) -> &[i64] {
        &self.event_shape
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(self.observation.support()), 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        let t_max = self.num_steps();
        let k = self.initial_logits.size().last().copied().unwrap_or(1);
        let mut obs_batch = self.batch_shape.clone();
        obs_batch.extend([t_max, k]);
        // Every state's observation at every step, then the path picks one per step.
        let ys = self.observation.expand(&obs_batch)?.sample(sample_shape)?;
        let ev = self.observation.event_dim();
        let mut x = Categorical::from_logits(&self.initial_logits)?.sample(sample_shape)?;
        let mut out = Vec::with_capacity(t_max as usize);
        let tt = self.transition_logits.size()[self.transition_logits.dim() - 3];
        for t in 0..t_max {
            let trans = self
                .transition_logits
                .f_select(-3, if tt == 1 { 0 } else { t })?;
            let rows = crate::ops::vindex(&trans, &[Some(&x), None])?;
            x = Categorical::from_logits(&rows)?.sample(&[])?;
            let y_t = ys.f_select(-2 - ev as i64, t)?; // sample + batch + [K] + event
            let mut idx = x.f_unsqueeze(-1)?;
            for _ in 0..ev {
                idx = idx.f_unsqueeze(-1)?;
            }
            let mut shape = y_t.size();
            let n = shape.len();
            shape[n - 1 - ev] = 1;
            let idx = idx.f_expand(shape.as_slice(), false)?;
            out.push(
                y_t.f_gather(-1 - ev as i64, &idx, false)?
                    .f_squeeze_dim(-1 - ev as i64)?,
            );
        }
        Ok(Tensor::f_stack(&out, -1 - ev as i64)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let ev = self.observation.event_dim() as i64;
        // Each step's observation under each state: [..., T, K].
        let obs = self.observation.log_prob(&value.f_unsqueeze(-1 - ev)?)?;
        let logits = self.transition_logits.f_add(&obs.f_unsqueeze(-2)?)?;
        let paths = sequential_log_matmul_exp(&logits)?; // [..., K (x₋₁), K (x_T-1)]
        Ok(self
            .initial_logits
            .f_add(&paths.f_logsumexp([-1], false)?)?
            .f_logsumexp([-1], false)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        let k = self.initial_logits.size().last().copied().unwrap_or(1);
        let tt = self.transition_logits.size()[self.transition_logits.dim() - 3];
        let mut is = batch_shape.to_vec();
        is.push(k);
        let mut ts = batch_shape.to_vec();
        ts.extend([tt, k, k]);
        let ob = self.observation.batch_shape();
        let mut os = batch_shape.to_vec();
        os.extend_from_slice(&ob[ob.len() - 2..]);
        Ok(Rc::new(DiscreteHmm::new(
            &self.initial_logits.f_expand(is.as_slice(), false)?,
            &self.transition_logits.f_expand(ts.as_slice(), false)?,
            self.observation.expand(&os)?,
        )?))
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributions::{DistributionExt, Normal};
    use tch::Kind;

    /// `log p(y)` by summing over every state path.
    #[test]
    fn log_prob_equals_the_sum_over_paths() -> Result<()> {
        let init = Tensor::from_slice(&[0.3f64, -0.2, 0.1]);
        let trans = Tensor::from_slice(&[0.5f64, -0.3, 0.1, -0.2, 0.7, 0.0, 0.2, 0.1, -0.4])
            .view([1, 3, 3]);
        let locs = Tensor::from_slice(&[-1.0f64, 0.2, 1.6])
            .view([1, 3])
            .expand([5, 3], false);
        let hmm = DiscreteHmm::new(&init, &trans, Normal::new(&locs, 1.0)?.boxed())?;
        let y = [-0.8f64, 0.1, 1.9, 1.2, -0.3];
        let li = init.log_softmax(-1, Kind::Double);
        let lt = trans.squeeze_dim(0).log_softmax(-1, Kind::Double);
        let ln = |x: f64, m: f64| -0.5 * (x - m).powi(2) - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let loc = [-1.0, 0.2, 1.6];
        let mut terms = Vec::new();
        for code in 0..3i64.pow(6) {
            let path: Vec<i64> = (0..6).map(|i| (code / 3i64.pow(i)) % 3).collect();
            let mut s = li.double_value(&[path[0]]);
            for t in 0..5 {
                s += lt.double_value(&[path[t], path[t + 1]]) + ln(y[t], loc[path[t + 1] as usize]);
            }
            terms.push(s);
        }
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let want = m + terms.iter().map(|s| (s - m).exp()).sum::<f64>().ln();
        let got = hmm.log_prob(&Tensor::from_slice(&y))?.double_value(&[]);
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
        // Samples have the event shape, and a batch of them too.
        assert_eq!(hmm.sample(&[])?.size(), vec![5]);
        assert_eq!(hmm.sample(&[4])?.size(), vec![4, 5]);
        Ok(())
    }
}
