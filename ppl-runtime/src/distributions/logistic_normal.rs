use std::rc::Rc;

use super::{Arg, Distribution, DistributionExt, Normal, TransformedDistribution};
use crate::error::{Error, Result};
use crate::transforms::{StickBreakingTransform, TransformRef};

/// torch's `LogisticNormal`: a normal vector of `K - 1` entries pushed onto the simplex of `K` by
/// stick-breaking, a [`TransformedDistribution`] as in torch.
pub struct LogisticNormal;

// torch's name for a TransformedDistribution of a normal: `new` builds that.
#[allow(clippy::new_ret_no_self)]
impl LogisticNormal {
    /// `LogisticNormal(loc, scale)` with `loc` and `scale` of shape `[.., K - 1]`.
    ///
    /// ```
    /// use ppl::prelude::*;
    /// # fn main() -> ppl::Result<()> {
    /// let d = LogisticNormal::new(&Tensor::zeros([2], (Kind::Double, Device::Cpu)), 1.0)?;
    /// let x = d.sample(&[])?;
    /// assert_eq!(x.size(), vec![3]);
    /// assert!((x.sum(Kind::Double).double_value(&[]) - 1.0).abs() < 1e-9);
    /// # Ok(()) }
    /// ```
    pub fn new(loc: impl Into<Arg>, scale: impl Into<Arg>) -> Result<TransformedDistribution> {
        let base = Normal::new(loc, scale)?;
        if base.batch_shape().is_empty() {
            return Err(Error::InvalidParameter {
                dist: "LogisticNormal",
                param: "loc",
                expected: "a vector of K - 1 entries (the last dim is the event)".into(),
            });
        }
        let t: TransformRef = Rc::new(StickBreakingTransform);
        TransformedDistribution::new(base.to_event(1)?.boxed(), vec![t])
    }
}
