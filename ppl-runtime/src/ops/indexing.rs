//! `vindex` (Pyro's `Vindex`): indexing whose indices broadcast against each other and against
//! the tensor's batch dims, so that the same line works on a plain index and on an enumerated
//! `[K, 1, ..., 1]` value.

use tch::{Kind, Tensor};

use crate::distributions::broadcast_shapes;
use crate::error::{Error, Result};

/// Indexes the rightmost `index.len()` dims of `x`: `Some(i)` indexes that dim with the integer
/// tensor `i`, `None` keeps the whole dim (`:`). The dims of `x` left of them are batch dims,
/// indexed as if by aranges. All indices broadcast with each other and with the batch shape,
/// aligned from the right, and the result has shape `broadcast + kept dims`.
///
/// Pyro's `Vindex(probs)[..., z, :]` is `vindex(&probs, &[Some(&z), None])`:
///
/// ```
/// use ppl::prelude::*;
/// use ppl::ops::vindex;
/// # fn main() -> ppl::Result<()> {
/// let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8]).view([2, 2]); // [from, to]
/// let z = Tensor::from(1i64);
/// assert_eq!(vindex(&probs, &[Some(&z), None])?.size(), vec![2]);
/// // An enumerated value of shape [2, 1] gives one row per value, in its own dim.
/// let z = Tensor::from_slice(&[0i64, 1]).view([2, 1]);
/// assert_eq!(vindex(&probs, &[Some(&z), None])?.size(), vec![2, 1, 2]);
/// # Ok(()) }
/// ```
pub fn vindex(x: &Tensor, index: &[Option<&Tensor>]) -> Result<Tensor> {
    let shape = x.size();
    if index.len() > shape.len() {
        return Err(Error::Shape(format!(
            "vindex: {} indices for a tensor of shape {shape:?}",
            index.len()
        )));
    }
    let nb = shape.len() - index.len();
    // Batch dims first, then the indexed dims, then the kept ones.
    let mut perm: Vec<i64> = (0..nb as i64).collect();
    let mut kept = Vec::new();
    for (k, i) in index.iter().enumerate() {
        match i {
            Some(_) => perm.push((nb + k) as i64),
            None => kept.push((nb + k) as i64),
        }
    }
    perm.extend(kept);
    let mut cur = if perm.iter().enumerate().all(|(i, d)| i as i64 == *d) {
        x.shallow_clone()
    } else {
        x.f_permute(perm.as_slice())?
    };
    // One gather per indexed dim (gathers compile; advanced indexing does not): the index and
    // the batch dims so far broadcast, aligned from the right.
    let mut batch: Vec<i64> = shape[..nb].to_vec();
    let indices: Vec<&Tensor> = index.iter().flatten().copied().collect();
    for (k, i) in indices.iter().enumerate() {
        let i = i.f_to_kind(Kind::Int64)?;
        let ishape = i.size();
        let rest: Vec<i64> = cur.size()[batch.len()..].to_vec();
        let b = broadcast_shapes(&batch, &ishape).map_err(|e| {
            Error::Shape(format!(
                "vindex: index {k} of shape {ishape:?} does not broadcast with the batch shape \
                 {batch:?} ({e})"
            ))
        })?;
        let mut view = vec![1i64; b.len() - batch.len()];
        view.extend(cur.size());
        let mut full = b.clone();
        full.extend(&rest);
        let src = cur
            .f_view(view.as_slice())?
            .f_expand(full.as_slice(), false)?;
        let mut iview = vec![1i64; b.len() - ishape.len()];
        iview.extend(&ishape);
        iview.extend(std::iter::repeat_n(1, rest.len()));
        let mut ifull = b.clone();
        ifull.push(1);
        ifull.extend(&rest[1..]);
        let idx = i
            .f_view(iview.as_slice())?
            .f_expand(ifull.as_slice(), false)?;
        let d = b.len() as i64;
        cur = src.f_gather(d, &idx, false)?.f_squeeze_dim(d)?;
        batch = b;
    }
    Ok(cur)
}
