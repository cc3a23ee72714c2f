//! Elementwise ops (arithmetic, the unary table's functions, comparisons, `where`, clamps, casts,
//! the logits loss): each op's value and its vector-Jacobian product, side by side.

use super::array::{broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::*;
use super::ops::{accumulate, not_in_family};
use super::special::{digamma, lgamma};
use crate::error::Result;

/// The value of `node`.
pub(super) fn forward(node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let nin = node.ins.len();
    let unary = |f: fn(f64) -> f64| -> Result<Val> { Ok(Val::T(arr(v(0))?.map(f))) };
    Ok(match node.op {
        Op::Add { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x + alpha * y)?),
        Op::Sub { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x - alpha * y)?),
        Op::Rsub { alpha } => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| y - alpha * x)?),
        Op::Mul => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x * y)?),
        Op::Div => {
            if nin > 2 && !matches!(v(2), Val::None) {
                return Err(bad("div with a rounding mode"));
            }
            Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x / y)?)
        }
        Op::Logit { eps } => Val::T(arr(v(0))?.map(|x| {
            let x = eps.map_or(x, |e| x.clamp(e, 1.0 - e));
            (x / (1.0 - x)).ln()
        })),
        Op::Unary(f) => Val::T(arr(v(0))?.map(|x| f.value(x))),
        Op::LogicalAnd => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 && b != 0.0))
        })?),
        Op::LogicalOr => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 || b != 0.0))
        })?),
        Op::Xlogy => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| {
            if x == 0.0 && !y.is_nan() {
                0.0
            } else {
                x * y.ln()
            }
        })?),
        Op::Maximum | Op::Minimum if nin == 1 => {
            let x = arr(v(0))?;
            let pick = if node.op == Op::Maximum {
                f64::max
            } else {
                f64::min
            };
            let init = if node.op == Op::Maximum {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            Val::T(Arr::scalar(x.data.iter().fold(init, |m, &y| pick(m, y))))
        }
        Op::Maximum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::max)?),
        Op::Minimum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::min)?),
        Op::NanToNum {
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
        Op::Mvlgamma { p } => {
            let c = (p * (p - 1)) as f64 / 4.0 * std::f64::consts::PI.ln();
            Val::T(arr(v(0))?.map(|x| c + (0..p).map(|i| lgamma(x - i as f64 / 2.0)).sum::<f64>()))
        }
        Op::Number => {
            let name = node.kind.as_str();
            match v(0) {
                Val::T(a) if name.ends_with("Int") => Val::Int(a.data[0].trunc() as i64),
                Val::T(a) => Val::Float(a.data[0]),
                Val::Int(i) => Val::T(Arr::scalar(*i as f64)),
                Val::Float(x) => Val::T(Arr::scalar(*x)),
                other => other.clone(),
            }
        }
        Op::Softplus { beta, threshold } => {
            Val::T(arr(v(0))?.map(|x| softplus(x, beta, threshold)))
        }
        Op::Pow => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::powf)?),
        Op::ToKind => {
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
        Op::Bcewl { reduction } => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            let l = zip(&x, &y, |x, y| x.max(0.0) - x * y + (-x.abs()).exp().ln_1p())?;
            Val::T(reduce_loss(l, reduction))
        }
        Op::Where => {
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
        Op::MaskedFill { value: fill } => Val::T(zip(arr(v(0))?, &*num(v(1))?, |x, m| {
            if m != 0.0 {
                fill
            } else {
                x
            }
        })?),
        Op::LogicalNot => unary(|x| f64::from(u8::from(x == 0.0)))?,
        Op::Clamp { lo, hi } => {
            let x = arr(v(0))?;
            Val::T(x.map(|y| y.max(lo).min(hi)))
        }
        Op::ScalarTensor => Val::T(Arr::scalar(float(v(0))?)),
        Op::Compare(c) => {
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
        _ => return Err(not_in_family(node, "elementwise")),
    })
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(node: &Node, env: &Env, g: Arr, grads: &mut [Option<Arr>]) -> Result<()> {
    let ins = &node.ins;
    let live = env.live;
    let v = |i: usize| -> &Val { env.get(ins[i]) };
    let wants = |i: usize| -> bool { ins.len() > i && live[ins[i]] };
    let out = || arr(env.get(node.out));
    // d out / d x as a function of (x, out), for elementwise unary ops.
    // In place on the owned `g`: g_i *= d(x_i, out_i).
    let unary = |grads: &mut [Option<Arr>], g: Arr, d: &dyn Fn(f64, f64) -> f64| -> Result<()> {
        let x = arr(v(0))?;
        let y = out()?;
        let mut g = g;
        for (gv, (&xv, &yv)) in g.data.iter_mut().zip(x.data.iter().zip(&y.data)) {
            *gv *= d(xv, yv);
        }
        g.shape = x.shape.clone();
        accumulate(grads, ins[0], g);
        Ok(())
    };
    // The adjoint of broadcasting an operand of `shape`.
    let send = |grads: &mut [Option<Arr>], i: usize, gi: Arr| -> Result<()> {
        let shape = match env.get(ins[i]) {
            Val::T(a) => a.shape.clone(),
            _ => return Ok(()),
        };
        accumulate(grads, ins[i], gi.into_sum_to(&shape));
        Ok(())
    };
    match node.op {
        Op::Add { alpha } | Op::Sub { alpha } | Op::Rsub { alpha } => {
            let (ca, cb) = match node.op {
                Op::Add { .. } => (1.0, alpha),
                Op::Sub { .. } => (1.0, -alpha),
                _ => (-alpha, 1.0),
            };
            // Scalar operands get a sum; full ones a scaled copy, the last of them `g` itself.
            let mut full = Vec::new();
            for (k, c) in [(0usize, ca), (1usize, cb)] {
                if !wants(k) {
                    continue;
                }
                let operand = num(v(k))?;
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
                send(grads, k, gk)?;
            }
        }
        Op::Mul | Op::Div => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            let div = node.op == Op::Div;
            // A scalar operand's gradient: one dot product.
            for (k, &slot) in ins.iter().enumerate().take(2) {
                let (me, other) = if k == 0 { (&a, &b) } else { (&b, &a) };
                if !wants(k) || me.numel() != 1 || other.shape != g.shape {
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
                wants(k)
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
                send(grads, 1, d)?;
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
                    send(grads, 0, g)?;
                } else if div {
                    send(grads, 0, zip(&g, &b, |g, b| g / b)?)?;
                } else {
                    send(grads, 0, zip(&g, &b, |g, b| g * b)?)?;
                }
            }
        }
        Op::Unary(f) if f.is_piecewise_constant() => {}
        Op::Unary(f) => unary(grads, g, &|x, y| f.derivative(x, y))?,
        Op::Logit { eps } => unary(grads, g, &|x, _| match eps {
            Some(e) if x < e || x > 1.0 - e => 0.0,
            _ => 1.0 / (x * (1.0 - x)),
        })?,
        Op::Xlogy => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            if wants(0) {
                let d = zip(&x, &y, |x, y| if x != 0.0 { y.ln() } else { 0.0 })?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = zip(&x, &y, |x, y| x / y)?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::Maximum | Op::Minimum if ins.len() == 1 => {
            let x = arr(v(0))?;
            let m = out()?.data[0];
            let hits = x.data.iter().filter(|&&y| y == m).count().max(1) as f64;
            let gx = x.map(|y| if y == m { g.data[0] / hits } else { 0.0 });
            accumulate(grads, ins[0], gx);
        }
        Op::Maximum | Op::Minimum => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            let max = node.op == Op::Maximum;
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
            if wants(0) {
                let d = zip(&a, &b, share)?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = zip(&b, &a, share)?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::NanToNum { .. } => unary(grads, g, &|x, _| f64::from(u8::from(x.is_finite())))?,
        Op::Mvlgamma { p } => unary(grads, g, &|x, _| {
            (0..p).map(|i| digamma(x - i as f64 / 2.0)).sum()
        })?,
        Op::Softplus { beta, threshold } => unary(grads, g, &|x, _| {
            if x * beta > threshold {
                1.0
            } else {
                sigmoid(x * beta)
            }
        })?,
        Op::Pow => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            if wants(0) {
                let d = zip(
                    &a,
                    &b,
                    |x, p| if p == 0.0 { 0.0 } else { p * x.powf(p - 1.0) },
                )?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let y = out()?;
                let d = zip(y, &a, |y, x| if x == 0.0 { 0.0 } else { y * x.ln() })?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::ToKind => {
            let x = arr(v(0))?;
            accumulate(
                grads,
                ins[0],
                Arr {
                    shape: x.shape.clone(),
                    data: g.data.clone(),
                },
            );
        }
        Op::Bcewl { reduction } => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            let shape = broadcast_shapes(&x.shape, &y.shape)
                .ok_or_else(|| bad("shapes do not broadcast"))?;
            let n = shape.iter().product::<usize>().max(1) as f64;
            let gfull = match reduction {
                1 => Arr::full(&shape, g.data[0] / n),
                2 => Arr::full(&shape, g.data[0]),
                _ => g.clone(),
            };
            if wants(0) {
                let d = zip(&x, &y, |x, y| sigmoid(x) - y)?;
                send(grads, 0, zip(&gfull, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = x.expand_to(&shape).map(|x| -x);
                send(grads, 1, zip(&gfull, &d, |g, d| g * d)?)?;
            }
        }
        Op::Where => {
            let c = num(v(0))?;
            for (i, pick) in [(1usize, true), (2usize, false)] {
                if wants(i) {
                    let gi = zip(&g, &c, |g, c| if (c != 0.0) == pick { g } else { 0.0 })?;
                    send(grads, i, gi)?;
                }
            }
        }
        Op::MaskedFill { .. } => {
            if wants(0) {
                let m = num(v(1))?;
                send(
                    grads,
                    0,
                    zip(&g, &m, |g, m| if m != 0.0 { 0.0 } else { g })?,
                )?;
            }
        }
        Op::Clamp { lo, hi } => unary(grads, g, &|x, _| f64::from(u8::from(x >= lo && x <= hi)))?,
        Op::Number
        | Op::ScalarTensor
        | Op::LogicalAnd
        | Op::LogicalOr
        | Op::Compare(_)
        | Op::LogicalNot => {}
        _ => return Err(not_in_family(node, "elementwise")),
    }
    Ok(())
}
