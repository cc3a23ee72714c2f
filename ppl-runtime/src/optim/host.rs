//! Small CPU params updated on the host.
//!
//! A libtorch call costs one to three microseconds however small its tensors, and an Adam step is
//! nine of them per param: for the scalar and short-vector params of typical guides that is most
//! of an SVI step. For such params (on the CPU, float32 or float64, at most `HOST_MAX_NUMEL`
//! elements) the built-in optimizers keep their buffers (moments, momenta, sums) in Rust vectors
//! (`Bufs`) and do the arithmetic in a loop: one copy out of the param and its gradient, one
//! copy back. The buffers save as tensors and come back as tensors, moving to the host at the
//! next step. The loop performs torch's
//! elementwise operations in torch's order and precision (its scalar kernel path), so results
//! agree with `torch.optim` to the rounding of the fused multiply-adds that libtorch's vectorized
//! kernels use: an ulp or so. Gradient-norm clipping of small CPU gradients likewise computes the
//! norms on the host (accumulating in f64) and touches the gradients only when it scales them.
//! [`set_small_tensor_fast_path`] turns all of this off.

use std::cell::Cell;
use std::ops::{Add, Div, Mul, Sub};

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Largest param (in elements) updated on the host.
pub(crate) const HOST_MAX_NUMEL: usize = 4096;

thread_local! {
    static FAST_PATH: Cell<bool> = const { Cell::new(true) };
}

/// Turns the host fast path for small CPU params of the built-in optimizers and of
/// [`clip_grad_norm`](super::clip_grad_norm) on or off (on by default) for this thread (like the
/// param store), and returns the previous setting. With it off every update is a sequence of
/// libtorch ops, as in `torch.optim`; with it on, params of at most 4096 elements on the CPU are
/// updated by a Rust loop that does the same arithmetic (see the [`optim`](super) module docs).
/// Either way the state saves and loads the same, and switching mid-run is allowed.
pub fn set_small_tensor_fast_path(enabled: bool) -> bool {
    FAST_PATH.with(|f| f.replace(enabled))
}

/// The float types the host path handles.
pub(crate) trait HostFloat:
    tch::kind::Element
    + Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    /// `x` rounded to `Self` (what libtorch does to a Python float scalar).
    fn of(x: f64) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Whether NaN.
    fn is_nan(self) -> bool;
    /// Appends the native-endian bytes.
    fn push_bytes(self, out: &mut Vec<u8>);
    /// As f64 (exact).
    fn to_f64(self) -> f64;
}

impl HostFloat for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn push_bytes(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes())
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl HostFloat for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn push_bytes(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes())
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// `torch.lerp(start, end, weight)` as libtorch's scalar kernel computes it.
#[inline]
pub(crate) fn lerp<T: HostFloat>(start: T, end: T, weight: T) -> T {
    let half = T::of(0.5);
    let small = if weight < T::of(0.0) {
        T::of(0.0) - weight < half
    } else {
        weight < half
    };
    if small {
        start + weight * (end - start)
    } else {
        end - (end - start) * (T::of(1.0) - weight)
    }
}

/// `torch.maximum(a, b)`: NaN if either is NaN.
#[inline]
pub(crate) fn maximum<T: HostFloat>(a: T, b: T) -> T {
    if a.is_nan() {
        a
    } else if b.is_nan() || b > a {
        b
    } else {
        a
    }
}

/// Which host type, if any, updates `p` with gradient `g`.
pub(crate) fn host_kind(p: &Tensor, g: &Tensor) -> Option<Kind> {
    if !FAST_PATH.with(Cell::get) || p.device() != Device::Cpu {
        return None;
    }
    let kind = p.kind();
    if !matches!(kind, Kind::Float | Kind::Double) || g.kind() != kind {
        return None;
    }
    (p.numel() <= HOST_MAX_NUMEL).then_some(kind)
}

/// The values of `t` (any layout) into `out`.
pub(crate) fn read<T: HostFloat>(t: &Tensor, out: &mut Vec<T>) -> Result<()> {
    let n = t.numel();
    out.resize(n, T::of(0.0));
    t.f_copy_data(out, n)?;
    Ok(())
}

/// A vector of `t`'s values.
pub(crate) fn to_vec<T: HostFloat>(t: &Tensor) -> Result<Vec<T>> {
    let mut v = Vec::new();
    read(t, &mut v)?;
    Ok(v)
}

/// A CPU tensor of `shape` holding `v`.
pub(crate) fn to_tensor<T: HostFloat>(v: &[T], shape: &[i64]) -> Result<Tensor> {
    let mut bytes = Vec::with_capacity(v.len() * T::KIND.elt_size_in_bytes());
    for x in v {
        x.push_bytes(&mut bytes);
    }
    let numel: i64 = shape.iter().product();
    if numel < 0 || numel as usize != v.len() {
        return Err(crate::error::Error::Shape(format!(
            "{} values do not fill shape {shape:?}",
            v.len()
        )));
    }
    Ok(Tensor::f_from_data_size(&bytes, shape, T::KIND)?)
}

/// Writes `v` (the values of `p` in order) into `p` in place.
pub(crate) fn write<T: HostFloat>(p: &mut Tensor, v: &[T], shape: &[i64]) -> Result<()> {
    p.f_copy_(&to_tensor(v, shape)?)?;
    Ok(())
}

/// An optimizer's per-param buffers (momenta, running averages), as tensors or, for a small CPU
/// param, as host vectors of the param's float type.
pub(crate) enum Bufs {
    /// libtorch tensors shaped like the param.
    Tensors(Vec<Tensor>),
    /// float32 host vectors.
    F32(HostBufs<f32>),
    /// float64 host vectors.
    F64(HostBufs<f64>),
}

/// Host buffers with scratch space for the param's and the gradient's values.
pub(crate) struct HostBufs<T> {
    pub(crate) shape: Vec<i64>,
    pub(crate) bufs: Vec<Vec<T>>,
    pub(crate) p: Vec<T>,
    pub(crate) g: Vec<T>,
}

impl<T: HostFloat> HostBufs<T> {
    fn filled(p: &Tensor, inits: &[f64]) -> Self {
        let n = p.numel();
        HostBufs {
            shape: p.size(),
            bufs: inits.iter().map(|&x| vec![T::of(x); n]).collect(),
            p: Vec::with_capacity(n),
            g: Vec::with_capacity(n),
        }
    }

    fn from_tensors(shape: Vec<i64>, ts: &[Tensor]) -> Result<Self> {
        let n = shape.iter().product::<i64>().max(0) as usize;
        Ok(HostBufs {
            shape,
            bufs: ts.iter().map(to_vec).collect::<Result<_>>()?,
            p: Vec::with_capacity(n),
            g: Vec::with_capacity(n),
        })
    }

    fn tensors(&self) -> Result<Vec<Tensor>> {
        self.bufs
            .iter()
            .map(|b| to_tensor(b, &self.shape))
            .collect()
    }

    /// Reads the values of `p` and `grad` into the scratch vectors.
    pub(crate) fn read(&mut self, p: &Tensor, grad: &Tensor) -> Result<()> {
        read(p, &mut self.p)?;
        read(grad, &mut self.g)?;
        let n = self.p.len();
        if self.g.len() != n || self.bufs.iter().any(|b| b.len() != n) {
            return Err(crate::error::Error::Shape(format!(
                "param of {n} and gradient of {} elements for optimizer state of shape {:?}",
                self.g.len(),
                self.shape
            )));
        }
        Ok(())
    }

    /// Writes the scratch param values back into `p`.
    pub(crate) fn write(&self, p: &mut Tensor) -> Result<()> {
        write(p, &self.p, &self.shape)
    }
}

impl Bufs {
    /// Buffers for param `p`, buffer `i` filled with `inits[i]`: on the host when the fast path
    /// applies to `p`, else tensors like `p`.
    pub(crate) fn new(p: &Tensor, inits: &[f64]) -> Result<Self> {
        Ok(match host_kind(p, p) {
            Some(Kind::Float) => Bufs::F32(HostBufs::filled(p, inits)),
            Some(Kind::Double) => Bufs::F64(HostBufs::filled(p, inits)),
            _ => Bufs::Tensors(
                inits
                    .iter()
                    .map(|&x| p.f_full_like(x))
                    .collect::<std::result::Result<_, _>>()?,
            ),
        })
    }

    /// The buffers as tensors (host vectors are copied into new CPU tensors).
    pub(crate) fn tensors(&self) -> Result<Vec<Tensor>> {
        match self {
            Bufs::Tensors(ts) => Ok(ts.iter().map(Tensor::shallow_clone).collect()),
            Bufs::F32(h) => h.tensors(),
            Bufs::F64(h) => h.tensors(),
        }
    }

    /// Moves the buffers to where this step computes: the host for a small CPU param (state just
    /// loaded arrives as tensors), tensors on the param's device otherwise.
    pub(crate) fn place(&mut self, p: &Tensor, grad: &Tensor) -> Result<()> {
        let kind = host_kind(p, grad);
        let placed = match (&*self, kind) {
            (Bufs::Tensors(_), None)
            | (Bufs::F32(_), Some(Kind::Float))
            | (Bufs::F64(_), Some(Kind::Double)) => return Ok(()),
            (Bufs::Tensors(ts), Some(k))
                if ts
                    .iter()
                    .all(|t| t.kind() == k && t.device() == Device::Cpu) =>
            {
                if k == Kind::Float {
                    Bufs::F32(HostBufs::from_tensors(p.size(), ts)?)
                } else {
                    Bufs::F64(HostBufs::from_tensors(p.size(), ts)?)
                }
            }
            (Bufs::Tensors(_), Some(_)) => return Ok(()),
            _ => {
                let device = p.device();
                Bufs::Tensors(
                    self.tensors()?
                        .into_iter()
                        .map(|t| t.f_to_device(device))
                        .collect::<std::result::Result<_, _>>()?,
                )
            }
        };
        *self = placed;
        Ok(())
    }
}
