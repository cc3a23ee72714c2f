use tch::Tensor;

use super::{Transform, TransformRef};
use crate::constraints::Constraint;
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

/// `y = loc + scale * x` (elementwise, scalar `loc` and `scale`).
#[derive(Debug, Clone, Copy)]
pub struct AffineTransform {
    loc: f64,
    scale: f64,
}

impl AffineTransform {
    /// `y = loc + scale * x`.
    pub fn new(loc: f64, scale: f64) -> Self {
        AffineTransform { loc, scale }
    }
}

impl Transform for AffineTransform {
    fn sign(&self) -> Option<f64> {
        Some(self.scale.signum())
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_mul_scalar(self.scale)?.f_add_scalar(self.loc)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_sub_scalar(self.loc)?.f_div_scalar(self.scale)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(x.f_full_like(self.scale.abs().ln())?)
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
