//! Plated tensor variable elimination (Pyro's `pyro.ops.contract`; Obermeyer et al. 2019,
//! "Tensor variable elimination for plated factor graphs").
//!
//! A *factor* is a log-space tensor whose dims are named *variables*: enumerated discrete
//! variables (by id) and plates (by index). Every factor lives at an *ordinal*, the set of
//! plates it is inside (a bitset). Summing a variable out is a log-sum-exp over its dim; a plate
//! is a product, i.e. a sum of logs over its dim. The contraction eliminates the variables of
//! the most deeply plated factors first, multiplies out the plates they no longer need, and hands
//! the result to the enclosing ordinal, until every requested variable is gone. Within one
//! ordinal, variables go one at a time, cheapest first, so chains cost `O(T K²)`.
//!
//! The same pass serves [`TraceEnumElbo`](crate::infer::TraceEnumElbo) (sum), the potential of
//! HMC/NUTS with discrete sites (sum) and `infer_discrete` (sum or max, with a tape of each
//! eliminated variable's factor for the backward sampling pass).

use std::collections::{BTreeSet, HashMap};

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// A set of plates, as bits of plate indices.
pub(crate) type Ordinal = u64;

/// A named dim of a factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Var {
    /// An enumerated variable, by its id (never reused, unlike its dim).
    Enum(usize),
    /// A plate, by its index in the plate table.
    Plate(usize),
}

/// A log-space tensor with one named variable per dim.
#[derive(Debug)]
pub(crate) struct Factor {
    pub tensor: Tensor,
    pub vars: Vec<Var>,
}

impl Clone for Factor {
    fn clone(&self) -> Self {
        Factor {
            tensor: self.tensor.shallow_clone(),
            vars: self.vars.clone(),
        }
    }
}

impl Factor {
    /// The size of `v`'s dim, if the factor has it.
    pub fn size_of(&self, v: Var) -> Option<i64> {
        let i = self.vars.iter().position(|x| *x == v)?;
        self.tensor.size().get(i).copied()
    }

    /// The tensor permuted into the order of `vars` (which must hold all of the factor's
    /// variables), with size-1 dims for the variables it lacks.
    pub fn align(&self, vars: &[Var]) -> Result<Tensor> {
        if self.vars.as_slice() == vars {
            return Ok(self.tensor.shallow_clone());
        }
        let mut own: Vec<(usize, i64)> = Vec::with_capacity(self.vars.len());
        for (d, v) in self.vars.iter().enumerate() {
            let pos = vars
                .iter()
                .position(|x| x == v)
                .ok_or_else(|| Error::Shape(format!("contract: {v:?} missing from {vars:?}")))?;
            own.push((pos, d as i64));
        }
        own.sort_unstable();
        let perm: Vec<i64> = own.iter().map(|(_, d)| *d).collect();
        let t = if perm.iter().enumerate().all(|(i, d)| i as i64 == *d) {
            self.tensor.shallow_clone()
        } else {
            self.tensor.f_permute(perm.as_slice())?
        };
        let sizes = self.tensor.size();
        let mut shape = vec![1i64; vars.len()];
        for (pos, d) in &own {
            shape[*pos] = sizes[*d as usize];
        }
        Ok(t.f_reshape(shape.as_slice())?)
    }

    /// The dim of `v`.
    fn dim_of(&self, v: Var) -> Result<i64> {
        self.vars
            .iter()
            .position(|x| *x == v)
            .map(|d| d as i64)
            .ok_or_else(|| Error::Shape(format!("contract: {v:?} is not a dim of this factor")))
    }

    /// Removes `v` by log-sum-exp (or max).
    fn eliminate(&self, v: Var, ring: Ring) -> Result<Factor> {
        let d = self.dim_of(v)?;
        let tensor = match ring {
            Ring::Log => self.tensor.f_logsumexp([d], false)?,
            Ring::Max => self.tensor.f_amax([d], false)?,
        };
        let mut vars = self.vars.clone();
        vars.remove(d as usize);
        Ok(Factor { tensor, vars })
    }

    /// Multiplies out plates (sums the log-factor over their dims).
    pub fn product_over(&self, plates: &[Var]) -> Result<Factor> {
        let dims: Vec<i64> = plates
            .iter()
            .filter_map(|p| self.vars.iter().position(|x| x == p).map(|d| d as i64))
            .collect();
        if dims.is_empty() {
            return Ok(self.clone());
        }
        let tensor = self
            .tensor
            .f_sum_dim_intlist(dims.as_slice(), false, None::<Kind>)?;
        let vars = self
            .vars
            .iter()
            .enumerate()
            .filter(|(d, _)| !dims.contains(&(*d as i64)))
            .map(|(_, v)| *v)
            .collect();
        Ok(Factor { tensor, vars })
    }

    /// The sum of the whole tensor.
    pub fn total(&self) -> Result<Tensor> {
        Ok(self.tensor.f_sum(None::<Kind>)?)
    }
}

/// Sum-product (log-sum-exp) or max-product contraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ring {
    /// Marginalize: log-sum-exp.
    Log,
    /// Maximize (MAP): max.
    Max,
}

/// One eliminated variable and the factor it was eliminated from (for backward sampling).
pub(crate) struct TapeEntry {
    pub var: Var,
    pub factor: Factor,
}

/// The product of factors (a sum in log space), over the union of their variables.
pub(crate) fn combine(factors: Vec<Factor>) -> Result<Factor> {
    if factors.len() == 1 {
        if let Some(f) = factors.into_iter().next() {
            return Ok(f);
        }
        return Err(Error::Shape("contract: nothing to combine".into()));
    }
    let mut vars: Vec<Var> = Vec::new();
    for f in &factors {
        for v in &f.vars {
            if !vars.contains(v) {
                vars.push(*v);
            }
        }
    }
    let mut acc: Option<Tensor> = None;
    for f in &factors {
        let t = f.align(&vars)?;
        acc = Some(match acc {
            None => t,
            Some(a) => a.f_add(&t)?,
        });
    }
    let tensor = acc.ok_or_else(|| Error::Shape("contract: nothing to combine".into()))?;
    // A variable every factor broadcasts over cannot happen: each came with its size.
    Ok(Factor { tensor, vars })
}

/// Variable elimination within one ordinal: removes `elim` one variable at a time, cheapest
/// first (the size of the factor it creates), then combines what is left into one factor.
/// Each variable keeps the list of live factors that hold it, so a chain of `T` variables
/// costs `O(T)` bookkeeping per elimination, not `O(T²)`.
fn eliminate_all(
    factors: Vec<Factor>,
    elim: &[Var],
    ring: Ring,
    mut tape: Option<&mut Vec<TapeEntry>>,
) -> Result<Factor> {
    let mut live: Vec<Option<Factor>> = factors.into_iter().map(Some).collect();
    let mut holders: HashMap<Var, Vec<usize>> = HashMap::new();
    for (i, f) in live.iter().enumerate() {
        if let Some(f) = f {
            for v in &f.vars {
                holders.entry(*v).or_default().push(i);
            }
        }
    }
    let mut elim: Vec<Var> = elim.to_vec();
    while !elim.is_empty() {
        let mut best: Option<(f64, usize)> = None;
        for (k, v) in elim.iter().enumerate() {
            let mut union: Vec<(Var, i64)> = Vec::new();
            for &i in holders.get(v).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(f) = &live[i] {
                    for &w in &f.vars {
                        if !union.iter().any(|(u, _)| *u == w) {
                            union.push((w, f.size_of(w).unwrap_or(1)));
                        }
                    }
                }
            }
            let cost: f64 = union.iter().map(|(_, s)| *s as f64).product();
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, k));
            }
        }
        let Some((_, k)) = best else { break };
        let v = elim.remove(k);
        let ids = holders.remove(&v).unwrap_or_default();
        let with: Vec<Factor> = ids.iter().filter_map(|&i| live[i].take()).collect();
        if with.is_empty() {
            continue;
        }
        let joint = combine(with)?;
        let reduced = joint.eliminate(v, ring)?;
        if let Some(t) = tape.as_deref_mut() {
            t.push(TapeEntry {
                var: v,
                factor: joint,
            });
        }
        let id = live.len();
        for w in &reduced.vars {
            let hs = holders.entry(*w).or_default();
            hs.retain(|&i| !ids.contains(&i));
            hs.push(id);
        }
        live.push(Some(reduced));
    }
    let rest: Vec<Factor> = live.into_iter().flatten().collect();
    if rest.is_empty() {
        return Err(Error::Shape("contract: nothing left to combine".into()));
    }
    combine(rest)
}

/// Splits factors into groups connected through the variables of `vars`; each group comes with
/// the variables of `vars` it holds.
fn partition(factors: Vec<Factor>, vars: &BTreeSet<Var>) -> Vec<(Vec<Factor>, Vec<Var>)> {
    let mut groups: Vec<(Vec<Factor>, Vec<Var>)> = Vec::new();
    for f in factors {
        let mine: Vec<Var> = f
            .vars
            .iter()
            .filter(|v| vars.contains(v))
            .copied()
            .collect();
        let mut merged: (Vec<Factor>, Vec<Var>) = (vec![f], mine.clone());
        let mut k = 0;
        while k < groups.len() {
            if groups[k].1.iter().any(|v| merged.1.contains(v)) {
                let (fs, vs) = groups.remove(k);
                merged.0.extend(fs);
                for v in vs {
                    if !merged.1.contains(&v) {
                        merged.1.push(v);
                    }
                }
            } else {
                k += 1;
            }
        }
        groups.push(merged);
    }
    groups
}

fn popcount(o: Ordinal) -> u32 {
    o.count_ones()
}

/// Plated factors connected through summed variables, with those variables.
type Component = (Vec<(Ordinal, Factor)>, BTreeSet<Var>);

/// Contracts `sum_vars` out of plated factors (Pyro's `contract_tensor_tree`): returns one factor
/// per connected component, at the smallest ordinal of that component, holding only the
/// variables not summed and that ordinal's plates.
pub(crate) fn contract_tensor_tree(
    terms: Vec<(Ordinal, Factor)>,
    sum_vars: &BTreeSet<Var>,
    ring: Ring,
    mut tape: Option<&mut Vec<TapeEntry>>,
) -> Result<Vec<(Ordinal, Factor)>> {
    // Components by shared summed variables, keeping each factor's ordinal.
    let mut comps: Vec<Component> = Vec::new();
    for (o, f) in terms {
        let mine: BTreeSet<Var> = f
            .vars
            .iter()
            .filter(|v| sum_vars.contains(v))
            .copied()
            .collect();
        let mut merged = (vec![(o, f)], mine);
        let mut k = 0;
        while k < comps.len() {
            if !comps[k].1.is_disjoint(&merged.1) {
                let (fs, vs) = comps.remove(k);
                merged.0.extend(fs);
                merged.1.extend(vs);
            } else {
                k += 1;
            }
        }
        comps.push(merged);
    }
    comps
        .into_iter()
        .map(|(fs, vs)| contract_component(fs, &vs, ring, tape.as_deref_mut()))
        .collect()
}

/// Contracts one connected component down to a single factor at its smallest ordinal.
fn contract_component(
    terms: Vec<(Ordinal, Factor)>,
    sum_vars: &BTreeSet<Var>,
    ring: Ring,
    mut tape: Option<&mut Vec<TapeEntry>>,
) -> Result<(Ordinal, Factor)> {
    // The ordinal of a summed variable: the plates of every factor that holds it.
    let mut var_ord: Vec<(Var, Ordinal)> = Vec::new();
    for (o, f) in &terms {
        for v in f.vars.iter().filter(|v| sum_vars.contains(v)) {
            match var_ord.iter_mut().find(|(w, _)| w == v) {
                Some((_, vo)) => *vo &= *o,
                None => var_ord.push((*v, *o)),
            }
        }
    }
    let ord_of = |v: Var| var_ord.iter().find(|(w, _)| *w == v).map(|(_, o)| *o);
    let min_ord = terms.iter().fold(Ordinal::MAX, |acc, (o, _)| acc & o);
    let mut tree: Vec<(Ordinal, Vec<Factor>)> = Vec::new();
    for (o, f) in terms {
        match tree.iter_mut().find(|(k, _)| *k == o) {
            Some((_, fs)) => fs.push(f),
            None => tree.push((o, vec![f])),
        }
    }
    loop {
        let leaf = tree
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| *o != min_ord)
            .max_by_key(|o| (popcount(*o), *o));
        let Some(leaf) = leaf else {
            let fs: Vec<Factor> = tree.into_iter().flat_map(|(_, fs)| fs).collect();
            let mut elim: Vec<Var> = Vec::new();
            for f in &fs {
                for v in f.vars.iter().filter(|v| sum_vars.contains(v)) {
                    if !elim.contains(v) {
                        elim.push(*v);
                    }
                }
            }
            return Ok((min_ord, eliminate_all(fs, &elim, ring, tape)?));
        };
        let pos = tree.iter().position(|(o, _)| *o == leaf).unwrap_or(0);
        let (_, leaf_terms) = tree.remove(pos);
        let leaf_vars: BTreeSet<Var> = leaf_terms
            .iter()
            .flat_map(|f| f.vars.iter().copied())
            .filter(|v| sum_vars.contains(v) && ord_of(*v) == Some(leaf))
            .collect();
        for (group, vars) in partition(leaf_terms, &leaf_vars) {
            let term = eliminate_all(group, &vars, ring, tape.as_deref_mut())?;
            let parent = term
                .vars
                .iter()
                .filter(|v| sum_vars.contains(v))
                .filter_map(|v| ord_of(*v))
                .fold(None::<Ordinal>, |acc, o| Some(acc.map_or(o, |a| a | o)))
                .unwrap_or(min_ord);
            if parent == leaf {
                return Err(Error::Unsupported(
                    "enumeration: the enumerated variables are not tree-structured in the plates \
                     (a variable is shared by factors in plates that do not nest); each \
                     enumerated site must sit in a sub-plate of the plates of every site that \
                     depends on it"
                        .into(),
                ));
            }
            let gone = leaf & !parent;
            let plates: Vec<Var> = term
                .vars
                .iter()
                .copied()
                .filter(|v| matches!(v, Var::Plate(p) if gone & (1u64 << p) != 0))
                .collect();
            let term = term.product_over(&plates)?;
            match tree.iter_mut().find(|(k, _)| *k == parent) {
                Some((_, fs)) => fs.push(term),
                None => tree.push((parent, vec![term])),
            }
        }
    }
}
