//! Bijective transforms between the reals and constrained sets, and the registries that pick one
//! for a constraint: [`biject_to`] (a bijection onto the constraint, used by HMC and autoguides)
//! and [`transform_to`] (any transform onto it, used for constrained params). They differ where a
//! cheaper non-bijective map exists, as in Pyro.

use std::fmt;
use std::rc::Rc;

use tch::Tensor;

use crate::constraints::Constraint;
use crate::error::{Error, Result};

mod basic;
mod flows;
mod matrix;
mod stick_breaking;

pub use basic::{
    AffineTransform, ComposeTransform, ExpTransform, IdentityTransform, SigmoidTransform,
    SoftmaxTransform, SoftplusTransform,
};
pub use flows::{
    AffineAutoregressive, AffineCoupling, BatchNorm, Permute, Planar, Radial, Spline,
    SplineCoupling, TransformModule, TransformModuleRef,
};
pub use matrix::{CorrCholeskyTransform, LowerCholeskyTransform, PositiveDefiniteTransform};
pub use stick_breaking::StickBreakingTransform;

/// A bijection `y = f(x)` with its inverse and log-Jacobian.
pub trait Transform: fmt::Debug {
    /// `f(x)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// `f⁻¹(y)`.
    fn inverse(&self, y: &Tensor) -> Result<Tensor>;
    /// `log |det ∂f/∂x|`, summed over the event dims (shape: batch shape).
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor>;
    /// Event dims of the input.
    fn domain_event_dim(&self) -> usize {
        0
    }
    /// Event dims of the output.
    fn codomain_event_dim(&self) -> usize {
        self.domain_event_dim()
    }
    /// The shape of `f(x)` for an input of `shape`.
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        shape.to_vec()
    }
    /// The shape of `f⁻¹(y)` for an output of `shape`.
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        shape.to_vec()
    }
    /// For a monotone elementwise transform, the sign of `f'` (`1.0` or `-1.0`); `None` for
    /// others.
    fn sign(&self) -> Option<f64> {
        None
    }
    /// The set `f` maps onto (as far as it is known; `real` by default).
    fn codomain(&self) -> Constraint {
        Constraint::Real
    }
}

/// A shared transform.
pub type TransformRef = Rc<dyn Transform>;

/// A bijection from the reals onto `c`.
pub fn biject_to(c: &Constraint) -> Result<TransformRef> {
    registry(c, true)
}

/// A transform from the reals onto `c` (not necessarily bijective).
pub fn transform_to(c: &Constraint) -> Result<TransformRef> {
    registry(c, false)
}

fn registry(c: &Constraint, bijective: bool) -> Result<TransformRef> {
    Ok(match c {
        Constraint::Real | Constraint::RealVector => Rc::new(IdentityTransform),
        Constraint::Positive | Constraint::Nonnegative => Rc::new(ExpTransform),
        Constraint::GreaterThan(a) | Constraint::GreaterThanEq(a) => {
            Rc::new(ComposeTransform::new(vec![
                Rc::new(ExpTransform),
                Rc::new(AffineTransform::new(*a, 1.0)),
            ]))
        }
        Constraint::LessThan(b) => Rc::new(ComposeTransform::new(vec![
            Rc::new(ExpTransform),
            Rc::new(AffineTransform::new(*b, -1.0)),
        ])),
        Constraint::UnitInterval => Rc::new(SigmoidTransform),
        Constraint::Interval(a, b) => Rc::new(ComposeTransform::new(vec![
            Rc::new(SigmoidTransform),
            Rc::new(AffineTransform::new(*a, b - a)),
        ])),
        Constraint::Simplex if bijective => Rc::new(StickBreakingTransform),
        Constraint::Simplex => Rc::new(SoftmaxTransform),
        Constraint::LowerCholesky => Rc::new(LowerCholeskyTransform),
        Constraint::PositiveDefinite => Rc::new(PositiveDefiniteTransform),
        Constraint::CorrCholesky => Rc::new(CorrCholeskyTransform),
        Constraint::Independent(base, _) => registry(base, bijective)?,
        other => {
            return Err(Error::Unsupported(format!(
                "no transform onto the constraint `{other}` is registered"
            )))
        }
    })
}
