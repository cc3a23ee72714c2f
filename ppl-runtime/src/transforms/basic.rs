use tch::Tensor;

use super::{Transform, TransformRef};
use crate::constraints::{Bound, Constraint};
use crate::error::Result;

/// `y = x`.
#[derive(Debug, Clone, Copy)]
pub struct IdentityTransform;

impl Transform for IdentityTransform {
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.shallow_clone())
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.shallow_clone())
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(x.f_zeros_like()?)
    }
}

/// `y = exp(x)`.
#[derive(Debug, Clone, Copy)]
pub struct ExpTransform;

impl Transform for ExpTransform {
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::Positive
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_exp()?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_log()?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(x.shallow_clone())
    }
}

/// `y = 1 / (1 + exp(-x))`, clamped away from 0 and 1 as torch does.
#[derive(Debug, Clone, Copy)]
pub struct SigmoidTransform;

impl Transform for SigmoidTransform {
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::UnitInterval
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let eps = crate::distributions::finfo_tiny(x.kind());
        Ok(x.f_sigmoid()?
            .f_clamp(eps, 1.0 - crate::distributions::finfo_eps(x.kind()))?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let eps = crate::distributions::finfo_tiny(y.kind());
        let y = y.f_clamp(eps, 1.0 - crate::distributions::finfo_eps(y.kind()))?;
        Ok(y.f_log()?.f_sub(&y.f_neg()?.f_log1p()?)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // log σ'(x) = -softplus(-x) - softplus(x)
        Ok(x.f_neg()?.f_softplus()?.f_neg()?.f_sub(&x.f_softplus()?)?)
    }
}

/// `y = loc + scale * x`, elementwise; `loc` and `scale` are numbers or tensors that broadcast
/// against `x` (torch's `AffineTransform(loc, scale, event_dim)`). With `event_dim` `n`, the
/// log-Jacobian is summed over the `n` rightmost dims.
#[derive(Debug, Clone)]
pub struct AffineTransform {
    loc: Bound,
    scale: Bound,
    event_dim: usize,
}

impl AffineTransform {
    /// `y = loc + scale * x`, elementwise (event dim 0).
    pub fn new(loc: impl Into<Bound>, scale: impl Into<Bound>) -> Self {
        AffineTransform {
            loc: loc.into(),
            scale: scale.into(),
            event_dim: 0,
        }
    }

    /// The same map on events of `event_dim` dims (the log-Jacobian summed over them).
    pub fn with_event_dim(mut self, event_dim: usize) -> Self {
        self.event_dim = event_dim;
        self
    }
}

impl Transform for AffineTransform {
    fn sign(&self) -> Option<f64> {
        match &self.scale {
            Bound::Scalar(s) => Some(s.signum()),
            Bound::Tensor(t) => {
                let v = t.values().ok()?;
                let first = v.first()?.signum();
                v.iter().all(|x| x.signum() == first).then_some(first)
            }
        }
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.scale {
            Bound::Scalar(s) => x.f_mul_scalar(*s)?,
            Bound::Tensor(s) => x.f_mul(&s.like(x)?)?,
        };
        Ok(match &self.loc {
            Bound::Scalar(l) => y.f_add_scalar(*l)?,
            Bound::Tensor(l) => y.f_add(&l.like(x)?)?,
        })
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let d = match &self.loc {
            Bound::Scalar(l) => y.f_sub_scalar(*l)?,
            Bound::Tensor(l) => y.f_sub(&l.like(y)?)?,
        };
        Ok(match &self.scale {
            Bound::Scalar(s) => d.f_div_scalar(*s)?,
            Bound::Tensor(s) => d.f_div(&s.like(y)?)?,
        })
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let l = match &self.scale {
            Bound::Scalar(s) => x.f_full_like(s.abs().ln())?,
            Bound::Tensor(s) => x.f_zeros_like()?.f_add(&s.like(x)?.f_abs()?.f_log()?)?,
        };
        sum_rightmost(&l, self.event_dim)
    }
    fn domain_event_dim(&self) -> usize {
        self.event_dim
    }
}

/// Sums the `n` rightmost dims.
pub(crate) fn sum_rightmost(t: &Tensor, n: usize) -> Result<Tensor> {
    if n == 0 {
        return Ok(t.shallow_clone());
    }
    let dims: Vec<i64> = (1..=n as i64).map(|i| -i).collect();
    Ok(t.f_sum_dim_intlist(dims.as_slice(), false, None::<tch::Kind>)?)
}

/// `y = tanh(x)`, onto `(-1, 1)`.
#[derive(Debug, Clone, Copy)]
pub struct TanhTransform;

impl Transform for TanhTransform {
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::Interval((-1.0).into(), 1.0.into())
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_tanh()?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        // Clamped like torch's: atanh(±1) is infinite.
        let eps = crate::distributions::finfo_eps(y.kind());
        Ok(y.f_clamp(-1.0 + eps, 1.0 - eps)?.f_atanh()?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // log(1 - tanh²x) = 2 (log 2 - x - softplus(-2x)), stable for large |x|.
        let t = x
            .f_mul_scalar(-2.0)?
            .f_softplus()?
            .f_add(x)?
            .f_neg()?
            .f_add_scalar(std::f64::consts::LN_2)?;
        Ok(t.f_mul_scalar(2.0)?)
    }
}

/// `y = x^exponent` on the positive reals.
#[derive(Debug, Clone)]
pub struct PowerTransform {
    exponent: Bound,
}

impl PowerTransform {
    /// `y = x^exponent` (a number or a tensor of exponents).
    pub fn new(exponent: impl Into<Bound>) -> Self {
        PowerTransform {
            exponent: exponent.into(),
        }
    }
}

impl Transform for PowerTransform {
    fn sign(&self) -> Option<f64> {
        match &self.exponent {
            Bound::Scalar(p) => Some(p.signum()),
            Bound::Tensor(_) => None,
        }
    }
    fn codomain(&self) -> Constraint {
        Constraint::Positive
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_pow(&self.exponent.like(x)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_pow(&self.exponent.like(y)?.f_reciprocal()?)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        // |p x^(p-1)| = |p y / x|
        Ok(self
            .exponent
            .like(x)?
            .f_mul(y)?
            .f_div(x)?
            .f_abs()?
            .f_log()?)
    }
}

/// `y = |x|`. Not bijective (torch's `AbsTransform`): `inverse` returns `y`, one preimage, and
/// there is no log-Jacobian.
#[derive(Debug, Clone, Copy)]
pub struct AbsTransform;

impl Transform for AbsTransform {
    fn codomain(&self) -> Constraint {
        Constraint::Nonnegative
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_abs()?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.shallow_clone())
    }
    fn log_abs_det_jacobian(&self, _x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Err(crate::error::Error::Unsupported(
            "AbsTransform is not bijective and has no log-Jacobian".into(),
        ))
    }
}

/// Applies transforms in order: `y = t_n(...t_1(x))`.
#[derive(Debug, Clone)]
pub struct ComposeTransform {
    parts: Vec<TransformRef>,
}

impl ComposeTransform {
    /// The composition, first transform applied first.
    pub fn new(parts: Vec<TransformRef>) -> Self {
        ComposeTransform { parts }
    }
}

impl Transform for ComposeTransform {
    fn sign(&self) -> Option<f64> {
        self.parts
            .iter()
            .try_fold(1.0, |s, t| t.sign().map(|x| s * x))
    }
    fn codomain(&self) -> Constraint {
        self.parts.last().map_or(Constraint::Real, |t| t.codomain())
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.shallow_clone();
        for t in &self.parts {
            y = t.forward(&y)?;
        }
        Ok(y)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let mut x = y.shallow_clone();
        for t in self.parts.iter().rev() {
            x = t.inverse(&x)?;
        }
        Ok(x)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        let mut cur = x.shallow_clone();
        for t in &self.parts {
            let next = t.forward(&cur)?;
            let ladj = t.log_abs_det_jacobian(&cur, &next)?;
            total = Some(match total {
                None => ladj,
                Some(s) => s.f_add(&ladj)?,
            });
            cur = next;
        }
        match total {
            Some(t) => Ok(t),
            None => Ok(x.f_zeros_like()?),
        }
    }
    fn domain_event_dim(&self) -> usize {
        self.parts.first().map_or(0, |t| t.domain_event_dim())
    }
    fn codomain_event_dim(&self) -> usize {
        self.parts.last().map_or(0, |t| t.codomain_event_dim())
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.parts
            .iter()
            .fold(shape.to_vec(), |s, t| t.forward_shape(&s))
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.parts
            .iter()
            .rev()
            .fold(shape.to_vec(), |s, t| t.inverse_shape(&s))
    }
}

/// `y = log(1 + exp(x))`, onto the positive reals.
#[derive(Debug, Clone, Copy)]
pub struct SoftplusTransform;

impl Transform for SoftplusTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_softplus()?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        // x = y + log(1 - exp(-y)), stable for small and large y.
        Ok(y.f_add(&y.f_neg()?.f_expm1()?.f_neg()?.f_log()?)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // log σ(x) = -softplus(-x)
        Ok(x.f_neg()?.f_softplus()?.f_neg()?)
    }
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::Positive
    }
}

/// `y = softmax(x)` along the last dim, onto the simplex. Not bijective (adding a constant to
/// `x` does not change `y`); `inverse` returns `log y`, one preimage. This is
/// `transform_to(simplex)`; `biject_to(simplex)` is the [`super::StickBreakingTransform`].
#[derive(Debug, Clone, Copy)]
pub struct SoftmaxTransform;

impl Transform for SoftmaxTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = x.f_sub(&x.f_amax([-1].as_slice(), true)?)?.f_exp()?;
        Ok(z.f_div(&z.f_sum_dim_intlist(-1, true, None::<tch::Kind>)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_log()?)
    }
    fn log_abs_det_jacobian(&self, _x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Err(crate::error::Error::Unsupported(
            "SoftmaxTransform is not bijective and has no log-Jacobian; use biject_to".into(),
        ))
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn codomain(&self) -> Constraint {
        Constraint::Simplex
    }
}
