//! The elementwise functions of one tensor with no other argument: each one's aten names, value
//! and derivative, side by side in one table. The forward pass maps `value` over the input, the
//! backward pass multiplies the incoming gradient by `derivative`, and the rewrite passes treat
//! every entry as elementwise. Adding one is one row here and a case in `tests/jit_ops.rs`.

use super::kernels::{log_sigmoid, sigmoid};
use super::special::{digamma, i0e, i1e, lgamma, trigamma};

/// An elementwise function of one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UnaryFn {
    Neg,
    Exp,
    Log,
    Log1p,
    Expm1,
    Square,
    Sqrt,
    Rsqrt,
    Reciprocal,
    Sigmoid,
    Tanh,
    LogSigmoid,
    Lgamma,
    I0e,
    I1e,
    Digamma,
    Abs,
    Atan,
    Tan,
    Sin,
    Cos,
    Sinh,
    Cosh,
    Erf,
    Erfc,
    Relu,
    Floor,
    Ceil,
    Round,
    Trunc,
    Sign,
}

use UnaryFn::*;

/// `(aten names, function)`: the names the tracer records (with or without `aten::`).
const NAMES: &[(&[&str], UnaryFn)] = &[
    (&["neg"], Neg),
    (&["exp"], Exp),
    (&["log"], Log),
    (&["log1p"], Log1p),
    (&["expm1"], Expm1),
    (&["square"], Square),
    (&["sqrt"], Sqrt),
    (&["rsqrt"], Rsqrt),
    (&["reciprocal"], Reciprocal),
    (&["sigmoid"], Sigmoid),
    (&["tanh"], Tanh),
    (&["log_sigmoid"], LogSigmoid),
    (&["lgamma"], Lgamma),
    (&["special_i0e", "i0e"], I0e),
    (&["special_i1e", "i1e"], I1e),
    (&["digamma"], Digamma),
    (&["abs"], Abs),
    (&["atan", "arctan"], Atan),
    (&["tan"], Tan),
    (&["sin"], Sin),
    (&["cos"], Cos),
    (&["sinh"], Sinh),
    (&["cosh"], Cosh),
    (&["erf"], Erf),
    (&["erfc"], Erfc),
    (&["relu"], Relu),
    (&["floor"], Floor),
    (&["ceil"], Ceil),
    (&["round"], Round),
    (&["trunc"], Trunc),
    (&["sign"], Sign),
];

impl UnaryFn {
    /// The function an aten op name (without `aten::`) stands for.
    pub(super) fn of(name: &str) -> Option<UnaryFn> {
        NAMES
            .iter()
            .find(|(names, _)| names.contains(&name))
            .map(|&(_, f)| f)
    }

    /// Every aten name in the table.
    #[cfg(test)]
    pub(super) fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().flat_map(|(names, _)| names.iter().copied())
    }

    /// `f(x)`.
    pub(super) fn value(self, x: f64) -> f64 {
        match self {
            Neg => -x,
            Exp => x.exp(),
            Log => x.ln(),
            Log1p => x.ln_1p(),
            Expm1 => x.exp_m1(),
            Square => x * x,
            Sqrt => x.sqrt(),
            Rsqrt => 1.0 / x.sqrt(),
            Reciprocal => 1.0 / x,
            Sigmoid => sigmoid(x),
            Tanh => x.tanh(),
            LogSigmoid => log_sigmoid(x),
            Lgamma => lgamma(x),
            I0e => i0e(x),
            I1e => i1e(x),
            Digamma => digamma(x),
            Abs => x.abs(),
            Atan => x.atan(),
            Tan => x.tan(),
            Sin => x.sin(),
            Cos => x.cos(),
            Sinh => x.sinh(),
            Cosh => x.cosh(),
            Erf => libm::erf(x),
            Erfc => libm::erfc(x),
            Relu => x.max(0.0),
            Floor => x.floor(),
            Ceil => x.ceil(),
            Round => x.round_ties_even(),
            Trunc => x.trunc(),
            Sign if x == 0.0 => 0.0,
            Sign => x.signum(),
        }
    }

    /// `f'(x)`, given `x` and `y = f(x)`.
    pub(super) fn derivative(self, x: f64, y: f64) -> f64 {
        match self {
            Neg => -1.0,
            Exp => y,
            Log => 1.0 / x,
            Log1p => 1.0 / (1.0 + x),
            Expm1 => y + 1.0,
            Square => 2.0 * x,
            Sqrt => 0.5 / y,
            Rsqrt => -0.5 * y / x,
            Reciprocal => -y * y,
            Sigmoid => y * (1.0 - y),
            Tanh => 1.0 - y * y,
            LogSigmoid => sigmoid(-x),
            Lgamma => digamma(x),
            // d/dx e^{-|x|} I₀(x) = i1e(x) - sign(x) i0e(x).
            I0e => i1e(x) - x.signum() * y,
            // d/dx e^{-|x|} I₁(x) = i0e(x) - (sign(x) + 1/x) i1e(x) (→ 1/2 at 0).
            I1e if x == 0.0 => 0.5,
            I1e => i0e(x) - (x.signum() + 1.0 / x) * y,
            Digamma => trigamma(x),
            Abs => x.signum() * f64::from(u8::from(x != 0.0)),
            Atan => 1.0 / (1.0 + x * x),
            Tan => 1.0 + y * y,
            Sin => x.cos(),
            Cos => -x.sin(),
            Sinh => x.cosh(),
            Cosh => x.sinh(),
            Erf => std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
            Erfc => -std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
            Relu => f64::from(u8::from(x > 0.0)),
            Floor | Ceil | Round | Trunc | Sign => 0.0,
        }
    }

    /// Piecewise constant: a zero gradient, which the backward pass skips.
    pub(super) fn is_piecewise_constant(self) -> bool {
        matches!(self, Floor | Ceil | Round | Trunc | Sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::graph::{op_of, EwOp, Op};

    /// Every name in the table reaches its function through the op parser, and every derivative
    /// matches a central difference of its value (step 1e-5: truncation error ~1e-10 f''', and
    /// rounding ~1e-16/1e-5 = 1e-11, so 1e-6 relative is far outside both).
    #[test]
    fn table_names_parse_and_derivatives_match_differences() {
        for name in UnaryFn::names() {
            let f = UnaryFn::of(name).expect("in the table");
            assert_eq!(
                op_of(&format!("aten::{name}")),
                Some(Op::Elementwise(EwOp::Unary(f))),
                "{name}"
            );
        }
        for &(_, f) in NAMES {
            for x in [0.37, 1.3, 2.9] {
                let h = 1e-5;
                let numeric = (f.value(x + h) - f.value(x - h)) / (2.0 * h);
                let exact = f.derivative(x, f.value(x));
                assert!(
                    (numeric - exact).abs() <= 1e-6 * (1.0 + exact.abs()),
                    "{f:?} at {x}: {exact} against the difference {numeric}"
                );
            }
        }
    }
}
