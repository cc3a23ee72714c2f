//! Helpers shared by the families (crate-private).

use tch::{Kind, Tensor};

use super::{finfo_eps, finfo_tiny};
use crate::error::Result;

/// The `Distribution` methods every family with scalar events and only tensor fields (plus
/// `batch_shape`) writes the same way: `name`, `batch_shape`, `event_shape`, `as_any`, `expand`.
macro_rules! scalar_family {
    ($name:literal; $($field:ident),* $(; copy $($copy:ident),*)?) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn batch_shape(&self) -> &[i64] {
            &self.batch_shape
        }
        fn event_shape(&self) -> &[i64] {
            &[]
        }
        fn as_any(&self) -> Option<&dyn std::any::Any> {
            Some(self)
        }
        fn expand(&self, batch_shape: &[i64]) -> $crate::error::Result<super::DistRef> {
            Ok(std::rc::Rc::new(Self {
                $($field: super::expand_param(&self.$field, batch_shape, &[])?,)*
                $($($copy: self.$copy,)*)?
                batch_shape: batch_shape.to_vec(),
            }))
        }
    };
}
pub(crate) use scalar_family;

/// `log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)`.
pub(crate) fn lbeta(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.f_lgamma()?
        .f_add(&b.f_lgamma()?)?
        .f_sub(&a.f_add(b)?.f_lgamma()?)?)
}

/// Uniform draws in `(tiny, 1 - eps)` of `shape`, with `like`'s dtype and device.
pub(crate) fn uniform_open(shape: &[i64], like: &Tensor) -> Result<Tensor> {
    let k = like.kind();
    let u = Tensor::f_rand(shape, (k, like.device()))?;
    Ok(u.f_clamp(finfo_tiny(k), 1.0 - finfo_eps(k))?)
}

/// Standard-gamma draws with concentration `alpha` expanded to `shape`; differentiable in
/// `alpha` (libtorch's standard-gamma gradient). Clamped to the smallest normal number.
pub(crate) fn standard_gamma(alpha: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let g = alpha.f_expand(shape, false)?.f_internal_standard_gamma()?;
    Ok(g.f_clamp_min(finfo_tiny(alpha.kind()))?)
}

/// Binary probabilities to log-odds, clamped as torch's `probs_to_logits(is_binary=True)`.
pub(crate) fn probs_to_logits(probs: &Tensor) -> Result<Tensor> {
    let e = finfo_eps(probs.kind());
    let p = probs.f_clamp(e, 1.0 - e)?;
    Ok(p.f_log()?.f_sub(&p.f_neg()?.f_log1p()?)?)
}

/// `torch.where(cond, t, v)` with a scalar `v`.
pub(crate) fn where_scalar(cond: &Tensor, t: &Tensor, v: f64) -> Result<Tensor> {
    Ok(t.f_masked_fill(&cond.f_logical_not()?, v)?)
}

/// A tensor of `value` with the shape, dtype and device of `like`.
pub(crate) fn full_like(like: &Tensor, value: f64) -> Result<Tensor> {
    Ok(like.f_full_like(value)?)
}

/// The standard normal CDF `Φ(z)`.
pub(crate) fn std_normal_cdf(z: &Tensor) -> Result<Tensor> {
    Ok(z.f_mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
        .f_erf()?
        .f_add_scalar(1.0)?
        .f_mul_scalar(0.5)?)
}

/// Casts integer-valued samples to the parameters' float dtype.
pub(crate) fn to_float(t: Tensor, kind: Kind) -> Result<Tensor> {
    Ok(if t.kind() == kind {
        t
    } else {
        t.f_to_kind(kind)?
    })
}

/// The Euler–Mascheroni constant.
pub(crate) const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The shape `a` and `b` broadcast to (torch's rules; the caller knows they are compatible).
pub(crate) fn broadcast_shape(a: &[i64], b: &[i64]) -> Vec<i64> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let x = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let y = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            if x == 1 {
                y
            } else {
                x
            }
        })
        .collect()
}

/// A constraint bound from a parameter: a number for a single CPU value (no tensor op to check
/// a value against it), else the tensor (one bound per element).
pub(crate) fn bound_of(t: &Tensor) -> Result<crate::constraints::Bound> {
    Ok(if t.device() == tch::Device::Cpu && t.numel() == 1 {
        crate::constraints::Bound::Scalar(t.f_reshape([-1])?.f_double_value(&[0])?)
    } else {
        crate::constraints::Bound::from(t)
    })
}
