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
mod structural;

pub use basic::{
    AbsTransform, AffineTransform, ComposeTransform, ExpTransform, IdentityTransform,
    PowerTransform, SigmoidTransform, SoftmaxTransform, SoftplusTransform, TanhTransform,
};
pub use flows::{
    AffineAutoregressive, AffineCoupling, BatchNorm, Permute, Planar, Radial, Spline,
    SplineCoupling, TransformModule, TransformModuleRef,
};
pub use matrix::{
    CorrCholeskyTransform, CorrMatrixCholeskyTransform, LowerCholeskyAffine,
    LowerCholeskyTransform, PositiveDefiniteTransform, SoftplusLowerCholeskyTransform,
    UnitLowerCholeskyTransform,
};
pub use stick_breaking::StickBreakingTransform;
pub use structural::{
    CatTransform, CumulativeDistributionTransform, DiscreteCosineTransform, HaarTransform,
    IndependentTransform, InverseTransform, NormalizeTransform, OrderedTransform, ReshapeTransform,
    SimplexToOrderedTransform, StackTransform,
};

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
    let compose =
        |parts: Vec<TransformRef>| -> TransformRef { Rc::new(ComposeTransform::new(parts)) };
    Ok(match c {
        Constraint::Real | Constraint::RealVector => Rc::new(IdentityTransform),
        Constraint::Positive | Constraint::Nonnegative => Rc::new(ExpTransform),
        Constraint::SoftplusPositive => Rc::new(SoftplusTransform),
        Constraint::GreaterThan(a) | Constraint::GreaterThanEq(a) => compose(vec![
            Rc::new(ExpTransform),
            Rc::new(AffineTransform::new(a.clone(), 1.0)),
        ]),
        Constraint::LessThan(b) => compose(vec![
            Rc::new(ExpTransform),
            Rc::new(AffineTransform::new(b.clone(), -1.0)),
        ]),
        Constraint::UnitInterval => Rc::new(SigmoidTransform),
        Constraint::Interval(a, b) | Constraint::HalfOpenInterval(a, b) => compose(vec![
            Rc::new(SigmoidTransform),
            Rc::new(AffineTransform::new(a.clone(), b.sub(a)?)),
        ]),
        Constraint::Simplex if bijective => Rc::new(StickBreakingTransform),
        Constraint::Simplex => Rc::new(SoftmaxTransform),
        Constraint::LowerCholesky => Rc::new(LowerCholeskyTransform),
        Constraint::SoftplusLowerCholesky => Rc::new(SoftplusLowerCholeskyTransform),
        Constraint::UnitLowerCholesky => Rc::new(UnitLowerCholeskyTransform),
        Constraint::PositiveDefinite | Constraint::PositiveSemidefinite => {
            Rc::new(PositiveDefiniteTransform)
        }
        Constraint::CorrCholesky => Rc::new(CorrCholeskyTransform),
        Constraint::CorrMatrix => compose(vec![
            Rc::new(CorrCholeskyTransform),
            Rc::new(InverseTransform::new(Rc::new(CorrMatrixCholeskyTransform))),
        ]),
        Constraint::OrderedVector => Rc::new(OrderedTransform),
        Constraint::PositiveOrderedVector => {
            compose(vec![Rc::new(OrderedTransform), Rc::new(ExpTransform)])
        }
        Constraint::Sphere if !bijective => Rc::new(NormalizeTransform::default()),
        Constraint::Independent(base, _) => registry(base, bijective)?,
        Constraint::Cat(parts, dim, lengths) => Rc::new(CatTransform::new(
            parts
                .iter()
                .map(|p| registry(p, bijective))
                .collect::<Result<Vec<_>>>()?,
            *dim,
            lengths.clone(),
        )?),
        Constraint::Stack(parts, dim) => Rc::new(StackTransform::new(
            parts
                .iter()
                .map(|p| registry(p, bijective))
                .collect::<Result<Vec<_>>>()?,
            *dim,
        )),
        other => {
            let what = if bijective { "bijection" } else { "transform" };
            return Err(Error::Unsupported(format!(
                "no {what} onto the constraint `{other}` is registered{}",
                if matches!(other, Constraint::Sphere) {
                    " (the sphere has transform_to, the non-bijective Normalize, but no \
                     bijection from the reals)"
                } else if other.is_discrete() {
                    " (a discrete set has none: enumerate or observe the site)"
                } else {
                    ""
                }
            )));
        }
    })
}
