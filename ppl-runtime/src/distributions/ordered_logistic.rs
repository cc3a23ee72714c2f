use tch::Tensor;

use super::{broadcast_args, Arg, Categorical};
use crate::error::{Error, Result};

/// Pyro's `OrderedLogistic`: an ordinal outcome `y ∈ {0, ..., K-1}` with
/// `P(y <= k) = σ(c_k - η)` for a real predictor `η` and increasing cutpoints `c` (`K - 1` of
/// them). It is a [`Categorical`] with those probabilities, as in Pyro.
pub struct OrderedLogistic;

// Pyro's name for a Categorical built from a predictor and cutpoints: `new` builds that.
#[allow(clippy::new_ret_no_self)]
impl OrderedLogistic {
    /// `OrderedLogistic(predictor, cutpoints)`: `predictor` of the batch shape, `cutpoints`
    /// `[.., K - 1]`, increasing along the last dim.
    ///
    /// ```
    /// use ppl::prelude::*;
    /// # fn main() -> ppl::Result<()> {
    /// let d = OrderedLogistic::new(0.0, &Tensor::from_slice(&[-1.0f64, 1.0]))?;
    /// // P(y = 1) = σ(1) - σ(-1).
    /// let p = d.log_prob(&Tensor::from(1i64))?.exp().double_value(&[]);
    /// let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    /// assert!((p - (s(1.0) - s(-1.0))).abs() < 1e-9);
    /// # Ok(()) }
    /// ```
    pub fn new(predictor: impl Into<Arg>, cutpoints: &Tensor) -> Result<Categorical> {
        if cutpoints.dim() == 0 {
            return Err(Error::InvalidParameter {
                dist: "OrderedLogistic",
                param: "cutpoints",
                expected: "a vector of K - 1 increasing cutpoints".into(),
            });
        }
        let [c] = broadcast_args("OrderedLogistic", [cutpoints.into()])?;
        let n = *c.size().last().unwrap_or(&0);
        super::check(
            "OrderedLogistic",
            "cutpoints",
            "increasing along the last dim",
            || {
                if n < 2 {
                    return c.f_eq_tensor(&c)?.f_all();
                }
                c.f_narrow(-1, 1, n - 1)?
                    .f_gt_tensor(&c.f_narrow(-1, 0, n - 1)?)?
                    .f_all()
            },
        )?;
        let eta = match predictor.into() {
            Arg::Tensor(t) => t.f_to_kind(c.kind())?,
            Arg::Scalar(v) => Tensor::f_scalar_tensor(v, (c.kind(), c.device()))?,
        };
        let cum = c.f_sub(&eta.f_unsqueeze(-1)?)?.f_sigmoid()?;
        let k1 = *cum.size().last().unwrap_or(&0);
        let first = cum.f_narrow(-1, 0, 1)?;
        let mid = cum
            .f_narrow(-1, 1, k1 - 1)?
            .f_sub(&cum.f_narrow(-1, 0, k1 - 1)?)?;
        let last = cum.f_narrow(-1, k1 - 1, 1)?.f_neg()?.f_add_scalar(1.0)?;
        let probs = Tensor::f_cat(&[first, mid, last], -1)?;
        // Differences of sigmoids can round to 0 or just below; keep them probabilities.
        let probs = probs.f_clamp_min(0.0)?;
        Categorical::new(probs)
    }
}
