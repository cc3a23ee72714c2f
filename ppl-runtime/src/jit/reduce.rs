//! Reductions and scans along dims (sum, mean, logsumexp, amax/amin, softmax, cumsum/cumprod):
//! each op's value and its vector-Jacobian product, side by side.

use super::array::Arr;
use super::graph::*;
use super::kernels::*;
use super::ops::{accumulate, Vjp};
use crate::error::Result;

/// A reduction or scan, its dims decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ReduceOp {
    LogSoftmax {
        dim: i64,
    },
    Softmax {
        dim: i64,
    },
    Cumsum {
        dim: i64,
    },
    Cumprod {
        dim: i64,
    },
    /// Over `dims` (all when `None`).
    Sum {
        dims: Option<IntList>,
        keepdim: bool,
    },
    /// Over `dims` (all when `None`).
    Mean {
        dims: Option<IntList>,
        keepdim: bool,
    },
    Logsumexp {
        dims: Option<IntList>,
        keepdim: bool,
    },
    /// `amax` (`max`) or `amin` over dims.
    Extremum {
        max: bool,
        dims: Option<IntList>,
        keepdim: bool,
    },
}

impl ReduceOp {
    /// The op an aten name (without `aten::`) stands for, with default arguments.
    pub(super) fn of(name: &str) -> Option<ReduceOp> {
        Some(match name {
            "log_softmax" => ReduceOp::LogSoftmax { dim: -1 },
            "softmax" => ReduceOp::Softmax { dim: -1 },
            "cumsum" => ReduceOp::Cumsum { dim: 0 },
            "cumprod" => ReduceOp::Cumprod { dim: 0 },
            "sum" => ReduceOp::Sum {
                dims: None,
                keepdim: false,
            },
            "mean" => ReduceOp::Mean {
                dims: None,
                keepdim: false,
            },
            "logsumexp" => ReduceOp::Logsumexp {
                dims: None,
                keepdim: false,
            },
            "amax" => ReduceOp::Extremum {
                max: true,
                dims: None,
                keepdim: false,
            },
            "amin" => ReduceOp::Extremum {
                max: false,
                dims: None,
                keepdim: false,
            },
            _ => return None,
        })
    }

    /// Fills in the op's arguments from the node's constant argument slots.
    pub(super) fn decode(&mut self, a: &Args) -> Result<()> {
        match self {
            // sum(self, dtype) is a full reduction; sum(self, dim, keepdim, dtype) is not.
            ReduceOp::Sum { dims, keepdim } | ReduceOp::Mean { dims, keepdim } if a.len() >= 3 => {
                *dims = match a.arg(1)? {
                    None | Some(Val::None) => None,
                    Some(v) => IntList::from_ints(&ints(v)?)?,
                };
                *keepdim = matches!(a.arg(2)?, Some(Val::Bool(true)));
            }
            ReduceOp::LogSoftmax { dim }
            | ReduceOp::Softmax { dim }
            | ReduceOp::Cumsum { dim }
            | ReduceOp::Cumprod { dim } => *dim = int(a.need(1)?)?,
            ReduceOp::Logsumexp { dims, keepdim } | ReduceOp::Extremum { dims, keepdim, .. } => {
                *dims = match a.arg(1)? {
                    None | Some(Val::None) => None,
                    Some(v) => IntList::from_ints(&ints(v)?)?,
                };
                *keepdim = matches!(a.arg(2)?, Some(Val::Bool(true)));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The value of `node`.
pub(super) fn forward(op: ReduceOp, node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    Ok(match op {
        ReduceOp::LogSoftmax { dim } | ReduceOp::Softmax { dim } => {
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
                    y.data[l.at(j)] = if matches!(op, ReduceOp::Softmax { .. }) {
                        v.exp()
                    } else {
                        v
                    };
                }
            }
            Val::T(y)
        }
        ReduceOp::Cumsum { dim } => {
            let x = arr(v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            Val::T(cumsum(x, dim, false))
        }
        ReduceOp::Cumprod { dim } => {
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
        ReduceOp::Sum {
            dims,
            keepdim: keep,
        }
        | ReduceOp::Mean {
            dims,
            keepdim: keep,
        } => {
            let x = arr(v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let mut s = sum_keep(x, &dims);
            if matches!(op, ReduceOp::Mean { .. }) {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                s.data.iter_mut().for_each(|y| *y /= n);
            }
            if !keep {
                s.shape = squeeze_dims(&s.shape, &dims);
            }
            Val::T(s)
        }
        ReduceOp::Extremum {
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
        ReduceOp::Logsumexp {
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
    })
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(
    op: ReduceOp,
    node: &Node,
    env: &Env,
    g: Arr,
    grads: &mut [Option<Arr>],
) -> Result<()> {
    let vjp = Vjp { node, env };
    let ins = &node.ins;
    match op {
        ReduceOp::LogSoftmax { dim } | ReduceOp::Softmax { dim } => {
            let x = arr(vjp.v(0))?;
            let y = vjp.out()?;
            let dim = norm_dim(dim, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for l in lines(&x.shape, dim) {
                if matches!(op, ReduceOp::LogSoftmax { .. }) {
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
        ReduceOp::Cumsum { dim } => {
            let x = arr(vjp.v(0))?;
            let dim = norm_dim(dim, x.shape.len())?;
            accumulate(grads, ins[0], cumsum(&g, dim, true));
        }
        ReduceOp::Cumprod { dim } => {
            // dx_i = Σ_{j ≥ i} g_j Π_{k ≤ j, k ≠ i} x_k, without dividing by x_i (which may be 0).
            let x = arr(vjp.v(0))?;
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
        ReduceOp::Sum { dims, .. } | ReduceOp::Mean { dims, .. } => {
            let x = arr(vjp.v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let kept = kept_shape(&x.shape, &dims);
            let mut gk = Arr {
                shape: kept,
                data: g.data.clone(),
            };
            if matches!(op, ReduceOp::Mean { .. }) {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                gk.data.iter_mut().for_each(|y| *y /= n);
            }
            accumulate(grads, ins[0], gk.expand_to(&x.shape));
        }
        ReduceOp::Extremum { dims, .. } => {
            // The gradient goes to the extreme values, split evenly between ties (as torch's
            // amax/amin do).
            let x = arr(vjp.v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let kept = kept_shape(&x.shape, &dims);
            let y = Arr {
                shape: kept.clone(),
                data: vjp.out()?.data.clone(),
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
        ReduceOp::Logsumexp { dims, .. } => {
            let x = arr(vjp.v(0))?;
            let dims = reduced_dims(dims, x.shape.len())?;
            let y = vjp.out()?;
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
    }
    Ok(())
}
