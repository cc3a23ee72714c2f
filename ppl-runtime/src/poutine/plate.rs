//! `plate`: conditional independence. A vectorized plate owns a batch dimension: distributions
//! sampled inside are broadcast to its size there, and their log-densities are scaled by
//! `size / subsample_size` when it subsamples. A sequential plate (`for i in plate!(...)`) marks
//! each iteration as independent.

use std::cell::RefCell;
use std::rc::Rc;

use tch::{Device, Kind, Tensor};

use super::runtime::{apply_stack, CondIndepFrame, HandlerGuard, Messenger, Msg, SiteKind};
use crate::distributions::{Distribution, Subsample};
use crate::error::{Error, Result};

use super::runtime::Handler;

thread_local! {
    /// Batch dims in use: index 0 is dim -1, index 1 is dim -2, ...
    static DIMS: RefCell<Vec<Option<Rc<str>>>> = const { RefCell::new(Vec::new()) };
}

fn allocate_dim(name: &Rc<str>, dim: Option<i64>) -> Result<i64> {
    DIMS.with(|d| {
        let mut d = d.borrow_mut();
        let idx = match dim {
            Some(dim) if dim >= 0 => {
                return Err(Error::Plate {
                    plate: name.to_string(),
                    message: format!("dim must be negative (counted from the right), got {dim}"),
                })
            }
            Some(dim) => (-dim - 1) as usize,
            None => d.iter().position(Option::is_none).unwrap_or(d.len()),
        };
        if d.len() <= idx {
            d.resize(idx + 1, None);
        }
        if let Some(other) = &d[idx] {
            return Err(Error::Plate {
                plate: name.to_string(),
                message: format!(
                    "dim {} is already used by the enclosing plate `{other}`",
                    -(idx as i64) - 1
                ),
            });
        }
        d[idx] = Some(name.clone());
        Ok(-(idx as i64) - 1)
    })
}

fn free_dim(dim: i64) {
    DIMS.with(|d| {
        let mut d = d.borrow_mut();
        let idx = (-dim - 1) as usize;
        if idx < d.len() {
            d[idx] = None;
        }
        while d.last().is_some_and(Option::is_none) {
            d.pop();
        }
    })
}

/// The handler a plate puts on the stack.
pub struct PlateMessenger {
    frame: CondIndepFrame,
    scale: f64,
}

impl Messenger for PlateMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.infer.is_subsample {
            return Ok(());
        }
        msg.cond_indep_stack.push(self.frame.clone());
        msg.scale *= self.scale;
        if let Some(dim) = self.frame.dim {
            broadcast(msg, &self.frame, dim)?;
            check_observed(msg, &self.frame, dim)?;
        }
        Ok(())
    }
}

/// An observed value must have the plate's size (or 1) at the plate's dim, counted from the right
/// of its batch dims (Pyro: "Shape mismatch inside plate('data') at site obs dim -1, 10 vs 12").
fn check_observed(msg: &Msg, frame: &CondIndepFrame, dim: i64) -> Result<()> {
    let (true, Some(v), Some(d)) = (msg.is_observed, msg.value.as_ref(), msg.dist.as_ref()) else {
        return Ok(());
    };
    let shape = v.size();
    let idx = shape.len() as i64 - d.event_shape().len() as i64 + dim;
    if idx < 0 {
        return Ok(());
    }
    let have = shape[idx as usize];
    if have == 1 || have == frame.size {
        return Ok(());
    }
    Err(Error::ObservedPlateMismatch {
        site: msg.name.clone(),
        plate: frame.name.to_string(),
        size: frame.size,
        dim,
        shape,
        have,
    })
}

/// Expands the site's distribution so that its batch shape has the plate's size at `dim`.
fn broadcast(msg: &mut Msg, frame: &CondIndepFrame, dim: i64) -> Result<()> {
    let d = msg.dist()?;
    let batch = d.batch_shape();
    let need = (-dim) as usize;
    let mut target: Vec<i64> = Vec::with_capacity(batch.len().max(need));
    if batch.len() < need {
        target.resize(need - batch.len(), 1);
    }
    target.extend_from_slice(batch);
    let idx = target.len() - need;
    let have = target[idx];
    if have == frame.size {
        return Ok(());
    }
    if have != 1 {
        return Err(Error::PlateMismatch {
            site: msg.name.clone(),
            plate: frame.name.to_string(),
            size: frame.size,
            dim,
            batch_shape: batch.to_vec(),
        });
    }
    target[idx] = frame.size;
    msg.dist = Some(d.expand(&target)?);
    Ok(())
}

/// A plate before it is entered; built by `plate!` or by hand.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let data = Tensor::from_slice(&[1.0f32, 0.0, 1.0]);
/// let (_, tr) = poutine::trace(|| {
///     let _p = Plate::new("data", 3).enter()?;
///     sample("obs", Bernoulli::new(0.5)?, Some(data.shallow_clone()))
/// })?;
/// assert_eq!(tr.site("obs")?.dist()?.batch_shape(), vec![3]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Plate {
    name: Rc<str>,
    size: i64,
    subsample_size: Option<i64>,
    subsample: Option<Rc<Tensor>>,
    dim: Option<i64>,
    device: Device,
}

impl Plate {
    /// A plate called `name` over `size` independent items.
    pub fn new(name: impl AsRef<str>, size: i64) -> Plate {
        Plate {
            name: Rc::from(name.as_ref()),
            size,
            subsample_size: None,
            subsample: None,
            dim: None,
            device: Device::Cpu,
        }
    }
    /// Draws `k` of the `size` indices each run (without replacement) and scales log-densities
    /// by `size / k`.
    pub fn subsample_size(mut self, k: i64) -> Plate {
        self.subsample_size = Some(k);
        self
    }
    /// Ranges over the given indices of `0..size` (a 1-D int64 tensor; Pyro's `subsample=`) and
    /// scales log-densities by `size / len`: e.g. this rank's shard in data-parallel SVI
    /// (`ppl::distributed::ProcessGroup::shard`).
    pub fn subsample(mut self, indices: Tensor) -> Plate {
        self.subsample_size = Some(indices.size().first().copied().unwrap_or(0));
        self.subsample = Some(Rc::new(indices));
        self
    }
    /// Uses the given batch dimension (negative) instead of the next free one.
    pub fn dim(mut self, dim: i64) -> Plate {
        self.dim = Some(dim);
        self
    }
    /// The device of the subsample indices (that of the data they index).
    pub fn device(mut self, device: Device) -> Plate {
        self.device = device;
        self
    }

    fn check(&self) -> Result<i64> {
        let k = self.subsample_size.unwrap_or(self.size);
        if self.size < 0 || k < 0 || k > self.size {
            return Err(Error::Plate {
                plate: self.name.to_string(),
                message: format!(
                    "need 0 <= subsample_size <= size, got size {} and subsample_size {k}",
                    self.size
                ),
            });
        }
        if let Some(idx) = &self.subsample {
            let bad = |m: String| Error::Plate {
                plate: self.name.to_string(),
                message: m,
            };
            if idx.dim() != 1 || idx.kind() != Kind::Int64 {
                return Err(bad(format!(
                    "subsample indices must be a 1-D int64 tensor, got {:?} {:?}",
                    idx.kind(),
                    idx.size()
                )));
            }
            if k > 0 {
                let (lo, hi) = (idx.f_min()?.int64_value(&[]), idx.f_max()?.int64_value(&[]));
                if lo < 0 || hi >= self.size {
                    return Err(bad(format!(
                        "subsample indices run from {lo} to {hi}, outside 0..{}",
                        self.size
                    )));
                }
            }
        }
        Ok(k)
    }

    /// Draws (or, under replay, reuses) the subsample indices through a site named after the
    /// plate; the full range when not subsampling.
    fn indices(&self, k: i64) -> Result<Option<Tensor>> {
        if self.subsample_size.is_none() {
            return Ok(None);
        }
        let dist = Subsample::new(self.size, k, self.device)?;
        let given = self.subsample.as_ref().map(|t| t.shallow_clone());
        let mut msg = Msg::sample(self.name.to_string(), Rc::new(dist), given);
        msg.infer.is_subsample = true;
        apply_stack(&mut msg)?;
        msg.value.map(Some).ok_or_else(|| Error::Plate {
            plate: self.name.to_string(),
            message: "no subsample indices were drawn".into(),
        })
    }

    /// Enters the plate as a vectorized plate: the returned guard keeps it active.
    pub fn enter(self) -> Result<PlateGuard> {
        let k = self.check()?;
        let indices = self.indices(k)?;
        let dim = allocate_dim(&self.name, self.dim)?;
        let frame = CondIndepFrame {
            name: self.name.clone(),
            dim: Some(dim),
            size: k,
            full_size: self.size,
            counter: 0,
        };
        let scale = if k > 0 {
            self.size as f64 / k as f64
        } else {
            1.0
        };
        let guard = PlateMessenger { frame, scale }.enter();
        Ok(PlateGuard {
            guard: Some(guard),
            dim,
            size: self.size,
            device: self.device,
            indices: once(indices),
        })
    }

    /// Enters the plate as a sequential plate: iterate over it with `for`.
    pub fn sequential(self) -> Result<SequentialPlate> {
        let k = self.check()?;
        let indices = self.indices(k)?;
        let idx: Vec<i64> = match indices {
            Some(t) => Vec::<i64>::try_from(&t.f_to_device(Device::Cpu)?)?,
            None => (0..self.size).collect(),
        };
        let scale = if k > 0 {
            self.size as f64 / k as f64
        } else {
            1.0
        };
        Ok(SequentialPlate {
            name: self.name,
            full_size: self.size,
            indices: idx,
            pos: 0,
            scale,
            current: None,
        })
    }
}

/// An active vectorized plate; leaving scope ends it.
#[must_use = "the plate ends as soon as this guard is dropped: bind it, e.g. `let _data = plate!(...)`"]
pub struct PlateGuard {
    guard: Option<HandlerGuard<PlateMessenger>>,
    dim: i64,
    size: i64,
    device: Device,
    /// Drawn subsample indices, or `0..size` made on first request.
    indices: std::cell::OnceCell<Tensor>,
}

impl PlateGuard {
    /// The (subsample) indices this plate ranges over.
    pub fn indices(&self) -> &Tensor {
        self.indices
            .get_or_init(|| Tensor::arange(self.size, (Kind::Int64, self.device)))
    }
    /// The plate's batch dimension (negative).
    pub fn dim(&self) -> i64 {
        self.dim
    }
    /// The number of items in this run (the subsample size when subsampling).
    pub fn len(&self) -> i64 {
        match self.indices.get() {
            Some(t) => t.size().first().copied().unwrap_or(0),
            None => self.size,
        }
    }
    /// Whether the plate has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PlateGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        free_dim(self.dim);
    }
}

/// A sequential plate: yields the index of each item, with the item's frame active until the
/// next one is requested.
pub struct SequentialPlate {
    name: Rc<str>,
    full_size: i64,
    indices: Vec<i64>,
    pos: usize,
    scale: f64,
    current: Option<HandlerGuard<PlateMessenger>>,
}

impl Iterator for SequentialPlate {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        drop(self.current.take());
        let i = *self.indices.get(self.pos)?;
        let frame = CondIndepFrame {
            name: self.name.clone(),
            dim: None,
            size: 1,
            full_size: self.full_size,
            counter: self.pos,
        };
        self.current = Some(
            PlateMessenger {
                frame,
                scale: self.scale,
            }
            .enter(),
        );
        self.pos += 1;
        Some(i)
    }
}

fn once(t: Option<Tensor>) -> std::cell::OnceCell<Tensor> {
    let c = std::cell::OnceCell::new();
    if let Some(t) = t {
        let _ = c.set(t);
    }
    c
}
