//! The forward pass: each op's value from its inputs, and fresh draws of the random ops.

use rand::rngs::StdRng;

use super::array::{broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::*;
use super::random;
use super::special::lgamma;
use crate::error::Result;

/// Fresh values of a random op.
pub(super) fn draw(r: Rnd, node: &Node, env: &Env, rng: &mut StdRng) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let name = node.kind.as_str();
    // The shape of a factory (`randn(size, ...)`) or of its `_like` argument.
    let shape_of = |i: usize| -> Result<Vec<usize>> {
        Ok(if name.ends_with("_like") {
            num(v(i))?.shape.clone()
        } else {
            ints(v(i))?.iter().map(|&d| d.max(0) as usize).collect()
        })
    };
    Ok(Val::T(match r {
        Rnd::Randn | Rnd::Rand => {
            let shape = shape_of(0)?;
            let n = shape.iter().product();
            let data = if r == Rnd::Randn {
                random::randn(rng, n)
            } else {
                random::rand(rng, n)
            };
            Arr { shape, data }
        }
        Rnd::Randperm => {
            let n = int(v(0))?.max(0) as usize;
            Arr {
                shape: vec![n],
                data: random::randperm(rng, n),
            }
        }
        Rnd::StandardGamma | Rnd::Poisson | Rnd::Bernoulli => {
            use rand::Rng;
            let x = arr(v(0))?;
            // bernoulli(probs) or bernoulli(self, p: float).
            let p_const = match node.ins.get(1).map(|&s| env.get(s)) {
                Some(Val::Float(p)) => Some(*p),
                _ => None,
            };
            let data = x
                .data
                .iter()
                .map(|&a| match r {
                    Rnd::StandardGamma => random::standard_gamma(rng, a),
                    Rnd::Poisson => random::poisson(rng, a),
                    _ => f64::from(u8::from(rng.random::<f64>() < p_const.unwrap_or(a))),
                })
                .collect();
            Arr {
                shape: x.shape.clone(),
                data,
            }
        }
    }))
}

pub(super) fn eval(node: &Node, env: &Env) -> Result<Val> {
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
        Op::LogSoftmax { dim } | Op::Softmax { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut y = x.clone();
            for l in lines(&x.shape, dim) {
                let m = (0..l.n)
                    .map(|j| x.data[l.at(j)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let lse = m
                    + (0..l.n)
                        .map(|j| (x.data[l.at(j)] - m).exp())
                        .sum::<f64>()
                        .ln();
                for j in 0..l.n {
                    let v = x.data[l.at(j)] - lse;
                    y.data[l.at(j)] = if matches!(node.op, Op::Softmax { .. }) {
                        v.exp()
                    } else {
                        v
                    };
                }
            }
            Val::T(y)
        }
        Op::Gather { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = arr(v(2))?;
            Val::T(Arr {
                shape: idx.shape.clone(),
                data: gather_offsets(x, dim, idx)?
                    .into_iter()
                    .map(|o| x.data[o])
                    .collect(),
            })
        }
        Op::IndexSelect { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            Val::T(gather(x, dim, idx.into_iter()))
        }
        Op::Cumsum { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            Val::T(cumsum(x, dim, false))
        }
        Op::Cumprod { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut y = x.clone();
            for l in lines(&x.shape, dim) {
                let mut acc = 1.0;
                for j in 0..l.n {
                    acc *= x.data[l.at(j)];
                    y.data[l.at(j)] = acc;
                }
            }
            Val::T(y)
        }
        Op::SolveTriangular { upper, unit, .. } => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            Val::T(solve_triangular(a, b, upper, unit, false)?)
        }
        Op::Diagonal {
            offset: off,
            dim1,
            dim2,
        } => {
            let x = arr(v(0))?;
            let r = x.shape.len();
            let (d1, d2) = (norm_dim(dim1, r)?, norm_dim(dim2, r)?);
            let (offsets, shape) = diagonal_offsets(x, off, d1, d2);
            Val::T(Arr {
                shape,
                data: offsets.iter().map(|&o| x.data[o]).collect(),
            })
        }
        Op::TrilIndices => {
            let (rows, cols, off) = (int(v(0))?, int(v(1))?, int(v(2))?);
            let mut r = Vec::new();
            let mut c = Vec::new();
            for i in 0..rows {
                for j in 0..cols {
                    if j - i <= off {
                        r.push(i as f64);
                        c.push(j as f64);
                    }
                }
            }
            let n = r.len();
            r.extend(c);
            Val::T(Arr {
                shape: vec![2, n],
                data: r,
            })
        }
        Op::Tril { diagonal: d } | Op::Triu { diagonal: d } => {
            let x = arr(v(0))?;
            Val::T(tri_mask(
                x,
                d,
                matches!(node.op, Op::Tril { .. }),
                |x, keep| {
                    if keep {
                        x
                    } else {
                        0.0
                    }
                },
            ))
        }
        Op::DiagEmbed {
            offset: off,
            dim1,
            dim2,
        } => {
            let x = arr(v(0))?;
            let n = *x
                .shape
                .last()
                .ok_or_else(|| bad("diag_embed of a scalar"))?;
            let m = n + off.unsigned_abs() as usize;
            let mut shape = x.shape[..x.shape.len() - 1].to_vec();
            shape.extend([m, m]);
            let mut out = Arr::full(&shape, 0.0);
            let r = shape.len();
            if norm_dim(dim1, r)? != r - 2 || norm_dim(dim2, r)? != r - 1 {
                return Err(bad("diag_embed into dims other than the last two"));
            }
            let (offsets, _) = diagonal_offsets(&out, off, shape.len() - 2, shape.len() - 1);
            for (&o, &xv) in offsets.iter().zip(&x.data) {
                out.data[o] = xv;
            }
            Val::T(out)
        }
        Op::Eye => {
            let n = int(v(0))? as usize;
            // eye(n, dtype, layout, device, pin) or eye(n, m, dtype, ...).
            let m = if nin >= 6 { int(v(1))? as usize } else { n };
            let mut out = Arr::full(&[n, m], 0.0);
            for i in 0..n.min(m) {
                out.data[i * m + i] = 1.0;
            }
            Val::T(out)
        }
        Op::IndexCopy { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            let src = arr(v(3))?;
            let mut out = x.clone();
            let (outer, n, inner) = split3(&x.shape, dim);
            let k = idx.len();
            for o in 0..outer {
                for (jj, &j) in idx.iter().enumerate() {
                    for i in 0..inner {
                        out.data[(o * n + j) * inner + i] = src.data[(o * k + jj) * inner + i];
                    }
                }
            }
            Val::T(out)
        }
        Op::Pad { pads, fill } => Val::T(pad(arr(v(0))?, pads.as_slice(), fill)?.0),
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
        Op::Size => {
            let x = num(v(0))?;
            if nin > 1 {
                Val::Int(x.shape[norm_dim(int(v(1))?, x.shape.len())?] as i64)
            } else {
                Val::Ints(x.shape.iter().map(|&d| d as i64).collect())
            }
        }
        Op::Arange => {
            // arange(end, ...), arange(start, end, ...) or arange(start, end, step, ...): the
            // leading numbers; then dtype, layout, device, pin_memory.
            let k = nin.saturating_sub(4).clamp(1, 3);
            let nums: Vec<f64> = (0..k).map(|i| float(v(i))).collect::<Result<_>>()?;
            let (start, end, step) = match nums.as_slice() {
                [e] => (0.0, *e, 1.0),
                [s, e] => (*s, *e, 1.0),
                [s, e, st] => (*s, *e, *st),
                _ => return Err(bad("arange arguments")),
            };
            let n = ((end - start) / step).ceil().max(0.0) as usize;
            Val::T(Arr {
                shape: vec![n],
                data: (0..n).map(|i| start + i as f64 * step).collect(),
            })
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
        Op::Sum {
            dims,
            keepdim: keep,
        }
        | Op::Mean {
            dims,
            keepdim: keep,
        } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let mut s = sum_keep(x, &dims);
            if matches!(node.op, Op::Mean { .. }) {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                s.data.iter_mut().for_each(|y| *y /= n);
            }
            if !keep {
                s.shape = squeeze_dims(&s.shape, &dims);
            }
            Val::T(s)
        }
        Op::Expand => {
            let x = num(v(0))?;
            let target: Vec<i64> = match v(1) {
                Val::T(other) => other.shape.iter().map(|&d| d as i64).collect(),
                other => ints(other)?,
            };
            let k = target.len().saturating_sub(x.shape.len());
            let shape: Vec<usize> = target
                .iter()
                .enumerate()
                .map(|(i, &d)| if d < 0 { x.shape[i - k] } else { d as usize })
                .collect();
            if broadcast_shapes(&x.shape, &shape).as_deref() != Some(&shape[..]) {
                return Err(bad(format!("cannot expand {:?} to {:?}", x.shape, shape)));
            }
            Val::T(x.expand_to(&shape))
        }
        Op::BroadcastAll(i) => {
            let mut shape: Vec<usize> = Vec::new();
            for &s in &node.ins {
                let a = num(env.get(s))?;
                shape = broadcast_shapes(&shape, &a.shape)
                    .ok_or_else(|| bad("broadcast_tensors: shapes do not broadcast"))?;
            }
            Val::T(num(v(i))?.expand_to(&shape))
        }
        Op::Stack { dim } | Op::Cat { dim } => {
            let stack = matches!(node.op, Op::Stack { .. });
            let xs = list_arrs(env, v(0))?;
            let first = xs.first().ok_or_else(|| bad("stack of nothing"))?;
            let rank = first.shape.len() + usize::from(stack);
            let dim = norm_dim(dim, rank)?;
            let parts: Vec<Arr> = xs
                .iter()
                .map(|x| {
                    if stack {
                        let mut s = x.shape.clone();
                        s.insert(dim, 1);
                        Arr {
                            shape: s,
                            data: x.data.clone(),
                        }
                    } else {
                        (*x).clone()
                    }
                })
                .collect();
            Val::T(concat(&parts, dim)?)
        }
        Op::Select { dim, index: i } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let n = x.shape[dim] as i64;
            let i = if i < 0 { i + n } else { i };
            if i < 0 || i >= n {
                return Err(bad("select index out of range"));
            }
            let mut g = gather(x, dim, std::iter::once(i as usize));
            g.shape.remove(dim);
            Val::T(g)
        }
        Op::Slice { .. } => {
            let x = arr(v(0))?;
            let (dim, s, len, step) = slice_args(node.op, x)?;
            Val::T(gather(x, dim, (0..len).map(move |j| s + j * step)))
        }
        Op::Reshape => {
            let x = arr(v(0))?;
            let shape = if node.kind.ends_with("flatten") {
                let r = x.shape.len();
                if r == 0 {
                    vec![1]
                } else {
                    let s = norm_dim(int(v(1))?, r)?;
                    let e = norm_dim(int(v(2))?, r)?;
                    let mut out = x.shape[..s].to_vec();
                    out.push(x.shape[s..=e].iter().product());
                    out.extend_from_slice(&x.shape[e + 1..]);
                    out
                }
            } else {
                let target = ints(v(1))?;
                let known: i64 = target.iter().filter(|&&d| d >= 0).product();
                target
                    .iter()
                    .map(|&d| {
                        if d < 0 {
                            x.numel() / known.max(1) as usize
                        } else {
                            d as usize
                        }
                    })
                    .collect()
            };
            if shape.iter().product::<usize>() != x.numel() {
                return Err(bad(format!("cannot reshape {:?} to {:?}", x.shape, shape)));
            }
            Val::T(Arr {
                shape,
                data: x.data.clone(),
            })
        }
        Op::Unsqueeze => {
            let x = arr(v(0))?;
            let d = norm_dim(int(v(1))?, x.shape.len() + 1)?;
            let mut shape = x.shape.clone();
            shape.insert(d, 1);
            Val::T(Arr {
                shape,
                data: x.data.clone(),
            })
        }
        Op::Squeeze => {
            let x = arr(v(0))?;
            let shape: Vec<usize> = if nin > 1 {
                let dims: Vec<usize> = ints(v(1))?
                    .iter()
                    .map(|&d| norm_dim(d, x.shape.len()))
                    .collect::<Result<_>>()?;
                x.shape
                    .iter()
                    .enumerate()
                    .filter(|&(i, &d)| !(d == 1 && dims.contains(&i)))
                    .map(|(_, &d)| d)
                    .collect()
            } else {
                x.shape.iter().copied().filter(|&d| d != 1).collect()
            };
            Val::T(Arr {
                shape,
                data: x.data.clone(),
            })
        }
        Op::Identity | Op::Detach => Val::T(arr(v(0))?.clone()),
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
        Op::Matmul => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            match env.columns.get(&node.ins[0]) {
                Some(at) if b.shape.len() == 1 && b.shape[0] == a.shape[1] => {
                    // X w = Σ_p w_p X[:, p], over the rows of Xᵀ.
                    let n = a.shape[0];
                    let mut out = vec![0.0; n];
                    for (col, &w) in at.data.chunks_exact(n.max(1)).zip(&b.data) {
                        for (o, &x) in out.iter_mut().zip(col) {
                            *o += w * x;
                        }
                    }
                    Val::T(Arr {
                        shape: vec![n],
                        data: out,
                    })
                }
                _ => Val::T(matmul(a, b)?),
            }
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
        Op::Fill => {
            let name = node.kind.trim_start_matches("aten::");
            let shape: Vec<usize> = if name.ends_with("_like") {
                num(v(0))?.shape.clone()
            } else {
                ints(v(0))?.iter().map(|&d| d.max(0) as usize).collect()
            };
            let fill = match name {
                "zeros" | "zeros_like" => 0.0,
                "ones" | "ones_like" => 1.0,
                _ => float(v(1))?,
            };
            Val::T(Arr::full(&shape, fill))
        }
        Op::ListConstruct => {
            let items: Vec<&Val> = node.ins.iter().map(|&i| env.get(i)).collect();
            if items.iter().all(|x| matches!(x, Val::Int(_))) {
                Val::Ints(items.iter().map(|x| int(x)).collect::<Result<_>>()?)
            } else {
                Val::List(node.ins.clone())
            }
        }
        Op::Transpose { dims } => {
            let x = arr(v(0))?;
            match dims {
                None if x.shape.len() == 2 => Val::T(transpose2(x)),
                None => Val::T(x.clone()),
                Some((d0, d1)) => {
                    let r = x.shape.len();
                    Val::T(transpose(x, norm_dim(d0, r)?, norm_dim(d1, r)?))
                }
            }
        }
        Op::Permute { dims } => {
            let x = arr(v(0))?;
            Val::T(permute(x, &dims.normalized(x.shape.len())?))
        }
        Op::Cholesky { upper } => {
            let l = cholesky(arr(v(0))?)?;
            let r = l.shape.len();
            Val::T(if upper {
                transpose(&l, r - 2, r - 1)
            } else {
                l
            })
        }
        Op::Extremum {
            max,
            dims,
            keepdim: keep,
        } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let mut out = extremum_keep(x, &dims, max);
            if !keep {
                out.shape = squeeze_dims(&out.shape, &dims);
            }
            Val::T(out)
        }
        Op::Logsumexp {
            dims,
            keepdim: keep,
        } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let m = max_keep(x, &dims);
            let e = zip(
                x,
                &m,
                |a, b| if b.is_finite() { (a - b).exp() } else { 0.0 },
            )?;
            let s = sum_keep(&e, &dims);
            let mut out = zip(&s, &m, |s, m| if m.is_finite() { s.ln() + m } else { m })?;
            if !keep {
                out.shape = squeeze_dims(&out.shape, &dims);
            }
            Val::T(out)
        }
        Op::Random(_) => return Err(bad("a random op cannot be folded")),
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
    })
}
