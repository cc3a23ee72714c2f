//! What enumeration-based inference shares: reading sites' log-densities as named factors
//! (Pyro's `Trace.pack_tensors`), and summing a model trace's enumerated variables out (Pyro's
//! `TraceEnum_ELBO._compute_model_factors`).

use std::collections::BTreeSet;
use std::rc::Rc;

use tch::Tensor;

use crate::error::{Error, Result, ResultExt};
use crate::ops::contract::{contract_tensor_tree, Factor, Ordinal, Ring, TapeEntry, Var};
use crate::poutine::{scale_and_mask, Site, Trace};

/// Plate names and their indices (bits of an [`Ordinal`]).
#[derive(Default, Debug)]
pub(crate) struct PlateTable {
    names: Vec<Rc<str>>,
}

impl PlateTable {
    fn index(&mut self, name: &Rc<str>) -> Result<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i);
        }
        if self.names.len() == 64 {
            return Err(Error::Plate {
                plate: name.to_string(),
                message: "enumeration supports at most 64 distinct vectorized plates".into(),
            });
        }
        self.names.push(name.clone());
        Ok(self.names.len() - 1)
    }

    /// The variable of the plate called `name`, if it has been seen.
    pub fn var_of(&self, name: &Rc<str>) -> Option<Var> {
        self.names.iter().position(|n| n == name).map(Var::Plate)
    }

    /// The ordinal of a site: the set of its vectorized plates.
    pub fn ordinal(&mut self, site: &Site) -> Result<Ordinal> {
        let mut o = 0;
        for f in site.cond_indep_stack.iter().filter(|f| f.vectorized()) {
            o |= 1u64 << self.index(&f.name)?;
        }
        Ok(o)
    }

    /// Reads `t`, a log-density of `site` with its batch shape, as a factor: each dim of size
    /// > 1 must be one of the site's plates or one of its enumeration dims.
    pub fn pack(&mut self, t: &Tensor, site: &Site) -> Result<Factor> {
        let shape = t.size();
        let n = shape.len() as i64;
        // A site with no enumerated variable in its log-density may have batch dims outside
        // any plate (a Dirichlet with batch shape [K]): independent terms, summed here.
        let has_enum = shape.iter().enumerate().any(|(i, &s)| {
            let dim = i as i64 - n;
            s > 1
                && site.infer.dim_to_id.iter().any(|(d, _)| *d == dim)
                && !site.cond_indep_stack.iter().any(|f| f.dim == Some(dim))
        });
        let mut undeclared = Vec::new();
        let mut vars = Vec::new();
        let mut sizes = Vec::new();
        for (i, &s) in shape.iter().enumerate() {
            let dim = i as i64 - n;
            let plate = site.cond_indep_stack.iter().find(|f| f.dim == Some(dim));
            let var = site.infer.dim_to_id.iter().find(|(d, _)| *d == dim);
            if let (Some(p), Some(_)) = (plate, var) {
                return Err(Error::Enumeration {
                    site: site.name.clone(),
                    message: format!(
                        "enumeration dim {dim} is also the dim of plate `{}`: max_plate_nesting \
                         is too small; set it to at least {}",
                        p.name, -dim
                    ),
                });
            }
            if s == 1 {
                continue;
            }
            let v = match (plate, var) {
                (Some(p), _) => Var::Plate(self.index(&p.name)?),
                (None, Some((_, id))) => Var::Enum(*id),
                (None, None) if !has_enum => {
                    undeclared.push(i as i64);
                    continue;
                }
                (None, None) => {
                    return Err(Error::Enumeration {
                        site: site.name.clone(),
                        message: format!(
                            "its log-density has shape {shape:?}, with size {s} at dim {dim}, \
                             which is neither a plate of the site nor an enumeration dim in its \
                             scope; put the site in a plate of that size, or raise \
                             max_plate_nesting so that enumeration dims stay left of every plate"
                        ),
                    })
                }
            };
            vars.push(v);
            sizes.push(s);
        }
        let t = if undeclared.is_empty() {
            t.shallow_clone()
        } else {
            t.f_sum_dim_intlist(undeclared.as_slice(), true, None::<tch::Kind>)
                .at_site(&site.name)?
        };
        Ok(Factor {
            tensor: t.f_reshape(sizes.as_slice()).at_site(&site.name)?,
            vars,
        })
    }
}

/// The enumeration variable ids a site's log-density may carry.
fn site_ids(site: &Site) -> impl Iterator<Item = usize> + '_ {
    site.infer.dim_to_id.iter().map(|(_, id)| *id)
}

/// A model site whose values were enumerated in the model (not replayed from the guide).
fn is_model_enumerated(site: &Site, guide: Option<&Trace>) -> bool {
    site.is_latent()
        && site.infer.enum_dim.is_some()
        && guide.is_none_or(|g| !g.contains(&site.name))
}

/// A model trace's log-density terms with the model-enumerated variables summed out.
pub(crate) struct ModelFactors {
    /// Terms that depend on no model-enumerated variable (scaled, masked log-densities).
    pub costs: Vec<(Ordinal, Factor)>,
    /// The contracted terms, scaled by the common scale of the enumerated sites.
    pub contracted: Vec<(Ordinal, Factor)>,
}

/// Sums the model-enumerated variables out of `model`'s log-density terms. `guide` (for SVI)
/// holds the sites the guide sampled; their variables (guide-side enumeration) are kept.
/// With a `tape`, each eliminated variable's factor is recorded (for `infer_discrete`).
pub(crate) fn model_factors(
    model: &mut Trace,
    guide: Option<&Trace>,
    plates: &mut PlateTable,
    ring: Ring,
    tape: Option<&mut Vec<TapeEntry>>,
) -> Result<ModelFactors> {
    model.compute_log_prob()?;
    // The variables to sum: those of model-enumerated sites, less any the guide enumerated.
    let mut sum_ids: BTreeSet<usize> = BTreeSet::new();
    let mut kept: BTreeSet<usize> = BTreeSet::new();
    for s in model.iter().filter(|s| s.is_scored()) {
        if is_model_enumerated(s, guide) {
            if let Some(own) = s
                .infer
                .enum_dim
                .and_then(|d| s.infer.dim_to_id.iter().find(|(d2, _)| *d2 == d))
            {
                sum_ids.insert(own.1);
            }
        }
    }
    if let Some(g) = guide {
        for s in g.iter() {
            kept.extend(site_ids(s));
        }
    }
    let sum_ids: BTreeSet<usize> = sum_ids.difference(&kept).copied().collect();
    let sum_vars: BTreeSet<Var> = sum_ids.iter().map(|i| Var::Enum(*i)).collect();

    let mut costs = Vec::new();
    let mut log_factors = Vec::new();
    let mut scale: Option<(f64, String)> = None;
    for s in model.iter().filter(|s| s.is_scored()) {
        let ord = plates.ordinal(s)?;
        let lp = s
            .log_prob
            .as_ref()
            .ok_or_else(|| Error::NonFinite(s.name.clone()))?;
        let packed = plates.pack(lp, s)?;
        let depends =
            is_model_enumerated(s, guide) || packed.vars.iter().any(|v| sum_vars.contains(v));
        if !depends {
            costs.push((ord, packed));
            continue;
        }
        // The mask goes inside the log-sum-exp, the scale outside it (one for all).
        match &scale {
            None => scale = Some((s.scale, s.name.clone())),
            Some((c, first)) if (c - s.scale).abs() > 1e-12 * c.abs().max(1.0) => {
                return Err(Error::Enumeration {
                    site: s.name.clone(),
                    message: format!(
                        "its log-density is scaled by {} but that of `{first}`, in the same sum \
                         over enumerated values, by {c}: the sites of one enumeration must \
                         share their scale (the same subsampling plates and poutine::scale)",
                        s.scale
                    ),
                });
            }
            Some(_) => {}
        }
        let raw = s
            .unscaled_log_prob
            .as_ref()
            .ok_or_else(|| Error::NonFinite(s.name.clone()))?;
        let masked = scale_and_mask(raw, 1.0, s.mask.as_ref()).at_site(&s.name)?;
        log_factors.push((ord, plates.pack(&masked, s)?));
    }
    let mut contracted = Vec::new();
    if !log_factors.is_empty() {
        let c = scale.map_or(1.0, |(c, _)| c);
        for (o, mut f) in contract_tensor_tree(log_factors, &sum_vars, ring, tape)? {
            if c != 1.0 {
                f.tensor = f.tensor.f_mul_scalar(c)?;
            }
            contracted.push((o, f));
        }
    }
    Ok(ModelFactors { costs, contracted })
}

/// The log joint density of a model trace with every enumerated variable summed out: the
/// potential of HMC/NUTS with discrete sites.
pub(crate) fn log_joint(model: &mut Trace) -> Result<Tensor> {
    let mut plates = PlateTable::default();
    let mf = model_factors(model, None, &mut plates, Ring::Log, None)?;
    sum_scalars(
        mf.costs
            .iter()
            .chain(mf.contracted.iter())
            .map(|(_, f)| f.total()),
    )
}

/// The sum of scalar tensors (a float zero on the CPU when there are none).
pub(crate) fn sum_scalars(terms: impl Iterator<Item = Result<Tensor>>) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for t in terms {
        let t = t?;
        total = Some(match total {
            None => t,
            Some(a) => a.f_add(&t)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Ok(Tensor::f_zeros([], (tch::Kind::Float, tch::Device::Cpu))?),
    }
}

/// Errors naming the first latent site of `tr` that is marked for enumeration but was not
/// enumerated: the loss or algorithm running it cannot sum it out.
pub(crate) fn check_not_marked(tr: &Trace, algorithm: &str) -> Result<()> {
    for s in tr.iter().filter(|s| s.is_latent()) {
        let Some(how) = s.infer.enumerate else {
            continue;
        };
        if s.infer.enum_dim.is_some() {
            continue;
        }
        let message = match how {
            crate::poutine::Enumerate::Sequential => format!(
                "marked `enumerate = sequential`, which {algorithm} does not do; ppl enumerates in \
                 parallel: mark it `enumerate = parallel` and use TraceEnumElbo"
            ),
            crate::poutine::Enumerate::Parallel => format!(
                "marked `enumerate = parallel`, but {algorithm} cannot sum out enumerated sites \
                 and would only sample it; use TraceEnumElbo (or remove the mark)"
            ),
        };
        return Err(Error::Enumeration {
            site: s.name.clone(),
            message,
        });
    }
    Ok(())
}

/// [`check_not_marked`] for `TraceEnumElbo`: a site marked `enumerate = sequential` is fine in
/// the guide (each of its values had a run of its own) and in the model when the guide chose
/// its value; a model site marked sequential that the guide does not sample, and a site marked
/// parallel that was not enumerated, are errors naming the site.
pub(crate) fn check_enumerated(tr: &Trace, guide: Option<&Trace>) -> Result<()> {
    for s in tr.iter().filter(|s| s.is_latent()) {
        let Some(how) = s.infer.enumerate else {
            continue;
        };
        if s.infer.enum_dim.is_some() {
            continue;
        }
        if guide.is_some_and(|g| g.contains(&s.name)) {
            continue; // the guide chose its value
        }
        let message = match (how, guide) {
            (crate::poutine::Enumerate::Sequential, None) => continue,
            (crate::poutine::Enumerate::Sequential, Some(_)) => {
                "is marked `enumerate = sequential` in the model, but sequential enumeration runs \
                 the guide once per value of its own sites (Pyro's iter_discrete_traces); the model \
                 sums its discrete sites out in parallel: mark it `enumerate = parallel`, or \
                 sample it in the guide with `enumerate = sequential`"
                    .to_string()
            }
            (crate::poutine::Enumerate::Parallel, _) => {
                "is marked `enumerate = parallel` but was not enumerated (a distribution without \
                 finite support?)"
                    .to_string()
            }
        };
        return Err(Error::Enumeration {
            site: s.name.clone(),
            message,
        });
    }
    Ok(())
}
