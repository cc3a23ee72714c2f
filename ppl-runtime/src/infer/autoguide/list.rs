//! `AutoGuideList` (Pyro's): one guide made of autoguides over parts of a model.

use super::{AutoGuide, Samples};
use crate::error::{Error, Result};

/// A guide made of guides over disjoint parts of a model (Pyro's `AutoGuideList`): each part is
/// an autoguide built from the model with only its sites exposed
/// (`poutine::BlockMessenger::expose(&["a"]).run(|| model())`), and a run of the list runs every
/// part. A site that two parts both sample is an error naming it and the parts.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::{AutoDelta, AutoGuideList};
/// use ppl::poutine::BlockMessenger;
///
/// #[model]
/// fn model() -> ppl::Result<()> {
///     let a = sample!(Normal::new(0.0, 1.0)?);
///     sample!("b", Normal::new(&a, 1.0)?);
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// clear_param_store();
/// let guide = AutoGuideList::new()
///     .append(AutoDelta::new(|| BlockMessenger::expose(&["a"]).run(model)))
///     .append(AutoNormal::new(|| BlockMessenger::expose(&["b"]).run(model)));
/// let draw = guide.call()?;
/// assert!(draw.contains_key("a") && draw.contains_key("b"));
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct AutoGuideList<'a> {
    parts: Vec<Box<dyn AutoGuide + 'a>>,
}

impl<'a> AutoGuideList<'a> {
    /// No parts yet.
    pub fn new() -> Self {
        AutoGuideList { parts: Vec::new() }
    }

    /// Adds a part (Pyro's `append`).
    pub fn append(mut self, guide: impl AutoGuide + 'a) -> Self {
        self.parts.push(Box::new(guide));
        self
    }

    /// The number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there are no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn merge(&self, f: impl Fn(&dyn AutoGuide) -> Result<Samples>) -> Result<Samples> {
        let mut out = Samples::new();
        let mut owner = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            for (name, v) in f(part.as_ref())? {
                if let Some(&(_, j)) = owner.iter().find(|(n, _)| *n == name) {
                    return Err(Error::Config(format!(
                        "AutoGuideList: parts {j} and {i} both sample the site `{name}`; expose \
                         each site to one part"
                    )));
                }
                owner.push((name.clone(), i));
                out.insert(name, v);
            }
        }
        Ok(out)
    }

    /// Runs every part; returns all their draws.
    pub fn call(&self) -> Result<Samples> {
        self.merge(|g| g.call())
    }

    /// Every part's posterior medians.
    pub fn median(&self) -> Result<Samples> {
        self.merge(|g| g.median())
    }

    /// Every part's posterior quantiles.
    pub fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        self.merge(|g| g.quantiles(qs))
    }
}

impl AutoGuide for AutoGuideList<'_> {
    fn call(&self) -> Result<Samples> {
        AutoGuideList::call(self)
    }
    fn median(&self) -> Result<Samples> {
        AutoGuideList::median(self)
    }
    fn quantiles(&self, qs: &[f64]) -> Result<Samples> {
        AutoGuideList::quantiles(self, qs)
    }
}
