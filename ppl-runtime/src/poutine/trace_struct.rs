//! `Trace` and `Site`: the record of one run of a program.

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use super::runtime::{CondIndepFrame, InferConfig, Msg, SiteKind};
use crate::distributions::DistRef;
use crate::error::{Error, Result, ResultExt};

/// One recorded site.
#[derive(Debug)]
pub struct Site {
    /// The site's name.
    pub name: String,
    /// Sample or param.
    pub kind: SiteKind,
    /// The distribution of a sample site.
    pub dist: Option<DistRef>,
    /// The value the site took.
    pub value: Tensor,
    /// Whether the value was observed.
    pub is_observed: bool,
    /// Log-density multiplier.
    pub scale: f64,
    /// Log-density mask.
    pub mask: Option<Tensor>,
    /// Plates the site was inside, innermost last.
    pub cond_indep_stack: Vec<CondIndepFrame>,
    /// Inference settings.
    pub infer: InferConfig,
    /// `log_prob` of the value, scaled and masked, with the batch shape (filled by
    /// [`Trace::compute_log_prob`]).
    pub log_prob: Option<Tensor>,
    /// The unscaled, unmasked log-density (filled with `log_prob`).
    pub unscaled_log_prob: Option<Tensor>,
}

impl Clone for Site {
    fn clone(&self) -> Self {
        Site {
            name: self.name.clone(),
            kind: self.kind,
            dist: self.dist.clone(),
            value: self.value.shallow_clone(),
            is_observed: self.is_observed,
            scale: self.scale,
            mask: self.mask.as_ref().map(Tensor::shallow_clone),
            cond_indep_stack: self.cond_indep_stack.clone(),
            infer: self.infer.clone(),
            log_prob: self.log_prob.as_ref().map(Tensor::shallow_clone),
            unscaled_log_prob: self.unscaled_log_prob.as_ref().map(Tensor::shallow_clone),
        }
    }
}

impl Site {
    pub(crate) fn from_msg(msg: &Msg) -> Result<Site> {
        let value = msg
            .value
            .as_ref()
            .ok_or_else(|| Error::MissingSite {
                site: msg.name.clone(),
                message: "the site has no value after all handlers ran".into(),
            })?
            .shallow_clone();
        Ok(Site {
            name: msg.name.clone(),
            kind: msg.kind,
            dist: msg.dist.clone(),
            value,
            is_observed: msg.is_observed,
            scale: msg.scale,
            mask: msg.mask.as_ref().map(Tensor::shallow_clone),
            cond_indep_stack: msg.cond_indep_stack.clone(),
            infer: msg.infer.clone(),
            log_prob: None,
            unscaled_log_prob: None,
        })
    }

    /// Whether this is a sample site whose log-density counts (not a subsample-index, deterministic
    /// or intervened site).
    pub fn is_scored(&self) -> bool {
        self.kind == SiteKind::Sample
            && !self.infer.is_subsample
            && !self.infer.is_deterministic
            && !self.infer.do_not_score
    }

    /// Whether this is a latent (unobserved, scored) sample site.
    pub fn is_latent(&self) -> bool {
        self.is_scored() && !self.is_observed
    }

    /// The distribution (an error for param sites).
    pub fn dist(&self) -> Result<&DistRef> {
        self.dist.as_ref().ok_or_else(|| Error::InvalidSite {
            site: self.name.clone(),
            message: "a param site has no distribution".into(),
        })
    }

    /// Computes (if needed) and returns the scaled, masked log-density with the batch shape.
    pub fn compute_log_prob(&mut self) -> Result<&Tensor> {
        if self.log_prob.is_none() {
            let raw = self.dist()?.log_prob(&self.value).at_site(&self.name)?;
            let lp = scale_and_mask(&raw, self.scale, self.mask.as_ref()).at_site(&self.name)?;
            self.unscaled_log_prob = Some(raw);
            self.log_prob = Some(lp);
        }
        self.log_prob
            .as_ref()
            .ok_or_else(|| Error::NonFinite(self.name.clone()))
    }

    /// The score function of a score-function (REINFORCE) gradient term: the log-density
    /// *unscaled and unmasked* (Pyro's `ScoreParts.score_function`). The data-multiplicity
    /// scale of a subsampling plate belongs to the cost it multiplies, which already carries
    /// it; scaling both would weight score terms by `scale²` where the pathwise ones get `scale`.
    pub fn score_function(&mut self) -> Result<Tensor> {
        self.compute_log_prob()?;
        self.unscaled_log_prob
            .as_ref()
            .map(Tensor::shallow_clone)
            .ok_or_else(|| Error::NonFinite(self.name.clone()))
    }

    /// Whether this is a latent site whose distribution has no reparameterized sampler, so
    /// that gradients reach its parameters only through score-function terms.
    pub fn is_non_reparam(&self) -> bool {
        self.is_latent() && !self.dist.as_ref().is_some_and(|d| d.has_rsample())
    }
}

/// `log_prob * scale`, zeroed where `mask` is false.
pub fn scale_and_mask(lp: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let lp = match mask {
        None => lp.shallow_clone(),
        Some(m) => {
            let zero = lp.f_zeros_like()?;
            lp.f_where_self(&m.f_to_kind(Kind::Bool)?, &zero)?
        }
    };
    if scale == 1.0 {
        Ok(lp)
    } else {
        Ok(lp.f_mul_scalar(scale)?)
    }
}

/// The record of one run: sites in execution order.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    sites: IndexMap<String, Site>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        Trace::default()
    }

    /// Adds a site; a name already present is an error.
    pub fn add(&mut self, site: Site) -> Result<()> {
        if let Some(old) = self.sites.get(&site.name) {
            // A param read twice is the same param: keep the first.
            if old.kind == SiteKind::Param && site.kind == SiteKind::Param {
                return Ok(());
            }
            return Err(Error::DuplicateSite {
                site: site.name.clone(),
            });
        }
        self.sites.insert(site.name.clone(), site);
        Ok(())
    }

    /// The site called `name`.
    pub fn get(&self, name: &str) -> Option<&Site> {
        self.sites.get(name)
    }

    /// The site called `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Site> {
        self.sites.get_mut(name)
    }

    /// The site called `name`, or an error naming it.
    pub fn site(&self, name: &str) -> Result<&Site> {
        self.get(name).ok_or_else(|| Error::MissingSite {
            site: name.to_string(),
            message: "not in the trace".into(),
        })
    }

    /// The value of site `name`.
    pub fn value(&self, name: &str) -> Result<&Tensor> {
        Ok(&self.site(name)?.value)
    }

    /// Whether the trace has a site called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.sites.contains_key(name)
    }

    /// Sites in execution order.
    pub fn iter(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// Sites in execution order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Site> {
        self.sites.values_mut()
    }

    /// Site names in execution order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sites.keys().map(String::as_str)
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether the trace has no sites.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// Removes a site.
    pub fn remove(&mut self, name: &str) -> Option<Site> {
        self.sites.shift_remove(name)
    }

    /// Latent (unobserved, scored) sample sites.
    pub fn stochastic_nodes(&self) -> impl Iterator<Item = &Site> {
        self.iter().filter(|s| s.is_latent())
    }

    /// Observed sample sites.
    pub fn observation_nodes(&self) -> impl Iterator<Item = &Site> {
        self.iter().filter(|s| s.is_scored() && s.is_observed)
    }

    /// Param sites.
    pub fn param_nodes(&self) -> impl Iterator<Item = &Site> {
        self.iter().filter(|s| s.kind == SiteKind::Param)
    }
    /// A table of every site's shapes, as Pyro's `Trace.format_shapes()`: for each param and
    /// sample site its kind, the distribution's batch and event shapes, the value's shape, and the
    /// plates it is in (name, size and dim; `*` marks a subsampled plate). The first thing to
    /// print when shapes go wrong.
    ///
    /// ```
    /// use ppl::prelude::*;
    /// # fn main() -> ppl::Result<()> {
    /// let (_, tr) = poutine::trace(|| {
    ///     let loc = ppl::sample("loc", Normal::new(0.0, 1.0)?, None)?;
    ///     let _p = Plate::new("data", 3).enter()?;
    ///     ppl::sample("x", Normal::new(&loc, 1.0)?, Some(Tensor::zeros([3], (Kind::Float, Device::Cpu))))
    /// })?;
    /// let table = tr.format_shapes();
    /// assert!(table.lines().any(|l| l.starts_with("x ") && l.contains("data(3)@-1")));
    /// println!("{table}");
    /// # Ok(()) }
    /// ```
    pub fn format_shapes(&self) -> String {
        let mut rows = vec![[
            "site".to_string(),
            "kind".into(),
            "batch".into(),
            "event".into(),
            "value".into(),
            "plates".into(),
        ]];
        for s in self.iter() {
            let kind = match (s.kind, s.is_observed) {
                (SiteKind::Param, _) => "param",
                (SiteKind::Sample, true) => "observed",
                (SiteKind::Sample, false) => "sample",
            };
            let (batch, event) = match &s.dist {
                Some(d) => (
                    format!("{:?}", d.batch_shape()),
                    format!("{:?}", d.event_shape()),
                ),
                None => (String::new(), String::new()),
            };
            let plates: Vec<String> = s
                .cond_indep_stack
                .iter()
                .map(|f| {
                    let dim = f.dim.map_or("seq".to_string(), |d| d.to_string());
                    let sub = if f.size != f.full_size { "*" } else { "" };
                    format!("{}({}{sub})@{dim}", f.name, f.size)
                })
                .collect();
            rows.push([
                s.name.clone(),
                kind.into(),
                batch,
                event,
                format!("{:?}", s.value.size()),
                plates.join(" "),
            ]);
        }
        let mut widths = [0usize; 6];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// How many vectorized plates deep the trace's sites go: `-(deepest plate dim)` (Pyro's
    /// `_guess_max_plate_nesting`), 0 without plates.
    pub fn plate_nesting(&self) -> usize {
        let deepest = self
            .iter()
            .flat_map(|s| s.cond_indep_stack.iter().filter_map(|f| f.dim))
            .min()
            .unwrap_or(0);
        (-deepest) as usize
    }

    /// Computes the log-density of every scored sample site.
    pub fn compute_log_prob(&mut self) -> Result<()> {
        for s in self.sites.values_mut().filter(|s| s.is_scored()) {
            s.compute_log_prob()?;
        }
        Ok(())
    }

    /// The sum of all scored sites' scaled, masked log-densities, a scalar tensor.
    pub fn log_prob_sum(&mut self) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for s in self.sites.values_mut().filter(|s| s.is_scored()) {
            let lp = s.compute_log_prob()?.f_sum(None::<Kind>)?;
            total = Some(match total {
                None => lp,
                Some(t) => t.f_add(&lp)?,
            });
        }
        match total {
            Some(t) => Ok(t),
            None => Ok(Tensor::f_zeros([], (Kind::Float, tch::Device::Cpu))?),
        }
    }

    /// Errors naming every scored site whose log-density is not finite.
    pub fn check_finite(&mut self) -> Result<()> {
        let mut bad = Vec::new();
        for s in self.sites.values_mut().filter(|s| s.is_scored()) {
            let lp = s.compute_log_prob()?;
            let finite = lp.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
            if !finite {
                bad.push(s.name.clone());
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::NonFinite(format!(
                "log-density not finite at site(s) {}",
                bad.join(", ")
            )))
        }
    }
}
