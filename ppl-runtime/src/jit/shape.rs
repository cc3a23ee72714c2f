//! Shape, view and indexing ops (expand, cat/stack, select/slice, reshape, transpose/permute,
//! gather/index_select/index_copy, pad, diagonals and triangles) and the factories that build
//! constants: each op's value and its vector-Jacobian product, side by side.

use super::array::{broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::*;
use super::ops::{accumulate, Vjp};
use crate::error::Result;

/// A shape, view, indexing or factory op, its dims and offsets decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ShapeOp {
    Size,
    Arange,
    Gather {
        dim: i64,
    },
    IndexSelect {
        dim: i64,
    },
    TrilIndices,
    Tril {
        diagonal: i64,
    },
    Triu {
        diagonal: i64,
    },
    DiagEmbed {
        offset: i64,
        dim1: i64,
        dim2: i64,
    },
    Eye,
    IndexCopy {
        dim: i64,
    },
    /// Constant padding: torch's list (last dim first, `(before, after)` pairs).
    Pad {
        pads: IntList,
        fill: f64,
    },
    Diagonal {
        offset: i64,
        dim1: i64,
        dim2: i64,
    },
    Expand,
    /// Output `i` of `broadcast_tensors` of the inputs.
    BroadcastAll(usize),
    Stack {
        dim: i64,
    },
    Cat {
        dim: i64,
    },
    Select {
        dim: i64,
        index: i64,
    },
    /// `start..end` by `step` along `dim` (`None`: from the start, to the end); `narrow` is a
    /// slice of `len` from `start`.
    Slice {
        dim: i64,
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
        len: Option<i64>,
    },
    Reshape,
    Unsqueeze,
    Squeeze,
    Identity,
    Detach,
    /// zeros, ones, full and their `_like` forms.
    Fill,
    ListConstruct,
    /// `transpose(x, d0, d1)`; `t(x)` when `None`.
    Transpose {
        dims: Option<(i64, i64)>,
    },
    Permute {
        dims: IntList,
    },
}

impl ShapeOp {
    /// The op an aten name (without `aten::`) stands for, with default arguments.
    pub(super) fn of(name: &str, kind: &str) -> Option<ShapeOp> {
        Some(match name {
            "gather" => ShapeOp::Gather { dim: 0 },
            "index_select" => ShapeOp::IndexSelect { dim: 0 },
            "diagonal" => ShapeOp::Diagonal {
                offset: 0,
                dim1: 0,
                dim2: 1,
            },
            "tril_indices" => ShapeOp::TrilIndices,
            "tril" => ShapeOp::Tril { diagonal: 0 },
            "triu" => ShapeOp::Triu { diagonal: 0 },
            "diag_embed" => ShapeOp::DiagEmbed {
                offset: 0,
                dim1: -2,
                dim2: -1,
            },
            "eye" => ShapeOp::Eye,
            "index_copy" => ShapeOp::IndexCopy { dim: 0 },
            "pad" | "constant_pad_nd" => ShapeOp::Pad {
                pads: IntList::EMPTY,
                fill: 0.0,
            },
            "size" => ShapeOp::Size,
            "arange" => ShapeOp::Arange,
            "expand" | "expand_as" | "broadcast_to" => ShapeOp::Expand,
            "stack" => ShapeOp::Stack { dim: 0 },
            "cat" | "concat" | "concatenate" => ShapeOp::Cat { dim: 0 },
            "select" => ShapeOp::Select { dim: 0, index: 0 },
            "slice" | "narrow" => ShapeOp::Slice {
                dim: 0,
                start: None,
                end: None,
                step: 1,
                len: None,
            },
            "reshape" | "view" | "flatten" => ShapeOp::Reshape,
            "unsqueeze" => ShapeOp::Unsqueeze,
            "squeeze" => ShapeOp::Squeeze,
            "clone" | "contiguous" | "alias" | "lift_fresh" | "positive" => ShapeOp::Identity,
            "detach" => ShapeOp::Detach,
            "zeros" | "ones" | "full" | "zeros_like" | "ones_like" | "full_like" | "empty"
            | "empty_like" => ShapeOp::Fill,
            "transpose" | "t" | "swapaxes" => ShapeOp::Transpose { dims: None },
            "permute" => ShapeOp::Permute {
                dims: IntList::EMPTY,
            },
            _ if kind == "prim::ListConstruct" => ShapeOp::ListConstruct,
            _ => return None,
        })
    }

    /// Fills in the op's arguments from the node's constant argument slots.
    pub(super) fn decode(&mut self, a: &Args) -> Result<()> {
        match self {
            ShapeOp::Gather { dim } | ShapeOp::IndexSelect { dim } | ShapeOp::IndexCopy { dim } => {
                *dim = int(a.need(1)?)?
            }
            ShapeOp::Stack { dim } | ShapeOp::Cat { dim } => {
                if let Some(v) = a.arg(1)? {
                    *dim = int(v)?;
                }
            }
            ShapeOp::Diagonal { offset, dim1, dim2 } => {
                *offset = opt_int(a.arg(1)?)?.unwrap_or(0);
                *dim1 = opt_int(a.arg(2)?)?.unwrap_or(0);
                *dim2 = opt_int(a.arg(3)?)?.unwrap_or(1);
            }
            ShapeOp::DiagEmbed { offset, dim1, dim2 } => {
                *offset = opt_int(a.arg(1)?)?.unwrap_or(0);
                *dim1 = opt_int(a.arg(2)?)?.unwrap_or(-2);
                *dim2 = opt_int(a.arg(3)?)?.unwrap_or(-1);
            }
            ShapeOp::Tril { diagonal } | ShapeOp::Triu { diagonal } => {
                *diagonal = opt_int(a.arg(1)?)?.unwrap_or(0);
            }
            ShapeOp::Pad { pads, fill } => {
                let p = IntList::from_ints(&ints(a.need(1)?)?)?;
                *pads = p.unwrap_or(IntList::EMPTY);
                // constant_pad_nd(x, pad, value); pad(x, pad, mode, value), its mode opaque (only
                // the constant mode is compiled).
                let value = if a.kind().ends_with("constant_pad_nd") {
                    a.arg(2)?
                } else {
                    a.arg(3)?
                };
                *fill = value.map(opt_float).transpose()?.flatten().unwrap_or(0.0);
            }
            ShapeOp::Select { dim, index } => {
                *dim = int(a.need(1)?)?;
                *index = int(a.need(2)?)?;
            }
            ShapeOp::Slice {
                dim,
                start,
                end,
                step,
                len,
            } => {
                *dim = int(a.need(1)?)?;
                if a.kind().ends_with("narrow") {
                    *start = Some(int(a.need(2)?)?);
                    *len = Some(int(a.need(3)?)?);
                } else {
                    *start = opt_int(a.arg(2)?)?;
                    *end = opt_int(a.arg(3)?)?;
                    *step = opt_int(a.arg(4)?)?.unwrap_or(1);
                    if *step <= 0 {
                        return Err(a.unsupported(" with a step that is not positive"));
                    }
                }
            }
            ShapeOp::Transpose { dims } if a.len() >= 3 => {
                *dims = Some((int(a.need(1)?)?, int(a.need(2)?)?));
            }
            ShapeOp::Permute { dims } => {
                *dims = IntList::from_ints(&ints(a.need(1)?)?)?.unwrap_or(IntList::EMPTY);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The value of `node`.
pub(super) fn forward(op: ShapeOp, node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let nin = node.ins.len();
    Ok(match op {
        ShapeOp::Gather { dim } => {
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
        ShapeOp::IndexSelect { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            Val::T(gather(x, dim, idx.into_iter()))
        }
        ShapeOp::Diagonal {
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
        ShapeOp::TrilIndices => {
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
        ShapeOp::Tril { diagonal: d } | ShapeOp::Triu { diagonal: d } => {
            let x = arr(v(0))?;
            Val::T(tri_mask(
                x,
                d,
                matches!(op, ShapeOp::Tril { .. }),
                |x, keep| {
                    if keep {
                        x
                    } else {
                        0.0
                    }
                },
            ))
        }
        ShapeOp::DiagEmbed {
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
        ShapeOp::Eye => {
            let n = int(v(0))? as usize;
            // eye(n, dtype, layout, device, pin) or eye(n, m, dtype, ...).
            let m = if nin >= 6 { int(v(1))? as usize } else { n };
            let mut out = Arr::full(&[n, m], 0.0);
            for i in 0..n.min(m) {
                out.data[i * m + i] = 1.0;
            }
            Val::T(out)
        }
        ShapeOp::IndexCopy { dim } => {
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
        ShapeOp::Pad { pads, fill } => Val::T(pad(arr(v(0))?, pads.as_slice(), fill)?.0),
        ShapeOp::Size => {
            let x = num(v(0))?;
            if nin > 1 {
                Val::Int(x.shape[norm_dim(int(v(1))?, x.shape.len())?] as i64)
            } else {
                Val::Ints(x.shape.iter().map(|&d| d as i64).collect())
            }
        }
        ShapeOp::Arange => {
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
        ShapeOp::Expand => {
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
        ShapeOp::BroadcastAll(i) => {
            let mut shape: Vec<usize> = Vec::new();
            for &s in &node.ins {
                let a = num(env.get(s))?;
                shape = broadcast_shapes(&shape, &a.shape)
                    .ok_or_else(|| bad("broadcast_tensors: shapes do not broadcast"))?;
            }
            Val::T(num(v(i))?.expand_to(&shape))
        }
        ShapeOp::Stack { dim } | ShapeOp::Cat { dim } => {
            let stack = matches!(op, ShapeOp::Stack { .. });
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
        ShapeOp::Select { dim, index: i } => {
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
        ShapeOp::Slice { .. } => {
            let x = arr(v(0))?;
            let (dim, s, len, step) = slice_args(op, x)?;
            Val::T(gather(x, dim, (0..len).map(move |j| s + j * step)))
        }
        ShapeOp::Reshape => {
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
        ShapeOp::Unsqueeze => {
            let x = arr(v(0))?;
            let d = norm_dim(int(v(1))?, x.shape.len() + 1)?;
            let mut shape = x.shape.clone();
            shape.insert(d, 1);
            Val::T(Arr {
                shape,
                data: x.data.clone(),
            })
        }
        ShapeOp::Squeeze => {
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
        ShapeOp::Identity | ShapeOp::Detach => Val::T(arr(v(0))?.clone()),
        ShapeOp::Fill => {
            let name = node.kind.trim_start_matches("aten::");
            let shape: Vec<usize> = if name.ends_with("_like") {
                num(v(0))?.shape.clone()
            } else {
                ints(v(0))?.iter().map(|&d| d.max(0) as usize).collect()
            };
            let fill = match name {
                // `empty` leaves its values unspecified; what reads them overwrites them (an
                // in-place random draw).
                "zeros" | "zeros_like" | "empty" | "empty_like" => 0.0,
                "ones" | "ones_like" => 1.0,
                _ => float(v(1))?,
            };
            Val::T(Arr::full(&shape, fill))
        }
        ShapeOp::ListConstruct => {
            let items: Vec<&Val> = node.ins.iter().map(|&i| env.get(i)).collect();
            if items.iter().all(|x| matches!(x, Val::Int(_))) {
                Val::Ints(items.iter().map(|x| int(x)).collect::<Result<_>>()?)
            } else {
                Val::List(node.ins.clone())
            }
        }
        ShapeOp::Transpose { dims } => {
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
        ShapeOp::Permute { dims } => {
            let x = arr(v(0))?;
            Val::T(permute(x, &dims.normalized(x.shape.len())?))
        }
    })
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(
    op: ShapeOp,
    node: &Node,
    env: &Env,
    g: Arr,
    grads: &mut [Option<Arr>],
) -> Result<()> {
    let vjp = Vjp { node, env };
    let ins = &node.ins;
    let live = env.live;
    match op {
        ShapeOp::Gather { dim } => {
            let x = arr(vjp.v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for (o, gv) in gather_offsets(x, dim, arr(vjp.v(2))?)?
                .into_iter()
                .zip(&g.data)
            {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        ShapeOp::IndexSelect { dim } => {
            let x = arr(vjp.v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(vjp.v(2))?, x.shape[dim])?;
            accumulate(grads, ins[0], scatter(&g, &x.shape, dim, idx.into_iter()));
        }
        ShapeOp::Diagonal {
            offset: off,
            dim1,
            dim2,
        } => {
            let x = arr(vjp.v(0))?;
            let r = x.shape.len();
            let (d1, d2) = (norm_dim(dim1, r)?, norm_dim(dim2, r)?);
            let (offsets, _) = diagonal_offsets(x, off, d1, d2);
            let mut gx = Arr::full(&x.shape, 0.0);
            for (&o, gv) in offsets.iter().zip(&g.data) {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        ShapeOp::Tril { diagonal: d } | ShapeOp::Triu { diagonal: d } => {
            let gx = tri_mask(&g, d, matches!(op, ShapeOp::Tril { .. }), |g, keep| {
                if keep {
                    g
                } else {
                    0.0
                }
            });
            accumulate(grads, ins[0], gx);
        }
        ShapeOp::DiagEmbed { offset: off, .. } => {
            let x = arr(vjp.v(0))?;
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
        ShapeOp::IndexCopy { dim } => {
            let x = arr(vjp.v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            let idx = indices(arr(vjp.v(2))?, x.shape[dim])?;
            if vjp.wants(0) {
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
            if vjp.wants(3) {
                accumulate(grads, ins[3], gather(&g, dim, idx.into_iter()));
            }
        }
        ShapeOp::Pad { pads, .. } => {
            let x = arr(vjp.v(0))?;
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
        ShapeOp::Expand => vjp.send(grads, 0, g.clone())?,
        ShapeOp::BroadcastAll(i) => {
            if vjp.wants(i) {
                vjp.send(grads, i, g.clone())?;
            }
        }
        ShapeOp::Stack { dim } | ShapeOp::Cat { dim } => {
            let stack = matches!(op, ShapeOp::Stack { .. });
            let Val::List(items) = vjp.v(0) else {
                return Err(bad("expected a list"));
            };
            let xs = list_arrs(env, vjp.v(0))?;
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
        ShapeOp::Select { dim, index: i } => {
            let x = arr(vjp.v(0))?;
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
        ShapeOp::Slice { .. } => {
            let x = arr(vjp.v(0))?;
            let (dim, s, len, step) = slice_args(op, x)?;
            accumulate(
                grads,
                ins[0],
                scatter(&g, &x.shape, dim, (0..len).map(move |j| s + j * step)),
            );
        }
        ShapeOp::Reshape | ShapeOp::Unsqueeze | ShapeOp::Squeeze | ShapeOp::Identity => {
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
        ShapeOp::Transpose { dims } => {
            let x = arr(vjp.v(0))?;
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
        ShapeOp::Permute { dims } => {
            let x = arr(vjp.v(0))?;
            let r = x.shape.len();
            let perm = dims.normalized(r)?;
            let mut inverse = vec![0usize; r];
            for (i, p) in perm.iter().enumerate() {
                inverse[*p] = i;
            }
            accumulate(grads, ins[0], permute(&g, &inverse));
        }
        ShapeOp::Detach
        | ShapeOp::TrilIndices
        | ShapeOp::Eye
        | ShapeOp::Size
        | ShapeOp::Arange
        | ShapeOp::Fill
        | ShapeOp::ListConstruct => {}
    }
    Ok(())
}
