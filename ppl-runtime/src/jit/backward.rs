//! The backward pass: each op's vector-Jacobian product, added into its live inputs' gradients.

use super::array::{broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::*;
use super::random;
use super::special::digamma;
use crate::error::Result;

pub(super) fn accumulate(grads: &mut [Option<Arr>], slot: usize, g: Arr) {
    match &mut grads[slot] {
        Some(acc) if acc.shape == g.shape => {
            for (a, b) in acc.data.iter_mut().zip(&g.data) {
                *a += b;
            }
        }
        Some(acc) => {
            // Same number of values, different view: add flat.
            for (a, b) in acc.data.iter_mut().zip(&g.data) {
                *a += b;
            }
        }
        None => grads[slot] = Some(g),
    }
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
        Op::LogSoftmax { dim } | Op::Softmax { dim } => {
            let x = arr(v(0))?;
            let y = out()?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for l in lines(&x.shape, dim) {
                if matches!(node.op, Op::LogSoftmax { .. }) {
                    let gs: f64 = (0..l.n).map(|j| g.data[l.at(j)]).sum();
                    for j in 0..l.n {
                        gx.data[l.at(j)] = g.data[l.at(j)] - y.data[l.at(j)].exp() * gs;
                    }
                } else {
                    let gy: f64 = (0..l.n).map(|j| g.data[l.at(j)] * y.data[l.at(j)]).sum();
                    for j in 0..l.n {
                        gx.data[l.at(j)] = y.data[l.at(j)] * (g.data[l.at(j)] - gy);
                    }
                }
            }
            accumulate(grads, ins[0], gx);
        }
        Op::Gather { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for (o, gv) in gather_offsets(x, dim, arr(v(2))?)?.into_iter().zip(&g.data) {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        Op::IndexSelect { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            accumulate(grads, ins[0], scatter(&g, &x.shape, dim, idx.into_iter()));
        }
        Op::Cumsum { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            accumulate(grads, ins[0], cumsum(&g, dim, true));
        }
        Op::SolveTriangular { upper, unit, .. } => {
            // X = A⁻¹ B: dB = A⁻ᵀ G, dA = -dB Xᵀ (on A's triangle); both summed over the
            // batch dims they were broadcast along.
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            let db = solve_triangular(a, &g, upper, unit, true)?;
            if wants(0) {
                let x = out()?;
                let (af, _, n, k) = solve_operands(a, b)?;
                let mut da = Arr::full(&af.shape, 0.0);
                for ((xb, gb), dab) in x
                    .data
                    .chunks(n * k)
                    .zip(db.data.chunks(n * k))
                    .zip(da.data.chunks_mut(n * n))
                {
                    for i in 0..n {
                        for j in 0..n {
                            let on_triangle = if upper { j >= i } else { j <= i };
                            if !on_triangle || (unit && i == j) {
                                continue;
                            }
                            let dot: f64 = (0..k).map(|c| gb[i * k + c] * xb[j * k + c]).sum();
                            dab[i * n + j] -= dot;
                        }
                    }
                }
                accumulate(grads, ins[0], da.sum_to(&a.shape));
            }
            if wants(1) {
                accumulate(grads, ins[1], db.sum_to(&b.shape));
            }
        }
        Op::Diagonal {
            offset: off,
            dim1,
            dim2,
        } => {
            let x = arr(v(0))?;
            let r = x.shape.len();
            let (d1, d2) = (norm_dim(dim1, r)?, norm_dim(dim2, r)?);
            let (offsets, _) = diagonal_offsets(x, off, d1, d2);
            let mut gx = Arr::full(&x.shape, 0.0);
            for (&o, gv) in offsets.iter().zip(&g.data) {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        Op::Tril { diagonal: d } | Op::Triu { diagonal: d } => {
            let gx = tri_mask(&g, d, matches!(node.op, Op::Tril { .. }), |g, keep| {
                if keep {
                    g
                } else {
                    0.0
                }
            });
            accumulate(grads, ins[0], gx);
        }
        Op::DiagEmbed { offset: off, .. } => {
            let x = arr(v(0))?;
            let r = g.shape.len();
            let (offsets, _) = diagonal_offsets(&g, off, r - 2, r - 1);
            accumulate(
                grads,
                ins[0],
                Arr {
                    shape: x.shape.clone(),
                    data: offsets.iter().map(|&o| g.data[o]).collect(),
                },
            );
        }
        Op::IndexCopy { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            if wants(0) {
                let mut gx = g.clone();
                let (outer, n, inner) = split3(&x.shape, dim);
                for o in 0..outer {
                    for &j in &idx {
                        for i in 0..inner {
                            gx.data[(o * n + j) * inner + i] = 0.0;
                        }
                    }
                }
                accumulate(grads, ins[0], gx);
            }
            if wants(3) {
                accumulate(grads, ins[3], gather(&g, dim, idx.into_iter()));
            }
        }
        Op::Pad { pads, .. } => {
            let x = arr(v(0))?;
            let (_, starts) = pad(x, pads.as_slice(), 0.0)?;
            // The gradient is the interior of g.
            let mut gx = g.clone();
            for (d, &st) in starts.iter().enumerate() {
                if st > 0 || gx.shape[d] != x.shape[d] {
                    gx = gather(&gx, d, st..st + x.shape[d]);
                }
            }
            accumulate(grads, ins[0], gx);
        }
        Op::NanToNum { .. } => unary(grads, g, &|x, _| f64::from(u8::from(x.is_finite())))?,
        Op::Mvlgamma { p } => unary(grads, g, &|x, _| {
            (0..p).map(|i| digamma(x - i as f64 / 2.0)).sum()
        })?,
        Op::Cumprod { dim } => {
            // dx_i = Σ_{j ≥ i} g_j Π_{k ≤ j, k ≠ i} x_k, without dividing by x_i (which may be 0).
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for l in lines(&x.shape, dim) {
                let mut before = 1.0;
                for i in 0..l.n {
                    let mut q = before;
                    let mut acc = g.data[l.at(i)] * q;
                    for j in i + 1..l.n {
                        q *= x.data[l.at(j)];
                        acc += g.data[l.at(j)] * q;
                    }
                    gx.data[l.at(i)] = acc;
                    before *= x.data[l.at(i)];
                }
            }
            accumulate(grads, ins[0], gx);
        }
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
        Op::Sum { dims, .. } | Op::Mean { dims, .. } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let kept = kept_shape(&x.shape, &dims);
            let mut gk = Arr {
                shape: kept,
                data: g.data.clone(),
            };
            if matches!(node.op, Op::Mean { .. }) {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                gk.data.iter_mut().for_each(|y| *y /= n);
            }
            accumulate(grads, ins[0], gk.expand_to(&x.shape));
        }
        Op::Expand => send(grads, 0, g.clone())?,
        Op::BroadcastAll(i) => {
            if wants(i) {
                send(grads, i, g.clone())?;
            }
        }
        Op::Stack { dim } | Op::Cat { dim } => {
            let stack = matches!(node.op, Op::Stack { .. });
            let Val::List(items) = v(0) else {
                return Err(bad("expected a list"));
            };
            let xs = list_arrs(env, v(0))?;
            let rank = xs[0].shape.len() + usize::from(stack);
            let dim = norm_dim(dim, rank)?;
            let mut start = 0;
            for (&slot, x) in items.iter().zip(&xs) {
                let n = if stack { 1 } else { x.shape[dim] };
                if live[slot] {
                    let part = gather(&g, dim, start..start + n);
                    accumulate(
                        grads,
                        slot,
                        Arr {
                            shape: x.shape.clone(),
                            data: part.data,
                        },
                    );
                }
                start += n;
            }
        }
        Op::Select { dim, index: i } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let n = x.shape[dim] as i64;
            let i = if i < 0 { i + n } else { i } as usize;
            let mut gs = g.clone();
            gs.shape.insert(dim, 1);
            accumulate(
                grads,
                ins[0],
                scatter(&gs, &x.shape, dim, std::iter::once(i)),
            );
        }
        Op::Slice { .. } => {
            let x = arr(v(0))?;
            let (dim, s, len, step) = slice_args(node.op, x)?;
            accumulate(
                grads,
                ins[0],
                scatter(&g, &x.shape, dim, (0..len).map(move |j| s + j * step)),
            );
        }
        Op::Reshape | Op::Unsqueeze | Op::Squeeze | Op::Identity | Op::ToKind => {
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
        Op::Transpose { dims } => {
            let x = arr(v(0))?;
            let gt = match dims {
                None if x.shape.len() == 2 => transpose2(&g),
                None => g.clone(),
                Some((d0, d1)) => {
                    let r = x.shape.len();
                    transpose(&g, norm_dim(d0, r)?, norm_dim(d1, r)?)
                }
            };
            accumulate(grads, ins[0], gt);
        }
        Op::Permute { dims } => {
            let x = arr(v(0))?;
            let r = x.shape.len();
            let perm = dims.normalized(r)?;
            let mut inverse = vec![0usize; r];
            for (i, p) in perm.iter().enumerate() {
                inverse[*p] = i;
            }
            accumulate(grads, ins[0], permute(&g, &inverse));
        }
        Op::Matmul => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            let (n, k) = if a.shape.len() == 1 {
                (1, a.shape[0])
            } else {
                (a.shape[0], a.shape[1])
            };
            let m = if b.shape.len() == 1 { 1 } else { b.shape[1] };
            if wants(0) {
                // dA = G Bᵀ: da[i, p] = Σ_j g[i, j] b[p, j].
                let mut da = vec![0.0; n * k];
                for i in 0..n {
                    let gi = &g.data[i * m..(i + 1) * m];
                    for p in 0..k {
                        let bp = &b.data[p * m..(p + 1) * m];
                        da[i * k + p] = gi.iter().zip(bp).map(|(x, y)| x * y).sum();
                    }
                }
                accumulate(
                    grads,
                    ins[0],
                    Arr {
                        shape: a.shape.clone(),
                        data: da,
                    },
                );
            }
            if wants(1) {
                // dB = Aᵀ G: db[p, j] = Σ_i a[i, p] g[i, j].
                let mut db = vec![0.0; k * m];
                let at = env.columns.get(&ins[0]).filter(|_| m == 1);
                if let Some(at) = at {
                    for (d, col) in db.iter_mut().zip(at.data.chunks_exact(n.max(1))) {
                        *d = dot(col, &g.data);
                    }
                } else if m == 1 {
                    for (row, &gv) in a.data.chunks_exact(k.max(1)).zip(&g.data) {
                        for (d, &av) in db.iter_mut().zip(row) {
                            *d += av * gv;
                        }
                    }
                }
                for i in (0..n).filter(|_| m != 1) {
                    let ai = &a.data[i * k..(i + 1) * k];
                    let gi = &g.data[i * m..(i + 1) * m];
                    for (p, &av) in ai.iter().enumerate() {
                        for (d, &gv) in db[p * m..(p + 1) * m].iter_mut().zip(gi) {
                            *d += av * gv;
                        }
                    }
                }
                accumulate(
                    grads,
                    ins[1],
                    Arr {
                        shape: b.shape.clone(),
                        data: db,
                    },
                );
            }
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
        Op::Cholesky { upper } => {
            let y = out()?;
            let r = y.shape.len();
            let (l, gl) = if upper {
                (transpose(y, r - 2, r - 1), transpose(&g, r - 2, r - 1))
            } else {
                (y.clone(), g)
            };
            accumulate(grads, ins[0], cholesky_backward(&l, &gl)?);
        }
        Op::Extremum { dims, .. } => {
            // The gradient goes to the extreme values, split evenly between ties (as torch's
            // amax/amin do).
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let kept = kept_shape(&x.shape, &dims);
            let y = Arr {
                shape: kept.clone(),
                data: out()?.data.clone(),
            };
            let gk = Arr {
                shape: kept.clone(),
                data: g.data.clone(),
            };
            let hit = zip(x, &y, |a, b| f64::from(u8::from(a == b)))?;
            let count = hit.sum_to(&kept);
            let share = zip(&gk, &count, |g, c| if c > 0.0 { g / c } else { 0.0 })?;
            accumulate(grads, ins[0], zip(&hit, &share, |h, s| h * s)?);
        }
        Op::Logsumexp { dims, .. } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let y = out()?;
            let kept = kept_shape(&x.shape, &dims);
            let yk = Arr {
                shape: kept.clone(),
                data: y.data.clone(),
            };
            let gk = Arr {
                shape: kept,
                data: g.data.clone(),
            };
            let w = zip(x, &yk, |x, y| (x - y).exp())?;
            accumulate(grads, ins[0], zip(&w, &gk, |w, g| w * g)?);
        }
        Op::Random(Rnd::StandardGamma) => {
            unary(grads, g, &|alpha, x| random::standard_gamma_grad(x, alpha))?
        }
        Op::Random(_) => {}
        Op::Detach
        | Op::TrilIndices
        | Op::Eye
        | Op::Size
        | Op::Arange
        | Op::Number
        | Op::ScalarTensor
        | Op::Fill
        | Op::LogicalAnd
        | Op::LogicalOr
        | Op::Compare(_)
        | Op::LogicalNot
        | Op::ListConstruct => {}
    }
    Ok(())
}
