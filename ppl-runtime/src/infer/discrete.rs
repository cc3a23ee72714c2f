//! `infer_discrete` (Pyro's `pyro.infer.infer_discrete`): the posterior of a model's enumerated
//! discrete sites given everything else, as a MAP assignment or as a sample.

use std::collections::HashMap;
use std::rc::Rc;

use tch::{Kind, Tensor};

use crate::error::{Error, Result, ResultExt};
use crate::infer::enumerate::{model_factors, PlateTable};
use crate::ops::contract::{Factor, Ring, TapeEntry, Var};
use crate::poutine::{self, EnumMessenger, Handler, Site, Trace};

/// Runs `model` with its enumerated discrete sites (those marked `enumerate = parallel`, e.g.
/// by [`config_enumerate`](crate::poutine::config_enumerate)) set from their posterior given
/// the model's other sites, and returns what the model returns.
///
/// - `temperature = 0`: the joint MAP assignment (max-product, Viterbi for an HMM).
/// - `temperature = 1`: one joint posterior sample (forward filtering, backward sampling).
///
/// The model runs twice: once with the discrete sites enumerated in dims `first_available_dim`
/// (`-max_plate_nesting - 1`) and further left, which the same contraction as
/// [`TraceEnumElbo`](crate::infer::TraceEnumElbo) eliminates while it records each variable's
/// factor; then, after the variables are assigned in reverse order of elimination, once more
/// with every site replayed from the first run and the discrete sites at their assigned values.
/// Wrap the call in [`poutine::trace`] to read them. Continuous latent sites keep the value
/// they drew in the first run: replay them from a guide's trace (or condition them) to fix them.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::infer_discrete;
///
/// #[model]
/// fn model(data: &Tensor) -> ppl::Result<()> {
///     let locs = Tensor::from_slice(&[0.0f32, 10.0]);
///     let _d = plate!("data", data.size()[0]);
///     let z = sample!(Categorical::new(&Tensor::from_slice(&[0.5f32, 0.5]))?, enumerate = parallel);
///     sample!("x", Normal::new(&ppl::ops::vindex(&locs, &[Some(&z)])?, 1.0)?, obs = data);
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// let data = Tensor::from_slice(&[0.3f32, 9.1, -0.4]);
/// let (_, tr) = poutine::trace(|| infer_discrete(|| model(&data), -2, 0.0))?;
/// assert_eq!(Vec::<i64>::try_from(tr.value("z")?)?, vec![0, 1, 0]);
/// # Ok(()) }
/// ```
pub fn infer_discrete<R>(
    mut model: impl FnMut() -> Result<R>,
    first_available_dim: i64,
    temperature: f64,
) -> Result<R> {
    let ring = if temperature == 0.0 {
        Ring::Max
    } else if temperature == 1.0 {
        Ring::Log
    } else {
        return Err(Error::Config(format!(
            "infer_discrete: temperature must be 0 (MAP) or 1 (a posterior sample), got \
             {temperature}"
        )));
    };
    let (_, mut tr) = poutine::block(|| {
        poutine::trace(|| EnumMessenger::new(first_available_dim)?.run(&mut model))
    })?;
    crate::infer::enumerate::check_not_marked(&tr, "infer_discrete")?;
    let values = assign(&mut tr, ring)?;
    let mut replayed = Trace::new();
    for s in tr.iter() {
        let mut s = s.clone();
        if let Some(v) = values.get(&s.name) {
            s.value = v.shallow_clone();
        }
        s.infer.enumerate = None;
        s.infer.enum_dim = None;
        s.infer.dim_to_id.clear();
        replayed.add(s)?;
    }
    poutine::replay(Rc::new(replayed), model)
}

/// The assigned value of each enumerated site of `tr`, in the site's batch layout.
fn assign(tr: &mut Trace, ring: Ring) -> Result<HashMap<String, Tensor>> {
    let mut plates = PlateTable::default();
    let mut tape: Vec<TapeEntry> = Vec::new();
    model_factors(tr, None, &mut plates, ring, Some(&mut tape))?;
    // Backward pass: each variable given the ones eliminated after it.
    let mut assigned: HashMap<Var, Factor> = HashMap::new();
    for entry in tape.into_iter().rev() {
        let mut f = entry.factor;
        let others: Vec<Var> = f
            .vars
            .iter()
            .copied()
            .filter(|v| matches!(v, Var::Enum(_)) && *v != entry.var)
            .collect();
        for u in others {
            let s = assigned.get(&u).ok_or_else(|| {
                Error::Config(format!(
                    "infer_discrete: variable {u:?} is needed before it is assigned"
                ))
            })?;
            f = condition(&f, u, s)?;
        }
        let d = f.vars.iter().position(|v| *v == entry.var).unwrap_or(0) as i64;
        let scores = match ring {
            Ring::Max => f.tensor.shallow_clone(),
            Ring::Log => {
                // Gumbel-max: argmax of log-weights plus Gumbel noise is a categorical draw.
                let u = f.tensor.f_rand_like()?.f_clamp(1e-12, 1.0 - 1e-12)?;
                let g = u.f_log()?.f_neg()?.f_log()?.f_neg()?;
                f.tensor.f_add(&g)?
            }
        };
        let idx = scores.f_argmax(d, false)?;
        let vars = f.vars.iter().copied().filter(|v| *v != entry.var).collect();
        assigned.insert(entry.var, Factor { tensor: idx, vars });
    }
    let mut out = HashMap::new();
    for s in tr
        .iter()
        .filter(|s| s.is_latent() && s.infer.enum_dim.is_some())
    {
        let v = site_value(s, &assigned, &plates).at_site(&s.name)?;
        out.insert(s.name.clone(), v);
    }
    Ok(out)
}

/// `f` with variable `u` fixed at the (plated) indices `s`.
fn condition(f: &Factor, u: Var, s: &Factor) -> Result<Factor> {
    let mut vars: Vec<Var> = f.vars.iter().copied().filter(|v| *v != u).collect();
    for v in &s.vars {
        if !vars.contains(v) {
            vars.push(*v);
        }
    }
    let sizes: Vec<i64> = vars
        .iter()
        .map(|v| f.size_of(*v).or_else(|| s.size_of(*v)).unwrap_or(1))
        .collect();
    let k = f.size_of(u).unwrap_or(1);
    let mut with_u = vars.clone();
    with_u.push(u);
    let mut full = sizes.clone();
    full.push(k);
    let ft = f.align(&with_u)?.f_expand(full.as_slice(), false)?;
    let mut one = sizes.clone();
    one.push(1);
    let idx = s
        .align(&vars)?
        .f_unsqueeze(-1)?
        .f_expand(one.as_slice(), false)?;
    let tensor = ft.f_gather(-1, &idx, false)?.f_squeeze_dim(-1)?;
    Ok(Factor { tensor, vars })
}

/// The support value at the assigned index of an enumerated site, laid out in its batch dims.
fn site_value(site: &Site, assigned: &HashMap<Var, Factor>, plates: &PlateTable) -> Result<Tensor> {
    let dim = site.infer.enum_dim.unwrap_or(-1);
    let id = site
        .infer
        .dim_to_id
        .iter()
        .find(|(d, _)| *d == dim)
        .map(|(_, i)| *i);
    let event_dim = site.dist()?.event_dim() as i64;
    let support = &site.value;
    // The support along its enumeration dim, as [K, event...].
    let pos = support.dim() as i64 - event_dim + dim;
    let k = support.size()[pos as usize];
    let mut flat = support.f_movedim([pos], [0])?;
    let mut shape = vec![k];
    shape.extend_from_slice(&support.size()[(support.dim() as i64 - event_dim) as usize..]);
    flat = flat
        .f_reshape([k, -1])?
        .f_narrow(1, 0, shape[1..].iter().product::<i64>().max(1))?
        .f_reshape(shape.as_slice())?;
    let Some(s) = id.and_then(|i| assigned.get(&Var::Enum(i))) else {
        // A support of one value never made it into a factor.
        return Ok(flat.f_get(0)?);
    };
    let idx = s.tensor.f_to_kind(Kind::Int64)?;
    let picked = flat.f_index_select(0, &idx.f_flatten(0, -1)?)?;
    let mut picked_shape = idx.size();
    picked_shape.extend_from_slice(&shape[1..]);
    let picked = picked.f_reshape(picked_shape.as_slice())?;
    // Each of the sample's plate vars goes to its plate's dim.
    let mut rank = 0i64;
    let mut dims = Vec::new();
    for v in &s.vars {
        let frame = site
            .cond_indep_stack
            .iter()
            .find(|f| matches!(*v, Var::Plate(_)) && plates.var_of(&f.name) == Some(*v))
            .ok_or_else(|| Error::Config(format!("infer_discrete: {v:?} is not a plate here")))?;
        let d = frame.dim.unwrap_or(-1);
        rank = rank.max(-d);
        dims.push(d);
    }
    let mut layout = vec![1i64; rank as usize];
    let mut order: Vec<(i64, usize)> = dims.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    order.sort_unstable();
    let perm: Vec<i64> = order
        .iter()
        .map(|(_, i)| *i as i64)
        .chain((0..event_dim).map(|e| dims.len() as i64 + e))
        .collect();
    let picked = picked.f_permute(perm.as_slice())?;
    for (d, i) in &order {
        layout[(rank + d) as usize] = s.tensor.size()[*i];
    }
    layout.extend_from_slice(&shape[1..]);
    Ok(picked.f_reshape(layout.as_slice())?)
}
