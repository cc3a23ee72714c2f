//! `vindex` (Pyro's `Vindex`): indexing whose indices broadcast against each other and against
//! the tensor's batch dims, so that the same line works on a plain index and on an enumerated
//! `[K, 1, ..., 1]` value.

use tch::{Kind, Tensor};

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
    let xp = x.f_permute(perm.as_slice())?;
    let mut idx: Vec<Option<Tensor>> = Vec::with_capacity(shape.len());
    for (k, &size) in shape.iter().take(nb).enumerate() {
        let mut view = vec![size];
        view.extend(std::iter::repeat_n(1, nb - 1 - k));
        idx.push(Some(
            Tensor::f_arange(size, (Kind::Int64, x.device()))?.f_view(view.as_slice())?,
        ));
    }
    for i in index.iter().flatten() {
        idx.push(Some(i.f_to_kind(Kind::Int64)?));
    }
    if idx.is_empty() {
        return Ok(xp);
    }
    Ok(xp.f_index(&idx)?)
}
