//! Parameter handling shared by the families: user arguments ([`Arg`]), broadcasting,
//! validation, shapes and float limits.

use tch::{Device, Kind, Tensor};

use super::{validation_enabled, Distribution};
use crate::constraints::Constraint;
use crate::error::{Error, Result};

/// A distribution parameter as given by the user: a number or a tensor.
#[derive(Debug)]
pub enum Arg {
    /// A number; it takes the dtype and device of the other parameters.
    Scalar(f64),
    /// A tensor.
    Tensor(Tensor),
}

impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Scalar(v)
    }
}
impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::Scalar(v as f64)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::Scalar(v as f64)
    }
}
impl From<Tensor> for Arg {
    fn from(v: Tensor) -> Arg {
        Arg::Tensor(v)
    }
}
impl From<&Tensor> for Arg {
    fn from(v: &Tensor) -> Arg {
        Arg::Tensor(v.shallow_clone())
    }
}

/// Converts parameters to tensors of one floating dtype on one device and broadcasts them.
/// The dtype and device come from the first tensor argument (float32 on the CPU when all are
/// numbers, like torch's defaults).
pub fn broadcast_args<const N: usize>(dist: &'static str, args: [Arg; N]) -> Result<[Tensor; N]> {
    let (mut kind, mut device) = (Kind::Float, Device::Cpu);
    for a in &args {
        if let Arg::Tensor(t) = a {
            device = t.device();
            let k = t.kind();
            if is_float(k) {
                kind = k;
            }
            break;
        }
    }
    let mut ts: Vec<Tensor> = Vec::with_capacity(N);
    for a in args {
        ts.push(match a {
            Arg::Scalar(v) => Tensor::f_scalar_tensor(v, (kind, device))?,
            Arg::Tensor(t) if t.kind() != kind => t.f_to_kind(kind)?,
            Arg::Tensor(t) => t,
        });
    }
    let same_shape = ts.windows(2).all(|w| w[0].size() == w[1].size());
    let ts = if same_shape {
        ts
    } else {
        Tensor::f_broadcast_tensors(&ts).map_err(|e| {
            Error::Shape(format!(
                "{dist}: parameters of shapes {:?} do not broadcast ({e})",
                ts.iter().map(|t| t.size()).collect::<Vec<_>>()
            ))
        })?
    };
    ts.try_into()
        .map_err(|_| Error::Invalid(format!("{dist}: wrong number of parameters")))
}

/// The value of a one-element CPU tensor, read with one op instead of a reduction and a read
/// (validation of scalar parameters is on the hot path of every sample site).
fn cpu_scalar(t: &Tensor) -> Result<Option<f64>> {
    if t.device() != tch::Device::Cpu {
        return Ok(None);
    }
    // One element, or one element broadcast to a shape (all strides zero, as `broadcast_args`
    // leaves a scalar parameter next to a vector one).
    if t.numel() != 1 && !(t.numel() > 0 && t.stride().iter().all(|s| *s == 0)) {
        return Ok(None);
    }
    let idx = vec![0i64; t.dim()];
    Ok(Some(t.f_double_value(&idx)?))
}

/// Errors unless every element of `t` is `> 0` (when validation is on).
pub fn check_positive(dist: &'static str, param: &'static str, t: &Tensor) -> Result<()> {
    if validation_enabled() {
        if let Some(v) = cpu_scalar(t)? {
            return scalar_verdict(dist, param, "> 0", v > 0.0);
        }
    }
    check(dist, param, "> 0", || t.f_gt(0.0)?.f_all())
}

/// Errors unless every element of `t` is in `[0, 1]` (when validation is on).
pub fn check_unit(dist: &'static str, param: &'static str, t: &Tensor) -> Result<()> {
    if validation_enabled() {
        if let Some(v) = cpu_scalar(t)? {
            return scalar_verdict(dist, param, "in [0, 1]", (0.0..=1.0).contains(&v));
        }
    }
    check(dist, param, "in [0, 1]", || {
        t.f_ge(0.0)?.f_logical_and(&t.f_le(1.0)?)?.f_all()
    })
}

fn scalar_verdict(dist: &'static str, param: &'static str, expected: &str, ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            dist,
            param,
            expected: expected.to_string(),
        })
    }
}

/// Runs a validation check when validation is on.
pub fn check(
    dist: &'static str,
    param: &'static str,
    expected: &str,
    ok: impl FnOnce() -> std::result::Result<Tensor, tch::TchError>,
) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    if ok()?.f_int64_value(&[])? == 0 {
        return Err(Error::InvalidParameter {
            dist,
            param,
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Errors if `value` is outside `d`'s support (when validation is on).
pub fn validate_sample(d: &dyn Distribution, value: &Tensor) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    let support = d.support();
    if matches!(support, Constraint::Real | Constraint::RealVector) {
        return Ok(());
    }
    let inside = match (cpu_scalar(value)?, support.check_scalar()) {
        (Some(v), Some(pred)) => pred(v),
        _ => support.check(value)?.f_all()?.f_int64_value(&[])? != 0,
    };
    if !inside {
        return Err(Error::OutsideSupport {
            dist: d.name(),
            support: support.to_string(),
        });
    }
    Ok(())
}

/// `sample_shape + batch_shape + event_shape`.
pub fn extended_shape(d: &dyn Distribution, sample_shape: &[i64]) -> Vec<i64> {
    let mut s = Vec::with_capacity(sample_shape.len() + d.batch_shape().len() + d.event_dim());
    s.extend_from_slice(sample_shape);
    s.extend_from_slice(d.batch_shape());
    s.extend_from_slice(d.event_shape());
    s
}

/// Expands a parameter tensor to `batch_shape + event_shape`.
pub fn expand_param(t: &Tensor, batch_shape: &[i64], event_shape: &[i64]) -> Result<Tensor> {
    let mut s = batch_shape.to_vec();
    s.extend_from_slice(event_shape);
    if t.size() == s {
        return Ok(t.shallow_clone());
    }
    t.f_expand(s.as_slice(), false).map_err(|e| {
        Error::Shape(format!(
            "cannot expand a parameter of shape {:?} to batch shape {batch_shape:?} (+ event \
             shape {event_shape:?}): {e}",
            t.size()
        ))
    })
}

/// Machine epsilon of a float kind (torch's `finfo(kind).eps`).
pub fn finfo_eps(kind: Kind) -> f64 {
    super::bernoulli::eps(kind)
}

/// The smallest positive normal number of a float kind (torch's `finfo(kind).tiny`).
pub fn finfo_tiny(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::MIN_POSITIVE,
        Kind::Half => 6.1035e-05,
        _ => f32::MIN_POSITIVE as f64,
    }
}

/// Whether `kind` is a floating-point dtype.
pub fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}
