//! `enum`: parallel enumeration of discrete sites (Pyro's `poutine.enum`).
//!
//! A sample site marked `enumerate = parallel` (by `sample!` or [`config_enumerate`]) is not
//! drawn: its value is the distribution's whole support, shaped `[K, 1, ..., 1]` so that `K`
//! sits in a fresh dimension left of every plate. Everything computed from that value then
//! carries the dimension, and [`TraceEnumElbo`] sums it out exactly.
//!
//! Dims are handed out from `first_available_dim` (`-max_plate_nesting - 1`) leftwards. Sites
//! inside a [`markov`] context reuse the dims of sites that have left their window, so a chain
//! of length `T` needs `history + 1` dims, not `T`. Every enumerated variable also gets an id
//! that is never reused; each site records which id each of its dims holds (`dim_to_id`), which
//! is what lets the contraction tell a recycled dim's variables apart.
//!
//! [`config_enumerate`]: crate::poutine::config_enumerate
//! [`TraceEnumElbo`]: crate::infer::TraceEnumElbo
//! [`markov`]: crate::poutine::markov

use std::cell::RefCell;
use std::collections::HashMap;

use super::runtime::{Enumerate, Handler, Messenger, Msg, SiteKind};
use crate::error::{Error, Result, ResultExt};

thread_local! {
    static ALLOCATOR: RefCell<EnumAllocator> = const { RefCell::new(EnumAllocator::new()) };
}

/// Hands out enumeration dims and variable ids (Pyro's `_ENUM_ALLOCATOR`).
#[derive(Debug)]
struct EnumAllocator {
    /// The next dim for a site outside every markov context.
    next_dim: i64,
    next_id: usize,
    /// Dims held by sites outside every markov context, with their ids: never reused.
    global: Vec<(i64, usize)>,
}

impl EnumAllocator {
    const fn new() -> Self {
        EnumAllocator {
            next_dim: -1,
            next_id: 0,
            global: Vec::new(),
        }
    }

    /// A dim and a fresh id. Outside markov (`scope` is `None`) the dim is new and kept; inside,
    /// it is the rightmost dim (from `next_dim` leftwards) that no site in scope uses.
    fn allocate(&mut self, scope: Option<&[(i64, usize)]>) -> (i64, usize) {
        let id = self.next_id;
        self.next_id += 1;
        match scope {
            None => {
                let dim = self.next_dim;
                self.next_dim -= 1;
                self.global.push((dim, id));
                (dim, id)
            }
            Some(used) => {
                let mut dim = self.next_dim;
                while used.iter().any(|(d, _)| *d == dim) {
                    dim -= 1;
                }
                (dim, id)
            }
        }
    }
}

/// The enum handler. Enter it around a model or guide, outside any `replay` of the guide's
/// values (so that it sees which sites were replayed) and inside the `trace` that records them,
/// as [`TraceEnumElbo`](crate::infer::TraceEnumElbo) does.
#[derive(Default)]
pub struct EnumMessenger {
    first_available_dim: Option<i64>,
    /// Markov depth of each site seen.
    markov_depths: HashMap<String, usize>,
    /// The enumeration dims each site's value carries (with their ids).
    value_dims: HashMap<String, Vec<(i64, usize)>>,
}

impl EnumMessenger {
    /// Enumerates in dims `first_available_dim` (negative: `-max_plate_nesting - 1`) and
    /// further left.
    pub fn new(first_available_dim: i64) -> Result<Self> {
        if first_available_dim >= 0 {
            return Err(Error::Config(format!(
                "enum: first_available_dim must be negative (-max_plate_nesting - 1), got \
                 {first_available_dim}"
            )));
        }
        Ok(EnumMessenger {
            first_available_dim: Some(first_available_dim),
            ..Default::default()
        })
    }

    /// Continues allocating where the last enum handler on this thread stopped: the model's
    /// enumeration dims go left of the guide's.
    pub(crate) fn continuing() -> Self {
        EnumMessenger::default()
    }
}

/// Adds `(dim, id)` pairs to `into`, a dim already present keeping its id.
fn merge_dims(into: &mut Vec<(i64, usize)>, from: &[(i64, usize)]) {
    for &(d, i) in from {
        if !into.iter().any(|(d2, _)| *d2 == d) {
            into.push((d, i));
        }
    }
}

impl Messenger for EnumMessenger {
    fn on_enter(&mut self) {
        if let Some(first) = self.first_available_dim {
            ALLOCATOR.with(|a| {
                *a.borrow_mut() = EnumAllocator {
                    next_dim: first,
                    next_id: 0,
                    global: Vec::new(),
                };
            });
        }
    }

    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.infer.is_subsample {
            return Ok(());
        }
        // The dims this site's distribution may depend on: every global enumeration dim, and
        // the dims of the markov sites still in its scope.
        let mut param_dims = ALLOCATOR.with(|a| a.borrow().global.clone());
        let in_markov = msg.infer.markov.is_some();
        if let Some(m) = &msg.infer.markov {
            for (name, count) in &m.scope {
                if self.markov_depths.get(name) == Some(count) {
                    if let Some(vd) = self.value_dims.get(name) {
                        merge_dims(&mut param_dims, vd);
                    }
                }
            }
            self.markov_depths.insert(msg.name.clone(), m.depth);
        }
        // Recorded now: a trace outside this handler copies the message before postprocess.
        merge_dims(&mut msg.infer.dim_to_id, &param_dims);
        if msg.is_observed
            || msg.value.is_some()
            || msg.infer.enumerate != Some(Enumerate::Parallel)
        {
            return Ok(());
        }
        let dist = msg.dist()?.clone();
        if !dist.has_enumerate_support() {
            return Err(Error::Enumeration {
                site: msg.name.clone(),
                message: format!(
                    "marked for enumeration, but {} has no finite support to enumerate; only \
                     discrete distributions with finite support (Bernoulli, Categorical, \
                     Binomial, ...) can be enumerated",
                    dist.name()
                ),
            });
        }
        let mut value = dist
            .enumerate_support(msg.infer.expand)
            .at_site(&msg.name)?;
        let event_dim = dist.event_dim() as i64;
        // The support comes as [K] + batch + event: K is at dim `actual` (counted, like plates,
        // from the right of the batch dims).
        let actual = -1 - dist.batch_shape().len() as i64;
        let (target, id) = ALLOCATOR.with(|a| {
            a.borrow_mut()
                .allocate(in_markov.then_some(&param_dims[..]))
        });
        if actual < target {
            // The batch shape reaches past the enumeration dims: possible only where the batch
            // dims there have size 1 (the support was not expanded).
            let at = value.size()[(value.dim() as i64 + target - event_dim) as usize];
            if at != 1 {
                return Err(Error::Enumeration {
                    site: msg.name.clone(),
                    message: format!(
                        "its batch shape {:?} has {} dims, reaching the enumeration dim {target}: \
                         raise max_plate_nesting to at least {}, or do not expand",
                        dist.batch_shape(),
                        dist.batch_shape().len(),
                        dist.batch_shape().len()
                    ),
                });
            }
            value = value.f_transpose(actual - event_dim, target - event_dim)?;
            while value.dim() > 0 && value.size()[0] == 1 {
                value = value.f_squeeze_dim(0)?;
            }
        } else if target < actual {
            let mut shape = value.size();
            let extra = (actual - target) as usize;
            shape.splice(1..1, std::iter::repeat_n(1, extra));
            value = value.f_reshape(shape.as_slice())?;
        }
        msg.infer.enum_dim = Some(target);
        merge_dims(&mut msg.infer.dim_to_id, &[(target, id)]);
        msg.value = Some(value);
        msg.done = true;
        Ok(())
    }

    fn postprocess(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.infer.is_subsample {
            return Ok(());
        }
        let Some(value) = &msg.value else {
            return Ok(());
        };
        // The dims passed on downstream through the value: those where it varies.
        let event_dim = msg.dist.as_ref().map_or(0, |d| d.event_dim()) as i64;
        let shape = value.size();
        let batch_len = shape.len() as i64 - event_dim;
        let dims: Vec<(i64, usize)> = msg
            .infer
            .dim_to_id
            .iter()
            .copied()
            .filter(|(d, _)| -d <= batch_len && shape[(batch_len + d) as usize] > 1)
            .collect();
        self.value_dims.insert(msg.name.clone(), dims);
        Ok(())
    }
}

/// Runs `f` with its `enumerate = parallel` sites enumerated in dims `first_available_dim` and
/// further left.
pub fn enum_<R>(first_available_dim: i64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    EnumMessenger::new(first_available_dim)?.run(f)
}
