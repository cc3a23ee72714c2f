//! Constraints: the sets that distribution supports and constrained params live in.

use std::fmt;
use std::str::FromStr;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

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
    Interval(f64, f64),
    /// `x > lower`.
    GreaterThan(f64),
    /// `x >= lower`.
    GreaterThanEq(f64),
    /// `x < upper`.
    LessThan(f64),
    /// Nonnegative vectors summing to one (event dim 1).
    Simplex,
    /// Lower-triangular matrices with positive diagonal (event dim 2).
    LowerCholesky,
    /// Symmetric positive-definite matrices (event dim 2).
    PositiveDefinite,
    /// Cholesky factors of correlation matrices (event dim 2).
    CorrCholesky,
    /// Integers in `lower..=upper`.
    IntegerInterval(i64, i64),
    /// Integers `>= 0`.
    NonnegativeInteger,
    /// `{0, 1}`.
    Boolean,
    /// A base constraint with `n` more event dims.
    Independent(Box<Constraint>, usize),
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
/// `lower <= x <= upper`.
pub fn interval(lower: f64, upper: f64) -> Constraint {
    Constraint::Interval(lower, upper)
}
/// `x > lower`.
pub fn greater_than(lower: f64) -> Constraint {
    Constraint::GreaterThan(lower)
}
/// `x < upper`.
pub fn less_than(upper: f64) -> Constraint {
    Constraint::LessThan(upper)
}
/// The probability simplex.
pub fn simplex() -> Constraint {
    Constraint::Simplex
}
/// Lower-Cholesky factors.
pub fn lower_cholesky() -> Constraint {
    Constraint::LowerCholesky
}
/// Positive-definite matrices.
pub fn positive_definite() -> Constraint {
    Constraint::PositiveDefinite
}
/// Correlation Cholesky factors.
pub fn corr_cholesky() -> Constraint {
    Constraint::CorrCholesky
}
/// Integers in `lower..=upper`.
pub fn integer_interval(lower: i64, upper: i64) -> Constraint {
    Constraint::IntegerInterval(lower, upper)
}
/// Integers `>= 0`.
pub fn nonnegative_integer() -> Constraint {
    Constraint::NonnegativeInteger
}
/// `{0, 1}`.
pub fn boolean() -> Constraint {
    Constraint::Boolean
}

impl Constraint {
    /// Number of rightmost dims that form one constrained event.
    pub fn event_dim(&self) -> usize {
        match self {
            Constraint::RealVector | Constraint::Simplex => 1,
            Constraint::LowerCholesky | Constraint::PositiveDefinite | Constraint::CorrCholesky => {
                2
            }
            Constraint::Independent(c, n) => c.event_dim() + n,
            _ => 0,
        }
    }

    /// Whether the constrained set is discrete.
    pub fn is_discrete(&self) -> bool {
        match self {
            Constraint::IntegerInterval(..)
            | Constraint::NonnegativeInteger
            | Constraint::Boolean => true,
            Constraint::Independent(c, _) => c.is_discrete(),
            _ => false,
        }
    }

    /// For elementwise constraints on a single number: the membership test, without tensor ops.
    pub fn check_scalar(&self) -> Option<Box<dyn Fn(f64) -> bool>> {
        Some(match self.clone() {
            Constraint::Real => Box::new(|v: f64| !v.is_nan()),
            Constraint::Positive => Box::new(|v| v > 0.0),
            Constraint::Nonnegative => Box::new(|v| v >= 0.0),
            Constraint::UnitInterval => Box::new(|v| (0.0..=1.0).contains(&v)),
            Constraint::Interval(a, b) => Box::new(move |v| v >= a && v <= b),
            Constraint::GreaterThan(a) => Box::new(move |v| v > a),
            Constraint::GreaterThanEq(a) => Box::new(move |v| v >= a),
            Constraint::LessThan(b) => Box::new(move |v| v < b),
            Constraint::IntegerInterval(a, b) => {
                Box::new(move |v| v.floor() == v && v >= a as f64 && v <= b as f64)
            }
            Constraint::NonnegativeInteger => Box::new(|v| v.floor() == v && v >= 0.0),
            Constraint::Boolean => Box::new(|v| v == 0.0 || v == 1.0),
            _ => return None,
        })
    }

    /// A boolean tensor: whether each event of `value` satisfies the constraint (shape: `value`'s
    /// shape less the event dims).
    pub fn check(&self, value: &Tensor) -> Result<Tensor> {
        let v = value;
        let t = match self {
            Constraint::Real => v.f_eq_tensor(v)?,
            Constraint::RealVector => all_last(v.f_eq_tensor(v)?, 1)?,
            Constraint::Positive => v.f_gt(0.0)?,
            Constraint::Nonnegative => v.f_ge(0.0)?,
            Constraint::UnitInterval => v.f_ge(0.0)?.f_logical_and(&v.f_le(1.0)?)?,
            Constraint::Interval(a, b) => v.f_ge(*a)?.f_logical_and(&v.f_le(*b)?)?,
            Constraint::GreaterThan(a) => v.f_gt(*a)?,
            Constraint::GreaterThanEq(a) => v.f_ge(*a)?,
            Constraint::LessThan(b) => v.f_lt(*b)?,
            Constraint::Simplex => {
                let nonneg = all_last(v.f_ge(0.0)?, 1)?;
                let sums = v.f_sum_dim_intlist(-1, false, None)?;
                let close = sums.f_sub_scalar(1.0)?.f_abs()?.f_lt(1e-6)?;
                nonneg.f_logical_and(&close)?
            }
            Constraint::LowerCholesky | Constraint::CorrCholesky => {
                let tril = v.f_tril(0)?.f_eq_tensor(v)?;
                let diag = v.f_diagonal(0, -2, -1)?.f_gt(0.0)?;
                all_last(tril, 2)?.f_logical_and(&all_last(diag, 1)?)?
            }
            Constraint::PositiveDefinite => {
                let sym = all_last(v.f_eq_tensor(&v.f_transpose(-2, -1)?)?, 2)?;
                let eig = v.f_linalg_eigvalsh("L")?;
                sym.f_logical_and(&all_last(eig.f_gt(0.0)?, 1)?)?
            }
            Constraint::IntegerInterval(a, b) => {
                let int = v.f_eq_tensor(&v.f_floor()?)?;
                int.f_logical_and(&v.f_ge(*a as f64)?)?
                    .f_logical_and(&v.f_le(*b as f64)?)?
            }
            Constraint::NonnegativeInteger => {
                v.f_eq_tensor(&v.f_floor()?)?.f_logical_and(&v.f_ge(0.0)?)?
            }
            Constraint::Boolean => v.f_eq(0.0)?.f_logical_or(&v.f_eq(1.0)?)?,
            Constraint::Independent(c, n) => all_last(c.check(v)?, *n)?,
        };
        Ok(t)
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
        match self {
            Constraint::Real => write!(f, "real"),
            Constraint::RealVector => write!(f, "real_vector"),
            Constraint::Positive => write!(f, "positive"),
            Constraint::Nonnegative => write!(f, "nonnegative"),
            Constraint::UnitInterval => write!(f, "unit_interval"),
            Constraint::Interval(a, b) => write!(f, "interval({a:?},{b:?})"),
            Constraint::GreaterThan(a) => write!(f, "greater_than({a:?})"),
            Constraint::GreaterThanEq(a) => write!(f, "greater_than_eq({a:?})"),
            Constraint::LessThan(b) => write!(f, "less_than({b:?})"),
            Constraint::Simplex => write!(f, "simplex"),
            Constraint::LowerCholesky => write!(f, "lower_cholesky"),
            Constraint::PositiveDefinite => write!(f, "positive_definite"),
            Constraint::CorrCholesky => write!(f, "corr_cholesky"),
            Constraint::IntegerInterval(a, b) => write!(f, "integer_interval({a},{b})"),
            Constraint::NonnegativeInteger => write!(f, "nonnegative_integer"),
            Constraint::Boolean => write!(f, "boolean"),
            Constraint::Independent(c, n) => write!(f, "independent({c},{n})"),
        }
    }
}

fn args(s: &str, name: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
    // Split at top-level commas.
    let (mut depth, mut cur, mut out) = (0, String::new(), Vec::new());
    for ch in inner.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    Some(out)
}

impl FromStr for Constraint {
    type Err = Error;
    /// Parses what `Display` writes (used by the param store's file format).
    fn from_str(s: &str) -> Result<Constraint> {
        let bad = || Error::Invalid(format!("unknown constraint `{s}`"));
        let f = |x: &String| x.parse::<f64>().map_err(|_| bad());
        let i = |x: &String| x.parse::<i64>().map_err(|_| bad());
        Ok(match s {
            "real" => Constraint::Real,
            "real_vector" => Constraint::RealVector,
            "positive" => Constraint::Positive,
            "nonnegative" => Constraint::Nonnegative,
            "unit_interval" => Constraint::UnitInterval,
            "simplex" => Constraint::Simplex,
            "lower_cholesky" => Constraint::LowerCholesky,
            "positive_definite" => Constraint::PositiveDefinite,
            "corr_cholesky" => Constraint::CorrCholesky,
            "nonnegative_integer" => Constraint::NonnegativeInteger,
            "boolean" => Constraint::Boolean,
            _ => {
                if let Some(a) = args(s, "interval") {
                    Constraint::Interval(f(&a[0])?, f(a.get(1).ok_or_else(bad)?)?)
                } else if let Some(a) = args(s, "greater_than_eq") {
                    Constraint::GreaterThanEq(f(&a[0])?)
                } else if let Some(a) = args(s, "greater_than") {
                    Constraint::GreaterThan(f(&a[0])?)
                } else if let Some(a) = args(s, "less_than") {
                    Constraint::LessThan(f(&a[0])?)
                } else if let Some(a) = args(s, "integer_interval") {
                    Constraint::IntegerInterval(i(&a[0])?, i(a.get(1).ok_or_else(bad)?)?)
                } else if let Some(a) = args(s, "independent") {
                    let n = a
                        .get(1)
                        .ok_or_else(bad)?
                        .parse::<usize>()
                        .map_err(|_| bad())?;
                    Constraint::Independent(Box::new(a[0].parse()?), n)
                } else {
                    return Err(bad());
                }
            }
        })
    }
}
