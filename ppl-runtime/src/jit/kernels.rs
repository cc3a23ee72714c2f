//! Array kernels of the compiled ops: broadcasting arithmetic, gathers and scatters along a
//! dimension, products, triangular solves, padding, diagonals.

use super::array::{broadcast_shapes, strides, Arr};
use super::graph::*;
use crate::error::Result;

pub(super) fn zip(a: &Arr, b: &Arr, f: impl Fn(f64, f64) -> f64) -> Result<Arr> {
    a.zip(b, f).ok_or_else(|| {
        bad(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })
}

/// `x` summed over `dims`, keeping them as size 1.
pub(super) fn sum_keep(x: &Arr, dims: &[usize]) -> Arr {
    let kept = kept_shape(&x.shape, dims);
    x.sum_to(&kept)
}

pub(super) fn squeeze_dims(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !dims.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

/// `(outer, n, inner)` of `shape` around `dim`.
pub(super) fn split3(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

/// `(dim, start, len, step)` of a `slice(self, dim, start, end, step)` or
/// `narrow(self, dim, start, length)` of `x`.
pub(super) fn slice_args(op: ShapeOp, x: &Arr) -> Result<(usize, usize, usize, usize)> {
    let ShapeOp::Slice {
        dim,
        start,
        end,
        step,
        len,
    } = op
    else {
        return Err(bad("not a slice"));
    };
    let dim = norm_dim(dim, x.shape.len())?;
    let (s, len, step) = match (start, len) {
        // narrow(dim, start, length).
        (Some(st), Some(len)) => {
            let st = if st < 0 { st + x.shape[dim] as i64 } else { st };
            (st as usize, len as usize, 1)
        }
        _ => slice_range(x.shape[dim], start, end, step)?,
    };
    Ok((dim, s, len, step))
}

/// `shape` with the dims in `dims` set to 1 (a reduction's result with `keepdim`).
pub(super) fn kept_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect()
}

/// The resolved `(start, len, step)` of a slice.
pub(super) fn slice_range(
    n: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: i64,
) -> Result<(usize, usize, usize)> {
    let n = n as i64;
    let fix = |v: i64| -> i64 {
        let v = if v < 0 { v + n } else { v };
        v.clamp(0, n)
    };
    let s = start.map_or(0, fix);
    let e = end.map_or(n, fix);
    if step <= 0 {
        return Err(bad("slice step must be positive"));
    }
    let len = if e > s { (e - s + step - 1) / step } else { 0 };
    Ok((s as usize, len as usize, step as usize))
}

/// Gathers along `dim`: `out[o, j, i] = x[o, idx[j], i]`.
pub(super) fn gather(x: &Arr, dim: usize, idx: impl Iterator<Item = usize> + Clone) -> Arr {
    let (outer, _, inner) = split3(&x.shape, dim);
    let n = x.shape[dim];
    let m = idx.clone().count();
    let mut data = Vec::with_capacity(outer * m * inner);
    for o in 0..outer {
        for j in idx.clone() {
            let base = (o * n + j) * inner;
            data.extend_from_slice(&x.data[base..base + inner]);
        }
    }
    let mut shape = x.shape.clone();
    shape[dim] = m;
    Arr { shape, data }
}

/// The adjoint of [`gather`]: `g` scattered into zeros of `shape`.
pub(super) fn scatter(
    g: &Arr,
    shape: &[usize],
    dim: usize,
    idx: impl Iterator<Item = usize> + Clone,
) -> Arr {
    let mut out = Arr::full(shape, 0.0);
    let (outer, n, inner) = split3(shape, dim);
    let m = idx.clone().count();
    for o in 0..outer {
        for (jj, j) in idx.clone().enumerate() {
            let src = (o * m + jj) * inner;
            let dst = (o * n + j) * inner;
            for i in 0..inner {
                out.data[dst + i] += g.data[src + i];
            }
        }
    }
    out
}

/// Integer indices into a dimension of size `n` (negative from the end).
pub(super) fn indices(idx: &Arr, n: usize) -> Result<Vec<usize>> {
    idx.data
        .iter()
        .map(|&i| {
            let i = if i < 0.0 { i + n as f64 } else { i };
            if i < 0.0 || i >= n as f64 {
                Err(bad(format!("index {i} out of range for size {n}")))
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// For `gather(x, dim, idx)`: the flat offset into `x` of each output value.
pub(super) fn gather_offsets(x: &Arr, dim: usize, idx: &Arr) -> Result<Vec<usize>> {
    if idx.shape.len() != x.shape.len() {
        return Err(bad("gather: index and input of different ranks"));
    }
    let xs = strides(&x.shape);
    let is = strides(&idx.shape);
    let n = x.shape[dim];
    let mut out = Vec::with_capacity(idx.numel());
    for (flat, &iv) in idx.data.iter().enumerate() {
        let mut off = 0;
        for d in 0..idx.shape.len() {
            let c = (flat / is[d]) % idx.shape[d].max(1);
            let c = if d == dim {
                let i = if iv < 0.0 { iv + n as f64 } else { iv };
                if i < 0.0 || i >= n as f64 {
                    return Err(bad(format!("gather index {iv} out of range for size {n}")));
                }
                i as usize
            } else {
                c
            };
            off += c * xs[d];
        }
        out.push(off);
    }
    Ok(out)
}

/// One line of an array along a dimension: its `j`-th element is at `start + j * stride`.
#[derive(Clone, Copy)]
pub(super) struct Line {
    start: usize,
    stride: usize,
    /// The number of elements.
    pub(super) n: usize,
}

impl Line {
    /// The flat index of element `j`.
    pub(super) fn at(self, j: usize) -> usize {
        self.start + j * self.stride
    }
}

/// The lines of an array of `shape` along `dim` (what softmax, cumsum and cumprod act on).
pub(super) fn lines(shape: &[usize], dim: usize) -> impl Iterator<Item = Line> {
    let (outer, n, inner) = split3(shape, dim);
    (0..outer).flat_map(move |o| {
        (0..inner).map(move |i| Line {
            start: o * n * inner + i,
            stride: inner,
            n,
        })
    })
}

/// The cumulative sum along `dim` (from the end when `reverse`: the adjoint of cumsum).
pub(super) fn cumsum(x: &Arr, dim: usize, reverse: bool) -> Arr {
    let mut y = x.clone();
    for l in lines(&x.shape, dim) {
        let mut acc = 0.0;
        for jj in 0..l.n {
            let j = if reverse { l.n - 1 - jj } else { jj };
            acc += x.data[l.at(j)];
            y.data[l.at(j)] = acc;
        }
    }
    y
}

/// `A` and `B` of `linalg_solve_triangular` broadcast to a common batch: `(A, B, n, k)` with
/// `A` of shape (batch, n, n) and `B` of shape (batch, n, k).
pub(super) fn solve_operands(a: &Arr, b: &Arr) -> Result<(Arr, Arr, usize, usize)> {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    if ra < 2 || rb < 2 || a.shape[ra - 1] != a.shape[ra - 2] || b.shape[rb - 2] != a.shape[ra - 1]
    {
        return Err(bad(format!(
            "linalg_solve_triangular of shapes {:?} and {:?}",
            a.shape, b.shape
        )));
    }
    let (n, k) = (a.shape[ra - 1], b.shape[rb - 1]);
    let batch = broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2])
        .ok_or_else(|| bad("linalg_solve_triangular: batch shapes do not broadcast"))?;
    let full = |m: usize, c: usize| -> Vec<usize> {
        let mut s = batch.clone();
        s.extend([m, c]);
        s
    };
    Ok((a.expand_to(&full(n, n)), b.expand_to(&full(n, k)), n, k))
}

/// Solves `A X = B` for `X` with `A` (..., n, n) triangular and `B` (..., n, k), batches
/// broadcast; `Aᵀ X = B` when `transposed`.
pub(super) fn solve_triangular(
    a: &Arr,
    b: &Arr,
    upper: bool,
    unit: bool,
    transposed: bool,
) -> Result<Arr> {
    let (a, mut x, n, k) = solve_operands(a, b)?;
    // Solving with Aᵀ swaps lower and upper.
    let forward = upper == transposed;
    for (ab, xb) in a.data.chunks(n * n).zip(x.data.chunks_mut(n * k)) {
        let at = |i: usize, j: usize| {
            if transposed {
                ab[j * n + i]
            } else {
                ab[i * n + j]
            }
        };
        for c in 0..k {
            for step in 0..n {
                let i = if forward { step } else { n - 1 - step };
                let mut acc = xb[i * k + c];
                let (lo, hi) = if forward { (0, i) } else { (i + 1, n) };
                for j in lo..hi {
                    acc -= at(i, j) * xb[j * k + c];
                }
                xb[i * k + c] = if unit { acc } else { acc / at(i, i) };
            }
        }
    }
    Ok(x)
}

/// `f(x, on the kept triangle)` over the last two dims: `tril` keeps `j - i <= d`, `triu`
/// keeps `j - i >= d`.
pub(super) fn tri_mask(x: &Arr, d: i64, lower: bool, f: impl Fn(f64, bool) -> f64) -> Arr {
    let r = x.shape.len();
    let (rows, cols) = (x.shape[r - 2], x.shape[r - 1]);
    let mut out = x.clone();
    for (flat, y) in out.data.iter_mut().enumerate() {
        let j = (flat % cols) as i64;
        let i = ((flat / cols) % rows) as i64;
        let keep = if lower { j - i <= d } else { j - i >= d };
        *y = f(*y, keep);
    }
    out
}

/// Constant padding (torch's `pad` list: last dim first, `(before, after)` pairs, non-negative):
/// the padded array and where `x` starts in each dim.
pub(super) fn pad(x: &Arr, pads: &[i64], fill: f64) -> Result<(Arr, Vec<usize>)> {
    let r = x.shape.len();
    if !pads.len().is_multiple_of(2) || pads.len() / 2 > r || pads.iter().any(|&p| p < 0) {
        return Err(bad(format!("pad {pads:?} of shape {:?}", x.shape)));
    }
    let mut starts = vec![0usize; r];
    let mut shape = x.shape.clone();
    for (k, pair) in pads.chunks(2).enumerate() {
        let d = r - 1 - k;
        starts[d] = pair[0] as usize;
        shape[d] += (pair[0] + pair[1]) as usize;
    }
    let mut out = Arr::full(&shape, fill);
    let xs = strides(&x.shape);
    let os = strides(&shape);
    for (flat, &xv) in x.data.iter().enumerate() {
        let mut off = 0;
        for d in 0..r {
            let c = (flat / xs[d]) % x.shape[d];
            off += (c + starts[d]) * os[d];
        }
        out.data[off] = xv;
    }
    Ok((out, starts))
}

/// The lower Cholesky factor of each (..., n, n) symmetric positive-definite matrix of `a`.
pub(super) fn cholesky(a: &Arr) -> Result<Arr> {
    let r = a.shape.len();
    if r < 2 || a.shape[r - 1] != a.shape[r - 2] {
        return Err(bad(format!("cholesky of shape {:?}", a.shape)));
    }
    let n = a.shape[r - 1];
    let mut l = Arr::full(&a.shape, 0.0);
    for (ab, lb) in a.data.chunks(n * n).zip(l.data.chunks_mut(n * n)) {
        for j in 0..n {
            let mut d = ab[j * n + j];
            for k in 0..j {
                d -= lb[j * n + k] * lb[j * n + k];
            }
            if d.is_nan() || d <= 0.0 {
                return Err(bad("cholesky of a matrix that is not positive definite"));
            }
            let d = d.sqrt();
            lb[j * n + j] = d;
            for i in j + 1..n {
                let mut s = ab[i * n + j];
                for k in 0..j {
                    s -= lb[i * n + k] * lb[j * n + k];
                }
                lb[i * n + j] = s / d;
            }
        }
    }
    Ok(l)
}

/// The gradient of `A` from that of its lower Cholesky factor `L` (Murray 2016, as torch):
/// `S = L⁻ᵀ Φ(Lᵀ Ḡ) L⁻¹` with `Φ` the lower triangle with a halved diagonal, symmetrized.
pub(super) fn cholesky_backward(l: &Arr, g: &Arr) -> Result<Arr> {
    let r = l.shape.len();
    let n = l.shape[r - 1];
    let mut p = Arr::full(&l.shape, 0.0);
    for ((lb, gb), pb) in l
        .data
        .chunks(n * n)
        .zip(g.data.chunks(n * n))
        .zip(p.data.chunks_mut(n * n))
    {
        for i in 0..n {
            for j in 0..=i {
                // (Lᵀ G)[i, j] = Σ_k L[k, i] G[k, j].
                let s: f64 = (0..n).map(|k| lb[k * n + i] * gb[k * n + j]).sum();
                pb[i * n + j] = if i == j { 0.5 * s } else { s };
            }
        }
    }
    // X = L⁻ᵀ P, then S = X L⁻¹ = (L⁻ᵀ Xᵀ)ᵀ.
    let x = solve_triangular(l, &p, false, false, true)?;
    let xt = transpose(&x, r - 2, r - 1);
    let s = transpose(&solve_triangular(l, &xt, false, false, true)?, r - 2, r - 1);
    let st = transpose(&s, r - 2, r - 1);
    zip(&s, &st, |a, b| 0.5 * (a + b))
}

/// The flat offsets into `x` of its diagonal, and the diagonal's shape (the other dims, then
/// the diagonal).
pub(super) fn diagonal_offsets(
    x: &Arr,
    off: i64,
    d1: usize,
    d2: usize,
) -> (Vec<usize>, Vec<usize>) {
    let xs = strides(&x.shape);
    let (r0, c0) = if off >= 0 {
        (0, off as usize)
    } else {
        ((-off) as usize, 0)
    };
    let len = x.shape[d1]
        .saturating_sub(r0)
        .min(x.shape[d2].saturating_sub(c0));
    let rest: Vec<usize> = (0..x.shape.len()).filter(|&d| d != d1 && d != d2).collect();
    let mut shape: Vec<usize> = rest.iter().map(|&d| x.shape[d]).collect();
    shape.push(len);
    let outer: usize = rest.iter().map(|&d| x.shape[d]).product();
    let mut offsets = Vec::with_capacity(outer * len);
    for o in 0..outer {
        let mut base = 0;
        let mut rem = o;
        for &d in rest.iter().rev() {
            base += (rem % x.shape[d]) * xs[d];
            rem /= x.shape[d];
        }
        for i in 0..len {
            offsets.push(base + (r0 + i) * xs[d1] + (c0 + i) * xs[d2]);
        }
    }
    (offsets, shape)
}

/// `Σ x_i` with four partial sums (so the compiler can vectorize it).
pub(super) fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let c = x.chunks_exact(4);
    let tail: f64 = c.remainder().iter().sum();
    for v in c {
        for j in 0..4 {
            acc[j] += v[j];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `Σ a_i b_i` with four partial sums (so the compiler can vectorize it).
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `a @ b` for vectors and matrices.
pub(super) fn matmul(a: &Arr, b: &Arr) -> Result<Arr> {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (n, k) = match ra {
        1 => (1, a.shape[0]),
        2 => (a.shape[0], a.shape[1]),
        _ => return Err(bad("matmul of rank > 2")),
    };
    let (k2, m) = match rb {
        1 => (b.shape[0], 1),
        2 => (b.shape[0], b.shape[1]),
        _ => return Err(bad("matmul of rank > 2")),
    };
    if k != k2 {
        return Err(bad(format!(
            "matmul of shapes {:?} and {:?}",
            a.shape, b.shape
        )));
    }
    let mut data = vec![0.0; n * m];
    if m == 1 {
        // Matrix-vector: one dot product per row.
        for (o, row) in data.iter_mut().zip(a.data.chunks_exact(k.max(1))) {
            *o = dot(row, &b.data);
        }
        return Ok(Arr {
            shape: if ra == 1 { vec![] } else { vec![n] },
            data,
        });
    }
    for i in 0..n {
        let row = &a.data[i * k..(i + 1) * k];
        for (p, &av) in row.iter().enumerate() {
            if av == 0.0 {
                continue;
            }
            let brow = &b.data[p * m..(p + 1) * m];
            let out = &mut data[i * m..(i + 1) * m];
            for (o, &bv) in out.iter_mut().zip(brow) {
                *o += av * bv;
            }
        }
    }
    let shape = match (ra, rb) {
        (1, 1) => vec![],
        (1, 2) => vec![m],
        (2, 1) => vec![n],
        _ => vec![n, m],
    };
    Ok(Arr { shape, data })
}

pub(super) fn transpose2(x: &Arr) -> Arr {
    let (r, c) = (x.shape[0], x.shape[1]);
    let mut data = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            data[j * r + i] = x.data[i * c + j];
        }
    }
    Arr {
        shape: vec![c, r],
        data,
    }
}

/// Swaps dims `d0` and `d1`.
/// `x` with its dims reordered: dim `i` of the result is dim `perm[i]` of `x`.
pub(super) fn permute(x: &Arr, perm: &[usize]) -> Arr {
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let xs = strides(&x.shape);
    let perm_strides: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    let n = x.numel();
    let mut data = Vec::with_capacity(n);
    let mut counter = vec![0usize; shape.len()];
    for _ in 0..n {
        let off: usize = counter.iter().zip(&perm_strides).map(|(c, s)| c * s).sum();
        data.push(x.data[off]);
        for d in (0..shape.len()).rev() {
            counter[d] += 1;
            if counter[d] < shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
    Arr { shape, data }
}

pub(super) fn transpose(x: &Arr, d0: usize, d1: usize) -> Arr {
    if d0 == d1 {
        return x.clone();
    }
    let mut perm: Vec<usize> = (0..x.shape.len()).collect();
    perm.swap(d0, d1);
    permute(x, &perm)
}

pub(super) fn softplus(x: f64, beta: f64, threshold: f64) -> f64 {
    if x * beta > threshold {
        x
    } else {
        (x * beta).exp().ln_1p() / beta
    }
}

pub(super) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub(super) fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

pub(super) fn list_arrs<'a>(env: &'a Env, v: &Val) -> Result<Vec<&'a Arr>> {
    match v {
        Val::List(items) => items.iter().map(|&i| arr(env.get(i))).collect(),
        _ => Err(bad("expected a list of tensors")),
    }
}

/// Reduction code of torch's loss functions: 0 none, 1 mean, 2 sum.
pub(super) fn reduce_loss(x: Arr, reduction: i64) -> Arr {
    match reduction {
        1 => {
            let n = x.numel().max(1) as f64;
            Arr::scalar(x.data.iter().sum::<f64>() / n)
        }
        2 => Arr::scalar(x.data.iter().sum()),
        _ => x,
    }
}

/// Integer dtypes of c10's `ScalarType` (uint8 ... int64, bool and the unsigned ones).
pub(super) fn is_integer_kind(code: i64) -> bool {
    matches!(code, 0..=4 | 11 | 27..=29)
}

/// The max over `dims`, keeping them as size 1.
pub(super) fn max_keep(x: &Arr, dims: &[usize]) -> Arr {
    extremum_keep(x, dims, true)
}

/// The max (or min) over `dims`, keeping them as size 1.
pub(super) fn extremum_keep(x: &Arr, dims: &[usize], max: bool) -> Arr {
    let kept = kept_shape(&x.shape, dims);
    let init = if max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let mut out = Arr::full(&kept, init);
    let idx = super::array::broadcast_index(&kept, &x.shape);
    for (v, &i) in x.data.iter().zip(&idx) {
        if (max && *v > out.data[i]) || (!max && *v < out.data[i]) || v.is_nan() {
            out.data[i] = *v;
        }
    }
    out
}

pub(super) fn concat(parts: &[Arr], dim: usize) -> Result<Arr> {
    let first = &parts[0];
    let mut shape = first.shape.clone();
    let mut total = 0;
    for p in parts {
        if p.shape.len() != shape.len()
            || p.shape
                .iter()
                .enumerate()
                .any(|(i, &d)| i != dim && d != shape[i])
        {
            return Err(bad(format!(
                "cannot concatenate {:?} and {:?} along {dim}",
                first.shape, p.shape
            )));
        }
        total += p.shape[dim];
    }
    shape[dim] = total;
    let outer: usize = shape[..dim].iter().product();
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for p in parts {
            let (_, n, inner) = split3(&p.shape, dim);
            let len = n * inner;
            data.extend_from_slice(&p.data[o * len..(o + 1) * len]);
        }
    }
    Ok(Arr { shape, data })
}
