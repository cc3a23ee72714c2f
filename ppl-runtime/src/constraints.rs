//! Constraints: the sets that distribution supports and constrained params live in.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// A bound of an interval-type constraint (`interval`, `greater_than`, ...): one number, or a
/// tensor of bounds that broadcasts against the values, as torch's constraints hold (batched
/// `Uniform(low, high)` has one interval per element).
///
/// A tensor bound is detached: constraints describe sets, and the transforms built from them
/// (for HMC, autoguides and constrained params) are fixed once, as Pyro fixes them from the
/// prototype trace. Its copies in other dtypes or on other devices are made once and kept.
#[derive(Clone, Debug)]
pub enum Bound {
    /// The same bound for every element.
    Scalar(f64),
    /// One bound per element (broadcast against the values).
    Tensor(TensorBound),
}

/// A tensor-valued [`Bound`]: shared, detached, with cached copies per dtype and device.
#[derive(Clone)]
pub struct TensorBound(Arc<TensorBoundInner>);

struct TensorBoundInner {
    /// The bound as given, then its copies in other dtypes and on other devices.
    copies: Mutex<Vec<Tensor>>,
}

impl TensorBound {
    /// A tensor bound (detached from any autograd graph).
    pub fn new(t: &Tensor) -> TensorBound {
        let t = t.f_detach().unwrap_or_else(|_| t.shallow_clone());
        TensorBound(Arc::new(TensorBoundInner {
            copies: Mutex::new(vec![t]),
        }))
    }

    fn copies(&self) -> Result<std::sync::MutexGuard<'_, Vec<Tensor>>> {
        self.0
            .copies
            .lock()
            .map_err(|_| Error::Invalid("a constraint bound's lock was poisoned".into()))
    }

    /// The bound as given (detached).
    pub fn tensor(&self) -> Result<Tensor> {
        let copies = self.copies()?;
        Ok(copies[0].f_detach()?)
    }

    /// The bound in `x`'s float dtype (or its own, for integer `x`) and on `x`'s device.
    pub fn like(&self, x: &Tensor) -> Result<Tensor> {
        let mut copies = self.copies()?;
        let kind = if crate::distributions::is_float(x.kind()) {
            x.kind()
        } else {
            copies[0].kind()
        };
        let device = x.device();
        if let Some(t) = copies
            .iter()
            .find(|t| t.kind() == kind && t.device() == device && !t.requires_grad())
        {
            return Ok(t.shallow_clone());
        }
        let t = copies[0].f_detach()?.f_to_kind(kind)?.f_to_device(device)?;
        copies.push(t.shallow_clone());
        Ok(t)
    }

    /// The shape of the bound.
    pub fn shape(&self) -> Vec<i64> {
        self.copies().map(|c| c[0].size()).unwrap_or_default()
    }

    /// The bound's values in row-major order, as float64.
    pub fn values(&self) -> Result<Vec<f64>> {
        let t = self
            .tensor()?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?
            .f_reshape([-1])?
            .f_contiguous()?;
        Ok(Vec::<f64>::try_from(&t)?)
    }
}

impl fmt::Debug for TensorBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Bound::Tensor(self.clone()))
    }
}

impl PartialEq for Bound {
    fn eq(&self, other: &Bound) -> bool {
        match (self, other) {
            (Bound::Scalar(a), Bound::Scalar(b)) => a == b,
            (Bound::Tensor(a), Bound::Tensor(b)) => {
                Arc::ptr_eq(&a.0, &b.0)
                    || (a.shape() == b.shape()
                        && matches!((a.values(), b.values()), (Ok(x), Ok(y)) if x == y))
            }
            _ => false,
        }
    }
}

impl From<f64> for Bound {
    fn from(v: f64) -> Bound {
        Bound::Scalar(v)
    }
}
impl From<f32> for Bound {
    fn from(v: f32) -> Bound {
        Bound::Scalar(v as f64)
    }
}
impl From<&Tensor> for Bound {
    fn from(t: &Tensor) -> Bound {
        Bound::Tensor(TensorBound::new(t))
    }
}
impl From<Tensor> for Bound {
    fn from(t: Tensor) -> Bound {
        Bound::Tensor(TensorBound::new(&t))
    }
}

impl Bound {
    /// The bound as a tensor like `x` (see [`TensorBound::like`]); a scalar becomes a 0-dim
    /// tensor.
    pub fn like(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Bound::Scalar(v) => {
                let kind = if crate::distributions::is_float(x.kind()) {
                    x.kind()
                } else {
                    Kind::Double
                };
                Ok(Tensor::f_scalar_tensor(*v, (kind, x.device()))?)
            }
            Bound::Tensor(t) => t.like(x),
        }
    }

    /// The scalar, if the bound is one.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            Bound::Scalar(v) => Some(*v),
            Bound::Tensor(_) => None,
        }
    }

    /// `self - other`, elementwise.
    pub fn sub(&self, other: &Bound) -> Result<Bound> {
        Ok(match (self, other) {
            (Bound::Scalar(a), Bound::Scalar(b)) => Bound::Scalar(a - b),
            (Bound::Tensor(a), Bound::Scalar(b)) => a.tensor()?.f_sub_scalar(*b)?.into(),
            (Bound::Scalar(a), Bound::Tensor(b)) => b.tensor()?.f_neg()?.f_add_scalar(*a)?.into(),
            (Bound::Tensor(a), Bound::Tensor(b)) => a.tensor()?.f_sub(&b.tensor()?)?.into(),
        })
    }

    /// `-self`.
    pub fn neg(&self) -> Result<Bound> {
        Ok(match self {
            Bound::Scalar(a) => Bound::Scalar(-a),
            Bound::Tensor(a) => a.tensor()?.f_neg()?.into(),
        })
    }

    /// `x >= self` (`strict`: `x > self`), elementwise.
    fn below(&self, x: &Tensor, strict: bool) -> Result<Tensor> {
        Ok(match (self, strict) {
            (Bound::Scalar(a), false) => x.f_ge(*a)?,
            (Bound::Scalar(a), true) => x.f_gt(*a)?,
            (Bound::Tensor(a), false) => x.f_ge_tensor(&a.like(x)?)?,
            (Bound::Tensor(a), true) => x.f_gt_tensor(&a.like(x)?)?,
        })
    }

    /// `x <= self` (`strict`: `x < self`), elementwise.
    fn above(&self, x: &Tensor, strict: bool) -> Result<Tensor> {
        Ok(match (self, strict) {
            (Bound::Scalar(b), false) => x.f_le(*b)?,
            (Bound::Scalar(b), true) => x.f_lt(*b)?,
            (Bound::Tensor(b), false) => x.f_le_tensor(&b.like(x)?)?,
            (Bound::Tensor(b), true) => x.f_lt_tensor(&b.like(x)?)?,
        })
    }
}

impl fmt::Display for Bound {
    /// A scalar as `f64`'s `{:?}` (round-trips exactly); a tensor as `[shape|values]`, e.g.
    /// `[2x2|0.0,1.0,2.0,3.0]` (`[|0.5]` for a 0-dim tensor).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Scalar(v) => write!(f, "{v:?}"),
            Bound::Tensor(t) => {
                let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
                let values: Vec<String> = t
                    .values()
                    .map_err(|_| fmt::Error)?
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect();
                write!(f, "[{}|{}]", shape.join("x"), values.join(","))
            }
        }
    }
}

impl FromStr for Bound {
    type Err = Error;
    fn from_str(s: &str) -> Result<Bound> {
        let bad = || Error::Invalid(format!("unknown constraint bound `{s}`"));
        let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
            return s.parse::<f64>().map(Bound::Scalar).map_err(|_| bad());
        };
        let (shape, values) = inner.split_once('|').ok_or_else(bad)?;
        let shape = if shape.is_empty() {
            Vec::new()
        } else {
            shape
                .split('x')
                .map(|d| d.parse::<i64>().map_err(|_| bad()))
                .collect::<Result<Vec<i64>>>()?
        };
        let values = values
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<Vec<f64>>>()?;
        if values.len() as i64 != shape.iter().product::<i64>() {
            return Err(bad());
        }
        Ok(Tensor::f_from_slice(&values)?
            .f_reshape(shape.as_slice())?
            .into())
    }
}

/// A constraint on values.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Constraint {
    /// All reals.
    Real,
    /// Real vectors (event dim 1).
    RealVector,
    /// `x > 0`.
    Positive,
    /// `x >= 0`.
    Nonnegative,
    /// `0 <= x <= 1`.
    UnitInterval,
    /// `lower <= x <= upper`.
    Interval(Bound, Bound),
    /// `lower <= x < upper`.
    HalfOpenInterval(Bound, Bound),
    /// `x > lower`.
    GreaterThan(Bound),
    /// `x >= lower`.
    GreaterThanEq(Bound),
    /// `x < upper`.
    LessThan(Bound),
    /// `x > 0`, reached through softplus rather than exp by [`crate::transforms::transform_to`]
    /// and [`crate::transforms::biject_to`] (Pyro's `softplus_positive`).
    SoftplusPositive,
    /// Nonnegative vectors summing to one (event dim 1).
    Simplex,
    /// Lower-triangular matrices with positive diagonal (event dim 2).
    LowerCholesky,
    /// Lower-Cholesky factors reached through softplus on the diagonal (event dim 2).
    SoftplusLowerCholesky,
    /// Lower-triangular matrices with a unit diagonal (event dim 2).
    UnitLowerCholesky,
    /// Lower-triangular matrices (event dim 2).
    LowerTriangular,
    /// Symmetric positive-definite matrices (event dim 2).
    PositiveDefinite,
    /// Symmetric positive-semidefinite matrices (event dim 2).
    PositiveSemidefinite,
    /// Symmetric matrices (event dim 2).
    Symmetric,
    /// Square matrices (event dim 2).
    Square,
    /// Correlation matrices: positive definite with a unit diagonal (event dim 2).
    CorrMatrix,
    /// Cholesky factors of correlation matrices (event dim 2).
    CorrCholesky,
    /// Strictly increasing real vectors (event dim 1).
    OrderedVector,
    /// Strictly increasing positive vectors (event dim 1).
    PositiveOrderedVector,
    /// Unit-norm vectors (event dim 1).
    Sphere,
    /// Integers in `lower..=upper`.
    IntegerInterval(i64, i64),
    /// Integers.
    Integer,
    /// Integers `>= 0`.
    NonnegativeInteger,
    /// Integers `>= 1`.
    PositiveInteger,
    /// `{0, 1}`.
    Boolean,
    /// One-hot vectors (event dim 1).
    OneHot,
    /// Nonnegative integer vectors summing to at most `upper` (event dim 1): the support of
    /// `Multinomial(upper, ...)`.
    Multinomial(i64),
    /// A base constraint with `n` more event dims.
    Independent(Box<Constraint>, usize),
    /// Pieces of `dim` of the given lengths, each in its own constraint (torch's `cat`).
    Cat(Vec<Constraint>, i64, Vec<i64>),
    /// Slices of `dim`, each in its own constraint (torch's `stack`).
    Stack(Vec<Constraint>, i64),
}

/// All reals.
pub fn real() -> Constraint {
    Constraint::Real
}
/// Real vectors.
pub fn real_vector() -> Constraint {
    Constraint::RealVector
}
/// `x > 0`.
pub fn positive() -> Constraint {
    Constraint::Positive
}
/// `x >= 0`.
pub fn nonnegative() -> Constraint {
    Constraint::Nonnegative
}
/// `0 <= x <= 1`.
pub fn unit_interval() -> Constraint {
    Constraint::UnitInterval
}
/// `lower <= x <= upper`; each bound a number or a tensor (per-element bounds).
pub fn interval(lower: impl Into<Bound>, upper: impl Into<Bound>) -> Constraint {
    Constraint::Interval(lower.into(), upper.into())
}
/// `lower <= x < upper`; each bound a number or a tensor.
pub fn half_open_interval(lower: impl Into<Bound>, upper: impl Into<Bound>) -> Constraint {
    Constraint::HalfOpenInterval(lower.into(), upper.into())
}
/// `x > lower`; a number or a tensor.
pub fn greater_than(lower: impl Into<Bound>) -> Constraint {
    Constraint::GreaterThan(lower.into())
}
/// `x >= lower`; a number or a tensor.
pub fn greater_than_eq(lower: impl Into<Bound>) -> Constraint {
    Constraint::GreaterThanEq(lower.into())
}
/// `x < upper`; a number or a tensor.
pub fn less_than(upper: impl Into<Bound>) -> Constraint {
    Constraint::LessThan(upper.into())
}
/// `x > 0`, through softplus.
pub fn softplus_positive() -> Constraint {
    Constraint::SoftplusPositive
}
/// The probability simplex.
pub fn simplex() -> Constraint {
    Constraint::Simplex
}
/// Lower-Cholesky factors.
pub fn lower_cholesky() -> Constraint {
    Constraint::LowerCholesky
}
/// Lower-Cholesky factors, through softplus on the diagonal.
pub fn softplus_lower_cholesky() -> Constraint {
    Constraint::SoftplusLowerCholesky
}
/// Lower-triangular matrices with a unit diagonal.
pub fn unit_lower_cholesky() -> Constraint {
    Constraint::UnitLowerCholesky
}
/// Lower-triangular matrices.
pub fn lower_triangular() -> Constraint {
    Constraint::LowerTriangular
}
/// Positive-definite matrices.
pub fn positive_definite() -> Constraint {
    Constraint::PositiveDefinite
}
/// Positive-semidefinite matrices.
pub fn positive_semidefinite() -> Constraint {
    Constraint::PositiveSemidefinite
}
/// Symmetric matrices.
pub fn symmetric() -> Constraint {
    Constraint::Symmetric
}
/// Square matrices.
pub fn square() -> Constraint {
    Constraint::Square
}
/// Correlation matrices.
pub fn corr_matrix() -> Constraint {
    Constraint::CorrMatrix
}
/// Correlation Cholesky factors.
pub fn corr_cholesky() -> Constraint {
    Constraint::CorrCholesky
}
/// Strictly increasing vectors.
pub fn ordered_vector() -> Constraint {
    Constraint::OrderedVector
}
/// Strictly increasing positive vectors.
pub fn positive_ordered_vector() -> Constraint {
    Constraint::PositiveOrderedVector
}
/// Unit-norm vectors.
pub fn sphere() -> Constraint {
    Constraint::Sphere
}
/// Integers in `lower..=upper`.
pub fn integer_interval(lower: i64, upper: i64) -> Constraint {
    Constraint::IntegerInterval(lower, upper)
}
/// Integers.
pub fn integer() -> Constraint {
    Constraint::Integer
}
/// Integers `>= 0`.
pub fn nonnegative_integer() -> Constraint {
    Constraint::NonnegativeInteger
}
/// Integers `>= 1`.
pub fn positive_integer() -> Constraint {
    Constraint::PositiveInteger
}
/// `{0, 1}`.
pub fn boolean() -> Constraint {
    Constraint::Boolean
}
/// One-hot vectors.
pub fn one_hot() -> Constraint {
    Constraint::OneHot
}
/// Nonnegative integer vectors summing to at most `upper`.
pub fn multinomial(upper: i64) -> Constraint {
    Constraint::Multinomial(upper)
}
/// `parts` along `dim`, piece `i` of length `lengths[i]` in `parts[i]` (torch's `cat`).
pub fn cat(parts: Vec<Constraint>, dim: i64, lengths: Vec<i64>) -> Constraint {
    Constraint::Cat(parts, dim, lengths)
}
/// Slice `i` of `dim` in `parts[i]` (torch's `stack`).
pub fn stack(parts: Vec<Constraint>, dim: i64) -> Constraint {
    Constraint::Stack(parts, dim)
}

fn is_int(v: &Tensor) -> Result<Tensor> {
    Ok(v.f_eq_tensor(&v.f_floor()?)?)
}

impl Constraint {
    /// Number of rightmost dims that form one constrained event.
    pub fn event_dim(&self) -> usize {
        use Constraint::*;
        match self {
            RealVector
            | Simplex
            | OrderedVector
            | PositiveOrderedVector
            | Sphere
            | OneHot
            | Multinomial(_) => 1,
            LowerCholesky
            | SoftplusLowerCholesky
            | UnitLowerCholesky
            | LowerTriangular
            | PositiveDefinite
            | PositiveSemidefinite
            | Symmetric
            | Square
            | CorrMatrix
            | CorrCholesky => 2,
            Independent(c, n) => c.event_dim() + n,
            Cat(parts, ..) => parts.iter().map(|c| c.event_dim()).max().unwrap_or(0),
            Stack(parts, dim) => {
                let d = parts.iter().map(|c| c.event_dim()).max().unwrap_or(0);
                // Stacking along a dim inside the event adds one event dim.
                if *dim + (d as i64) < 0 {
                    d + 1
                } else {
                    d
                }
            }
            _ => 0,
        }
    }

    /// Whether the constrained set is discrete.
    pub fn is_discrete(&self) -> bool {
        use Constraint::*;
        match self {
            IntegerInterval(..) | Integer | NonnegativeInteger | PositiveInteger | Boolean
            | OneHot | Multinomial(_) => true,
            Independent(c, _) => c.is_discrete(),
            Cat(parts, ..) | Stack(parts, _) => parts.iter().any(|c| c.is_discrete()),
            _ => false,
        }
    }

    /// For elementwise constraints on a single number: the membership test, without tensor ops.
    pub fn check_scalar(&self) -> Option<Box<dyn Fn(f64) -> bool>> {
        Some(match self.clone() {
            Constraint::Real => Box::new(|v: f64| !v.is_nan()),
            Constraint::Positive | Constraint::SoftplusPositive => Box::new(|v| v > 0.0),
            Constraint::Nonnegative => Box::new(|v| v >= 0.0),
            Constraint::UnitInterval => Box::new(|v| (0.0..=1.0).contains(&v)),
            Constraint::Interval(a, b) => {
                let (a, b) = (a.as_scalar()?, b.as_scalar()?);
                Box::new(move |v| v >= a && v <= b)
            }
            Constraint::HalfOpenInterval(a, b) => {
                let (a, b) = (a.as_scalar()?, b.as_scalar()?);
                Box::new(move |v| v >= a && v < b)
            }
            Constraint::GreaterThan(a) => {
                let a = a.as_scalar()?;
                Box::new(move |v| v > a)
            }
            Constraint::GreaterThanEq(a) => {
                let a = a.as_scalar()?;
                Box::new(move |v| v >= a)
            }
            Constraint::LessThan(b) => {
                let b = b.as_scalar()?;
                Box::new(move |v| v < b)
            }
            Constraint::IntegerInterval(a, b) => {
                Box::new(move |v| v.floor() == v && v >= a as f64 && v <= b as f64)
            }
            Constraint::Integer => Box::new(|v| v.floor() == v),
            Constraint::NonnegativeInteger => Box::new(|v| v.floor() == v && v >= 0.0),
            Constraint::PositiveInteger => Box::new(|v| v.floor() == v && v >= 1.0),
            Constraint::Boolean => Box::new(|v| v == 0.0 || v == 1.0),
            _ => return None,
        })
    }

    /// A boolean tensor: whether each event of `value` satisfies the constraint (shape: `value`'s
    /// shape less the event dims).
    pub fn check(&self, value: &Tensor) -> Result<Tensor> {
        use Constraint::*;
        let v = value;
        let t = match self {
            Real => v.f_eq_tensor(v)?,
            RealVector => all_last(v.f_eq_tensor(v)?, 1)?,
            Positive | SoftplusPositive => v.f_gt(0.0)?,
            Nonnegative => v.f_ge(0.0)?,
            UnitInterval => v.f_ge(0.0)?.f_logical_and(&v.f_le(1.0)?)?,
            Interval(a, b) => a.below(v, false)?.f_logical_and(&b.above(v, false)?)?,
            HalfOpenInterval(a, b) => a.below(v, false)?.f_logical_and(&b.above(v, true)?)?,
            GreaterThan(a) => a.below(v, true)?,
            GreaterThanEq(a) => a.below(v, false)?,
            LessThan(b) => b.above(v, true)?,
            Simplex => {
                let nonneg = all_last(v.f_ge(0.0)?, 1)?;
                let sums = v.f_sum_dim_intlist(-1, false, None)?;
                let close = sums.f_sub_scalar(1.0)?.f_abs()?.f_lt(1e-6)?;
                nonneg.f_logical_and(&close)?
            }
            LowerCholesky | SoftplusLowerCholesky | CorrCholesky => {
                let tril = v.f_tril(0)?.f_eq_tensor(v)?;
                let diag = v.f_diagonal(0, -2, -1)?.f_gt(0.0)?;
                let ok = all_last(tril, 2)?.f_logical_and(&all_last(diag, 1)?)?;
                if matches!(self, CorrCholesky) {
                    // Rows of unit norm.
                    let norms = v.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?;
                    let unit = all_last(norms.f_sub_scalar(1.0)?.f_abs()?.f_le(1e-6)?, 1)?;
                    ok.f_logical_and(&unit)?
                } else {
                    ok
                }
            }
            UnitLowerCholesky => {
                let tril = all_last(v.f_tril(0)?.f_eq_tensor(v)?, 2)?;
                tril.f_logical_and(&all_last(v.f_diagonal(0, -2, -1)?.f_eq(1.0)?, 1)?)?
            }
            LowerTriangular => all_last(v.f_tril(0)?.f_eq_tensor(v)?, 2)?,
            Square => {
                let n = v.size();
                let square = n.len() >= 2 && n[n.len() - 1] == n[n.len() - 2];
                let batch: Vec<i64> = n[..n.len().saturating_sub(2)].to_vec();
                Tensor::f_full(batch.as_slice(), square as i64, (Kind::Bool, v.device()))?
            }
            Symmetric => all_last(v.f_isclose(&v.f_transpose(-2, -1)?, 1e-5, 1e-8, false)?, 2)?,
            PositiveDefinite | PositiveSemidefinite => {
                let sym = all_last(v.f_isclose(&v.f_transpose(-2, -1)?, 1e-5, 1e-8, false)?, 2)?;
                let eig = v.f_linalg_eigvalsh("L")?;
                let ok = if matches!(self, PositiveDefinite) {
                    eig.f_gt(0.0)?
                } else {
                    eig.f_ge(0.0)?
                };
                sym.f_logical_and(&all_last(ok, 1)?)?
            }
            CorrMatrix => {
                let pd = PositiveDefinite.check(v)?;
                let unit = v
                    .f_diagonal(0, -2, -1)?
                    .f_sub_scalar(1.0)?
                    .f_abs()?
                    .f_le(1e-6)?;
                pd.f_logical_and(&all_last(unit, 1)?)?
            }
            OrderedVector | PositiveOrderedVector => {
                let n = *v.size().last().unwrap_or(&0);
                let inc = if n < 2 {
                    v.f_eq_tensor(v)?
                } else {
                    v.f_narrow(-1, 1, n - 1)?
                        .f_gt_tensor(&v.f_narrow(-1, 0, n - 1)?)?
                };
                let ok = all_last(inc, 1)?;
                if matches!(self, PositiveOrderedVector) {
                    ok.f_logical_and(&all_last(v.f_gt(0.0)?, 1)?)?
                } else {
                    ok
                }
            }
            Sphere => {
                let norms = v.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?;
                norms.f_sub_scalar(1.0)?.f_abs()?.f_le(1e-6)?
            }
            IntegerInterval(a, b) => is_int(v)?
                .f_logical_and(&v.f_ge(*a as f64)?)?
                .f_logical_and(&v.f_le(*b as f64)?)?,
            Integer => is_int(v)?,
            NonnegativeInteger => is_int(v)?.f_logical_and(&v.f_ge(0.0)?)?,
            PositiveInteger => is_int(v)?.f_logical_and(&v.f_ge(1.0)?)?,
            Boolean => v.f_eq(0.0)?.f_logical_or(&v.f_eq(1.0)?)?,
            OneHot => {
                let bin = all_last(v.f_eq(0.0)?.f_logical_or(&v.f_eq(1.0)?)?, 1)?;
                let one = v.f_sum_dim_intlist(-1, false, None)?.f_eq(1.0)?;
                bin.f_logical_and(&one)?
            }
            Multinomial(upper) => {
                let nonneg = all_last(is_int(v)?.f_logical_and(&v.f_ge(0.0)?)?, 1)?;
                let total = v.f_sum_dim_intlist(-1, false, None)?.f_le(*upper as f64)?;
                nonneg.f_logical_and(&total)?
            }
            Independent(c, n) => all_last(c.check(v)?, *n)?,
            Cat(parts, dim, lengths) => self.check_cat(v, parts, *dim, lengths)?,
            Stack(parts, dim) => self.check_stack(v, parts, *dim)?,
        };
        Ok(t)
    }

    /// The value's dim `dim` counted from the left, with an error naming the constraint.
    fn norm_dim(&self, v: &Tensor, dim: i64) -> Result<i64> {
        let n = v.dim() as i64;
        let d = if dim < 0 { dim + n } else { dim };
        if d < 0 || d >= n {
            return Err(Error::Shape(format!(
                "{self}: dim {dim} is out of range for a value of shape {:?}",
                v.size()
            )));
        }
        Ok(d)
    }

    fn check_cat(
        &self,
        v: &Tensor,
        parts: &[Constraint],
        dim: i64,
        lengths: &[i64],
    ) -> Result<Tensor> {
        let d = self.norm_dim(v, dim)?;
        if parts.len() != lengths.len() || lengths.iter().sum::<i64>() != v.size()[d as usize] {
            return Err(Error::Shape(format!(
                "{self}: a value of shape {:?} does not split into pieces of {lengths:?} along \
                 dim {dim}",
                v.size()
            )));
        }
        let event = self.event_dim() as i64;
        let batch_dims = v.dim() as i64 - event;
        let mut checks = Vec::with_capacity(parts.len());
        let mut start = 0;
        for (c, &len) in parts.iter().zip(lengths) {
            let piece = v.f_narrow(d, start, len)?;
            start += len;
            // Each piece's check down to the batch shape.
            let ok = c.check(&piece)?;
            let extra = ok.dim() as i64 - batch_dims;
            checks.push(all_last(ok, extra.max(0) as usize)?);
        }
        if d < batch_dims {
            // The pieces split a batch dim: their checks join along it.
            Ok(Tensor::f_cat(&checks, d)?)
        } else {
            let mut all = checks.remove(0);
            for c in checks {
                all = all.f_logical_and(&c)?;
            }
            Ok(all)
        }
    }

    fn check_stack(&self, v: &Tensor, parts: &[Constraint], dim: i64) -> Result<Tensor> {
        let d = self.norm_dim(v, dim)?;
        if parts.len() as i64 != v.size()[d as usize] {
            return Err(Error::Shape(format!(
                "{self}: a value of shape {:?} has not {} slices along dim {dim}",
                v.size(),
                parts.len()
            )));
        }
        let event = self.event_dim() as i64;
        let batch_dims = v.dim() as i64 - event;
        let mut checks = Vec::with_capacity(parts.len());
        for (i, c) in parts.iter().enumerate() {
            let ok = c.check(&v.f_select(d, i as i64)?)?;
            // Down to the batch shape less the stacked dim when it is a batch dim.
            let keep = if d < batch_dims {
                batch_dims - 1
            } else {
                batch_dims
            };
            let extra = ok.dim() as i64 - keep;
            checks.push(all_last(ok, extra.max(0) as usize)?);
        }
        if d < batch_dims {
            Ok(Tensor::f_stack(&checks, d)?)
        } else {
            let mut all = checks.remove(0);
            for c in checks {
                all = all.f_logical_and(&c)?;
            }
            Ok(all)
        }
    }
}

fn all_last(t: Tensor, n: usize) -> Result<Tensor> {
    let mut t = t;
    for _ in 0..n {
        if t.dim() == 0 {
            break;
        }
        t = t
            .f_to_kind(Kind::Int64)?
            .f_amin(-1, false)?
            .f_to_kind(Kind::Bool)?;
    }
    Ok(t)
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Constraint::*;
        let list = |parts: &[Constraint]| {
            parts
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Real => write!(f, "real"),
            RealVector => write!(f, "real_vector"),
            Positive => write!(f, "positive"),
            Nonnegative => write!(f, "nonnegative"),
            UnitInterval => write!(f, "unit_interval"),
            Interval(a, b) => write!(f, "interval({a},{b})"),
            HalfOpenInterval(a, b) => write!(f, "half_open_interval({a},{b})"),
            GreaterThan(a) => write!(f, "greater_than({a})"),
            GreaterThanEq(a) => write!(f, "greater_than_eq({a})"),
            LessThan(b) => write!(f, "less_than({b})"),
            SoftplusPositive => write!(f, "softplus_positive"),
            Simplex => write!(f, "simplex"),
            LowerCholesky => write!(f, "lower_cholesky"),
            SoftplusLowerCholesky => write!(f, "softplus_lower_cholesky"),
            UnitLowerCholesky => write!(f, "unit_lower_cholesky"),
            LowerTriangular => write!(f, "lower_triangular"),
            PositiveDefinite => write!(f, "positive_definite"),
            PositiveSemidefinite => write!(f, "positive_semidefinite"),
            Symmetric => write!(f, "symmetric"),
            Square => write!(f, "square"),
            CorrMatrix => write!(f, "corr_matrix"),
            CorrCholesky => write!(f, "corr_cholesky"),
            OrderedVector => write!(f, "ordered_vector"),
            PositiveOrderedVector => write!(f, "positive_ordered_vector"),
            Sphere => write!(f, "sphere"),
            IntegerInterval(a, b) => write!(f, "integer_interval({a},{b})"),
            Integer => write!(f, "integer"),
            NonnegativeInteger => write!(f, "nonnegative_integer"),
            PositiveInteger => write!(f, "positive_integer"),
            Boolean => write!(f, "boolean"),
            OneHot => write!(f, "one_hot"),
            Multinomial(n) => write!(f, "multinomial({n})"),
            Independent(c, n) => write!(f, "independent({c},{n})"),
            Cat(parts, dim, lengths) => {
                let l: Vec<String> = lengths.iter().map(|x| x.to_string()).collect();
                write!(f, "cat([{}],{dim},[{}])", list(parts), l.join(","))
            }
            Stack(parts, dim) => write!(f, "stack([{}],{dim})", list(parts)),
        }
    }
}

/// Splits at the commas outside parentheses and brackets.
fn split_top(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0, String::new(), Vec::new());
    for ch in s.chars() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out
}

fn args(s: &str, name: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
    Some(split_top(inner))
}

/// The items of `[a,b,...]`.
fn list_items(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    Some(split_top(inner))
}

impl FromStr for Constraint {
    type Err = Error;
    /// Parses what `Display` writes (used by the param store's file format).
    fn from_str(s: &str) -> Result<Constraint> {
        use Constraint::*;
        let bad = || Error::Invalid(format!("unknown constraint `{s}`"));
        let b = |x: Option<&String>| x.ok_or_else(bad)?.parse::<Bound>();
        let i = |x: Option<&String>| x.ok_or_else(bad)?.parse::<i64>().map_err(|_| bad());
        let parts = |x: Option<&String>| {
            list_items(x.ok_or_else(bad)?)
                .ok_or_else(bad)?
                .iter()
                .map(|c| c.parse::<Constraint>())
                .collect::<Result<Vec<Constraint>>>()
        };
        Ok(match s {
            "real" => Real,
            "real_vector" => RealVector,
            "positive" => Positive,
            "nonnegative" => Nonnegative,
            "unit_interval" => UnitInterval,
            "softplus_positive" => SoftplusPositive,
            "simplex" => Simplex,
            "lower_cholesky" => LowerCholesky,
            "softplus_lower_cholesky" => SoftplusLowerCholesky,
            "unit_lower_cholesky" => UnitLowerCholesky,
            "lower_triangular" => LowerTriangular,
            "positive_definite" => PositiveDefinite,
            "positive_semidefinite" => PositiveSemidefinite,
            "symmetric" => Symmetric,
            "square" => Square,
            "corr_matrix" => CorrMatrix,
            "corr_cholesky" => CorrCholesky,
            "ordered_vector" => OrderedVector,
            "positive_ordered_vector" => PositiveOrderedVector,
            "sphere" => Sphere,
            "integer" => Integer,
            "nonnegative_integer" => NonnegativeInteger,
            "positive_integer" => PositiveInteger,
            "boolean" => Boolean,
            "one_hot" => OneHot,
            _ => {
                if let Some(a) = args(s, "interval") {
                    Interval(b(a.first())?, b(a.get(1))?)
                } else if let Some(a) = args(s, "half_open_interval") {
                    HalfOpenInterval(b(a.first())?, b(a.get(1))?)
                } else if let Some(a) = args(s, "greater_than_eq") {
                    GreaterThanEq(b(a.first())?)
                } else if let Some(a) = args(s, "greater_than") {
                    GreaterThan(b(a.first())?)
                } else if let Some(a) = args(s, "less_than") {
                    LessThan(b(a.first())?)
                } else if let Some(a) = args(s, "integer_interval") {
                    IntegerInterval(i(a.first())?, i(a.get(1))?)
                } else if let Some(a) = args(s, "multinomial") {
                    Multinomial(i(a.first())?)
                } else if let Some(a) = args(s, "independent") {
                    let n = i(a.get(1))?;
                    Independent(
                        Box::new(a[0].parse()?),
                        usize::try_from(n).map_err(|_| bad())?,
                    )
                } else if let Some(a) = args(s, "cat") {
                    let lengths = list_items(a.get(2).ok_or_else(bad)?)
                        .ok_or_else(bad)?
                        .iter()
                        .map(|x| x.parse::<i64>().map_err(|_| bad()))
                        .collect::<Result<Vec<i64>>>()?;
                    Cat(parts(a.first())?, i(a.get(1))?, lengths)
                } else if let Some(a) = args(s, "stack") {
                    Stack(parts(a.first())?, i(a.get(1))?)
                } else {
                    return Err(bad());
                }
            }
        })
    }
}
