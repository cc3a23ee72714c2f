//! Elementwise ops (arithmetic, the unary table's functions, comparisons, `where`, clamps, casts,
//! the logits loss): each op's value and its vector-Jacobian product, side by side.

use super::array::{broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::*;
use super::ops::{accumulate, Vjp};
use super::special::{digamma, lgamma};
use crate::error::Result;

/// An elementwise op, its non-tensor arguments decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum EwOp {
    /// `x + alpha y`.
    Add {
        alpha: f64,
    },
    /// `x - alpha y`.
    Sub {
        alpha: f64,
    },
    /// `y - alpha x`.
    Rsub {
        alpha: f64,
    },
    Mul,
    Div,
    /// `log(x / (1 - x))`, `x` clamped to `[eps, 1 - eps]` when given.
    Logit {
        eps: Option<f64>,
    },
    /// `log(1 + exp(beta x)) / beta`, linear above `threshold`.
    Softplus {
        beta: f64,
        threshold: f64,
    },
    /// An elementwise function of one tensor, from the table in `unary.rs`.
    Unary(UnaryFn),
    /// `prim::NumToTensor`, `aten::Int`, `aten::Float`: numbers to 0-d tensors and back.
    Number,
    LogicalAnd,
    LogicalOr,
    Xlogy,
    Maximum,
    Minimum,
    NanToNum {
        nan: f64,
        posinf: f64,
        neginf: f64,
    },
    Mvlgamma {
        p: i64,
    },
    Pow,
    /// `binary_cross_entropy_with_logits` (no weights); `reduction` 0 none, 1 mean, 2 sum.
    Bcewl {
        reduction: i64,
    },
    Where,
    MaskedFill {
        value: f64,
    },
    LogicalNot,
    Clamp {
        lo: f64,
        hi: f64,
    },
    ScalarTensor,
    ToKind,
    Compare(Cmp),
}

impl EwOp {
    /// The op an aten name (without `aten::`) stands for, with default arguments.
    pub(super) fn of(name: &str, kind: &str) -> Option<EwOp> {
        if let Some(f) = UnaryFn::of(name) {
            return Some(EwOp::Unary(f));
        }
        Some(match name {
            "add" | "add_" => EwOp::Add { alpha: 1.0 },
            "sub" | "sub_" => EwOp::Sub { alpha: 1.0 },
            "rsub" => EwOp::Rsub { alpha: 1.0 },
            "mul" | "mul_" => EwOp::Mul,
            "div" | "div_" | "true_divide" => EwOp::Div,
            "logit" => EwOp::Logit { eps: None },
            "softplus" => EwOp::Softplus {
                beta: 1.0,
                threshold: 20.0,
            },
            "logical_and" | "bitwise_and" | "__and__" => EwOp::LogicalAnd,
            "logical_or" | "bitwise_or" | "__or__" => EwOp::LogicalOr,
            "xlogy" => EwOp::Xlogy,
            "maximum" | "max" => EwOp::Maximum,
            "minimum" | "min" => EwOp::Minimum,
            "nan_to_num" => EwOp::NanToNum {
                nan: 0.0,
                posinf: f64::MAX,
                neginf: f64::MIN,
            },
            "mvlgamma" => EwOp::Mvlgamma { p: 1 },
            "Int" | "Float" | "ScalarImplicit" => EwOp::Number,
            _ if kind == "prim::NumToTensor" => EwOp::Number,
            "pow" => EwOp::Pow,
            "binary_cross_entropy_with_logits" => EwOp::Bcewl { reduction: 1 },
            "where" => EwOp::Where,
            "masked_fill" | "masked_fill_" => EwOp::MaskedFill { value: 0.0 },
            "logical_not" => EwOp::LogicalNot,
            "clamp" | "clip" | "clamp_min" | "clamp_max" => EwOp::Clamp {
                lo: f64::NEG_INFINITY,
                hi: f64::INFINITY,
            },
            "scalar_tensor" => EwOp::ScalarTensor,
            "to" | "type_as" => EwOp::ToKind,
            "gt" => EwOp::Compare(Cmp::Gt),
            "ge" => EwOp::Compare(Cmp::Ge),
            "lt" => EwOp::Compare(Cmp::Lt),
            "le" => EwOp::Compare(Cmp::Le),
            "eq" => EwOp::Compare(Cmp::Eq),
            "ne" => EwOp::Compare(Cmp::Ne),
            _ => return None,
        })
    }

    /// Fills in the op's arguments from the node's constant argument slots.
    pub(super) fn decode(&mut self, a: &Args) -> Result<()> {
        match self {
            EwOp::Add { alpha } | EwOp::Sub { alpha } | EwOp::Rsub { alpha } => {
                if let Some(v) = a.arg(2)? {
                    *alpha = float(v)?;
                }
            }
            EwOp::Logit { eps } => {
                if let Some(v) = a.arg(1)? {
                    *eps = opt_float(v)?;
                }
            }
            EwOp::Softplus { beta, threshold } => {
                if let Some(v) = a.arg(1)? {
                    *beta = float(v)?;
                }
                if let Some(v) = a.arg(2)? {
                    *threshold = float(v)?;
                }
            }
            EwOp::NanToNum {
                nan,
                posinf,
                neginf,
            } => {
                let get = |v: Option<&Val>| -> Result<Option<f64>> {
                    v.map(opt_float).transpose().map(Option::flatten)
                };
                *nan = get(a.arg(1)?)?.unwrap_or(0.0);
                *posinf = get(a.arg(2)?)?.unwrap_or(f64::MAX);
                *neginf = get(a.arg(3)?)?.unwrap_or(f64::MIN);
            }
            EwOp::Mvlgamma { p } => *p = int(a.need(1)?)?,
            EwOp::Bcewl { reduction } => {
                if !matches!(a.arg(2)?, None | Some(Val::None))
                    || !matches!(a.arg(3)?, None | Some(Val::None))
                {
                    return Err(a.unsupported(" with weights"));
                }
                *reduction = opt_int(a.arg(4)?)?.unwrap_or(1);
            }
            EwOp::MaskedFill { value } => *value = float(a.need(2)?)?,
            EwOp::Clamp { lo, hi } => {
                let get = |v: Option<&Val>| -> Result<Option<f64>> {
                    v.map(opt_float).transpose().map(Option::flatten)
                };
                if a.kind().ends_with("clamp_min") {
                    *lo = get(a.arg(1)?)?.unwrap_or(f64::NEG_INFINITY);
                } else if a.kind().ends_with("clamp_max") {
                    *hi = get(a.arg(1)?)?.unwrap_or(f64::INFINITY);
                } else {
                    *lo = get(a.arg(1)?)?.unwrap_or(f64::NEG_INFINITY);
                    *hi = get(a.arg(2)?)?.unwrap_or(f64::INFINITY);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The value of `node`.
pub(super) fn forward(op: EwOp, node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let nin = node.ins.len();
    let unary = |f: fn(f64) -> f64| -> Result<Val> { Ok(Val::T(arr(v(0))?.map(f))) };
    Ok(match op {
        EwOp::Add { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x + alpha * y)?),
        EwOp::Sub { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x - alpha * y)?),
        EwOp::Rsub { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| y - alpha * x)?),
        EwOp::Mul => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x * y)?),
        EwOp::Div => {
            if nin > 2 && !matches!(v(2), Val::None) {
                return Err(bad("div with a rounding mode"));
            }
            Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x / y)?)
        }
        EwOp::Logit { eps } => Val::T(arr(v(0))?.map(|x| {
            let x = eps.map_or(x, |e| x.clamp(e, 1.0 - e));
            (x / (1.0 - x)).ln()
        })),
        EwOp::Unary(f) => Val::T(arr(v(0))?.map(|x| f.value(x))),
        EwOp::LogicalAnd => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 && b != 0.0))
        })?),
        EwOp::LogicalOr => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 || b != 0.0))
        })?),
        EwOp::Xlogy => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| {
            if x == 0.0 && !y.is_nan() {
                0.0
            } else {
                x * y.ln()
            }
        })?),
        EwOp::Maximum | EwOp::Minimum if nin == 1 => {
            let x = arr(v(0))?;
            let pick = if op == EwOp::Maximum {
                f64::max
            } else {
                f64::min
            };
            let init = if op == EwOp::Maximum {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            Val::T(Arr::scalar(x.data.iter().fold(init, |m, &y| pick(m, y))))
        }
        EwOp::Maximum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::max)?),
        EwOp::Minimum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::min)?),
        EwOp::NanToNum {
            nan,
            posinf: pinf,
            neginf: ninf,
        } => Val::T(arr(v(0))?.map(|y| {
            if y.is_nan() {
                nan
            } else if y == f64::INFINITY {
                pinf
            } else if y == f64::NEG_INFINITY {
                ninf
            } else {
                y
            }
        })),
        EwOp::Mvlgamma { p } => {
            let c = (p * (p - 1)) as f64 / 4.0 * std::f64::consts::PI.ln();
            Val::T(arr(v(0))?.map(|x| c + (0..p).map(|i| lgamma(x - i as f64 / 2.0)).sum::<f64>()))
        }
        EwOp::Number => {
            let name = node.kind.as_str();
            match v(0) {
                Val::T(a) if name.ends_with("Int") => Val::Int(a.data[0].trunc() as i64),
                Val::T(a) => Val::Float(a.data[0]),
                Val::Int(i) => Val::T(Arr::scalar(*i as f64)),
                Val::Float(x) => Val::T(Arr::scalar(*x)),
                other => other.clone(),
            }
        }
        EwOp::Softplus { beta, threshold } => {
            Val::T(arr(v(0))?.map(|x| softplus(x, beta, threshold)))
        }
        EwOp::Pow => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::powf)?),
        EwOp::ToKind => {
            let x = arr(v(0))?;
            // to(self, dtype, ...), to(self, device, dtype, ...) or type_as(self, other).
            let code = (1..nin.min(3)).find_map(|i| match v(i) {
                Val::Int(c) => Some(*c),
                _ => None,
            });
            Val::T(match code {
                Some(11) => x.map(|y| f64::from(u8::from(y != 0.0))),
                Some(c) if is_integer_kind(c) => x.map(f64::trunc),
                _ => x.clone(),
            })
        }
        EwOp::Bcewl { reduction } => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            let l = zip(&x, &y, |x, y| x.max(0.0) - x * y + (-x.abs()).exp().ln_1p())?;
            Val::T(reduce_loss(l, reduction))
        }
        EwOp::Where => {
            let c = num(v(0))?;
            let a = num(v(1))?;
            let b = num(v(2))?;
            let ab = zip(&a, &b, |_, _| 0.0)?;
            let a = a.expand_to(&ab.shape);
            let b = b.expand_to(&ab.shape);
            let shape = broadcast_shapes(&c.shape, &ab.shape)
                .ok_or_else(|| bad("where: shapes do not broadcast"))?;
            let (c, a, b) = (
                c.expand_to(&shape),
                a.expand_to(&shape),
                b.expand_to(&shape),
            );
            Val::T(Arr {
                shape,
                data: c
                    .data
                    .iter()
                    .zip(a.data.iter().zip(&b.data))
                    .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
                    .collect(),
            })
        }
        EwOp::MaskedFill { value: fill } => Val::T(zip(arr(v(0))?, &*num(v(1))?, |x, m| {
            if m != 0.0 {
                fill
            } else {
                x
            }
        })?),
        EwOp::LogicalNot => unary(|x| f64::from(u8::from(x == 0.0)))?,
        EwOp::Clamp { lo, hi } => {
            let x = arr(v(0))?;
            Val::T(x.map(|y| y.max(lo).min(hi)))
        }
        EwOp::ScalarTensor => Val::T(Arr::scalar(float(v(0))?)),
        EwOp::Compare(c) => {
            let f: fn(f64, f64) -> bool = match c {
                Cmp::Gt => |a, b| a > b,
                Cmp::Ge => |a, b| a >= b,
                Cmp::Lt => |a, b| a < b,
                Cmp::Le => |a, b| a <= b,
                Cmp::Eq => |a, b| a == b,
                Cmp::Ne => |a, b| a != b,
            };
            Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
                f64::from(u8::from(f(a, b)))
            })?)
        }
    })
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(
    op: EwOp,
    node: &Node,
    env: &Env,
    g: Arr,
    grads: &mut [Option<Arr>],
) -> Result<()> {
    let vjp = Vjp { node, env };
    let ins = &node.ins;
    match op {
        EwOp::Add { alpha } | EwOp::Sub { alpha } | EwOp::Rsub { alpha } => {
            let (ca, cb) = match op {
                EwOp::Add { .. } => (1.0, alpha),
                EwOp::Sub { .. } => (1.0, -alpha),
                _ => (-alpha, 1.0),
            };
            // Scalar operands get a sum; full ones a scaled copy, the last of them `g` itself.
            let mut full = Vec::new();
            for (k, c) in [(0usize, ca), (1usize, cb)] {
                if !vjp.wants(k) {
                    continue;
                }
                let operand = num(vjp.v(k))?;
                if operand.numel() == 1 && operand.shape.len() <= g.shape.len() {
                    let shape = operand.shape.clone();
                    accumulate(grads, ins[k], Arr::full(&shape, c * sum(&g.data)));
                } else {
                    full.push((k, c));
                }
            }
            let mut g = g;
            while let Some((k, c)) = full.pop() {
                let mut gk = if full.is_empty() {
                    std::mem::replace(&mut g, Arr::scalar(0.0))
                } else {
                    g.clone()
                };
                if c != 1.0 {
                    gk.data.iter_mut().for_each(|x| *x *= c);
                }
                vjp.send(grads, k, gk)?;
            }
        }
        EwOp::Mul | EwOp::Div => {
            let (a, b) = (num(vjp.v(0))?, num(vjp.v(1))?);
            let div = op == EwOp::Div;
            // A scalar operand's gradient: one dot product.
            for (k, &slot) in ins.iter().enumerate().take(2) {
                let (me, other) = if k == 0 { (&a, &b) } else { (&b, &a) };
                if !vjp.wants(k) || me.numel() != 1 || other.shape != g.shape {
                    continue;
                }
                if me.shape.len() > g.shape.len() {
                    continue;
                }
                let d = match (div, k) {
                    (false, _) => dot(&g.data, &other.data),
                    // d(a / b)/da for a scalar a: Σ g / b.
                    (true, 0) => g.data.iter().zip(&other.data).map(|(g, b)| g / b).sum(),
                    // d(a / b)/db = -a / b².
                    (true, _) => -dot(&g.data, &other.data) / (me.data[0] * me.data[0]),
                };
                let shape = me.shape.clone();
                accumulate(grads, slot, Arr::full(&shape, d));
            }
            let full = |k: usize| -> bool {
                let (me, other) = if k == 0 { (&a, &b) } else { (&b, &a) };
                vjp.wants(k)
                    && !(me.numel() == 1
                        && other.shape == g.shape
                        && me.shape.len() <= g.shape.len())
            };
            let (f0, f1) = (full(0), full(1));
            if f1 {
                let d = if div {
                    let ab = zip(&a, &b, |a, b| -a / (b * b))?;
                    zip(&g, &ab, |g, d| g * d)?
                } else {
                    zip(&g, &a, |g, a| g * a)?
                };
                vjp.send(grads, 1, d)?;
            }
            if f0 {
                if b.numel() == 1 || b.shape == g.shape {
                    // In place on g.
                    let mut g = g;
                    let bv = &b.data;
                    let one = bv.len() == 1;
                    for (i, x) in g.data.iter_mut().enumerate() {
                        let bi = if one { bv[0] } else { bv[i] };
                        if div {
                            *x /= bi;
                        } else {
                            *x *= bi;
                        }
                    }
                    vjp.send(grads, 0, g)?;
                } else if div {
                    vjp.send(grads, 0, zip(&g, &b, |g, b| g / b)?)?;
                } else {
                    vjp.send(grads, 0, zip(&g, &b, |g, b| g * b)?)?;
                }
            }
        }
        EwOp::Unary(f) if f.is_piecewise_constant() => {}
        EwOp::Unary(f) => vjp.unary(grads, g, &|x, y| f.derivative(x, y))?,
        EwOp::Logit { eps } => vjp.unary(grads, g, &|x, _| match eps {
            Some(e) if x < e || x > 1.0 - e => 0.0,
            _ => 1.0 / (x * (1.0 - x)),
        })?,
        EwOp::Xlogy => {
            let (x, y) = (num(vjp.v(0))?, num(vjp.v(1))?);
            if vjp.wants(0) {
                let d = zip(&x, &y, |x, y| if x != 0.0 { y.ln() } else { 0.0 })?;
                vjp.send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if vjp.wants(1) {
                let d = zip(&x, &y, |x, y| x / y)?;
                vjp.send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        EwOp::Maximum | EwOp::Minimum if ins.len() == 1 => {
            let x = arr(vjp.v(0))?;
            let m = vjp.out()?.data[0];
            let hits = x.data.iter().filter(|&&y| y == m).count().max(1) as f64;
            let gx = x.map(|y| if y == m { g.data[0] / hits } else { 0.0 });
            accumulate(grads, ins[0], gx);
        }
        EwOp::Maximum | EwOp::Minimum => {
            let (a, b) = (num(vjp.v(0))?, num(vjp.v(1))?);
            let max = op == EwOp::Maximum;
            // The winner takes the gradient; a tie splits it (as torch does).
            let share = |x: f64, y: f64| -> f64 {
                if x == y {
                    0.5
                } else if (x > y) == max {
                    1.0
                } else {
                    0.0
                }
            };
            if vjp.wants(0) {
                let d = zip(&a, &b, share)?;
                vjp.send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if vjp.wants(1) {
                let d = zip(&b, &a, share)?;
                vjp.send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        EwOp::NanToNum { .. } => vjp.unary(grads, g, &|x, _| f64::from(u8::from(x.is_finite())))?,
        EwOp::Mvlgamma { p } => vjp.unary(grads, g, &|x, _| {
            (0..p).map(|i| digamma(x - i as f64 / 2.0)).sum()
        })?,
        EwOp::Softplus { beta, threshold } => vjp.unary(grads, g, &|x, _| {
            if x * beta > threshold {
                1.0
            } else {
                sigmoid(x * beta)
            }
        })?,
        EwOp::Pow => {
            let (a, b) = (num(vjp.v(0))?, num(vjp.v(1))?);
            if vjp.wants(0) {
                let d = zip(
                    &a,
                    &b,
                    |x, p| if p == 0.0 { 0.0 } else { p * x.powf(p - 1.0) },
                )?;
                vjp.send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if vjp.wants(1) {
                let y = vjp.out()?;
                let d = zip(y, &a, |y, x| if x == 0.0 { 0.0 } else { y * x.ln() })?;
                vjp.send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        EwOp::ToKind => {
            let x = arr(vjp.v(0))?;
            accumulate(
                grads,
                ins[0],
                Arr {
                    shape: x.shape.clone(),
                    data: g.data.clone(),
                },
            );
        }
        EwOp::Bcewl { reduction } => {
            let (x, y) = (num(vjp.v(0))?, num(vjp.v(1))?);
            let shape = broadcast_shapes(&x.shape, &y.shape)
                .ok_or_else(|| bad("shapes do not broadcast"))?;
            let n = shape.iter().product::<usize>().max(1) as f64;
            let gfull = match reduction {
                1 => Arr::full(&shape, g.data[0] / n),
                2 => Arr::full(&shape, g.data[0]),
                _ => g.clone(),
            };
            if vjp.wants(0) {
                let d = zip(&x, &y, |x, y| sigmoid(x) - y)?;
                vjp.send(grads, 0, zip(&gfull, &d, |g, d| g * d)?)?;
            }
            if vjp.wants(1) {
                let d = x.expand_to(&shape).map(|x| -x);
                vjp.send(grads, 1, zip(&gfull, &d, |g, d| g * d)?)?;
            }
        }
        EwOp::Where => {
            let c = num(vjp.v(0))?;
            for (i, pick) in [(1usize, true), (2usize, false)] {
                if vjp.wants(i) {
                    let gi = zip(&g, &c, |g, c| if (c != 0.0) == pick { g } else { 0.0 })?;
                    vjp.send(grads, i, gi)?;
                }
            }
        }
        EwOp::MaskedFill { .. } => {
            if vjp.wants(0) {
                let m = num(vjp.v(1))?;
                vjp.send(
                    grads,
                    0,
                    zip(&g, &m, |g, m| if m != 0.0 { 0.0 } else { g })?,
                )?;
            }
        }
        EwOp::Clamp { lo, hi } => {
            vjp.unary(grads, g, &|x, _| f64::from(u8::from(x >= lo && x <= hi)))?
        }
        EwOp::Number
        | EwOp::ScalarTensor
        | EwOp::LogicalAnd
        | EwOp::LogicalOr
        | EwOp::Compare(_)
        | EwOp::LogicalNot => {}
    }
    Ok(())
}
