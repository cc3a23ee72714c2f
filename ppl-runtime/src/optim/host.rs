//! Small CPU params updated on the host.
//!
//! A libtorch call costs one to three microseconds however small its tensors, and an Adam step is
//! nine of them per param: for the scalar and short-vector params of typical guides that is most
//! of an SVI step. For such params (on the CPU, float32 or float64, at most [`HOST_MAX_NUMEL`]
//! elements) Adam and AdamW keep their moments in Rust vectors and do the arithmetic in a loop:
//! one copy out of the param and its gradient, one copy back. The loop performs torch's
//! elementwise operations in torch's order and precision (its scalar kernel path), so results
//! agree with `torch.optim` to the rounding of the fused multiply-adds that libtorch's vectorized
//! kernels use: an ulp or so. [`set_small_tensor_fast_path`] turns this off.

use std::ops::{Add, Div, Mul, Sub};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Largest param (in elements) updated on the host.
pub(crate) const HOST_MAX_NUMEL: usize = 4096;

static FAST_PATH: AtomicBool = AtomicBool::new(true);

/// Turns the host fast path for small CPU params of [`Adam`](super::Adam) and
/// [`AdamW`](super::AdamW) on or off (on by default) for the whole process, and returns the
/// previous setting. With it off every update is a sequence of libtorch ops, as in
/// `torch.optim`; with it on small params are updated by a Rust loop that does the same
/// arithmetic (see the `optim` module docs). Either way the state saves and loads the same.
pub fn set_small_tensor_fast_path(enabled: bool) -> bool {
    FAST_PATH.swap(enabled, Ordering::Relaxed)
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
    if !FAST_PATH.load(Ordering::Relaxed) || p.device() != Device::Cpu {
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
