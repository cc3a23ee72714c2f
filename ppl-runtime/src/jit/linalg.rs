//! Linear algebra (matmul, Cholesky, triangular solves): each op's value and its
//! vector-Jacobian product, side by side.

use super::array::Arr;
use super::graph::*;
use super::kernels::*;
use super::ops::{accumulate, Vjp};
use crate::error::Result;

/// A linear-algebra op, its flags decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum LinalgOp {
    /// `A X = B` for `X`, `A` triangular.
    SolveTriangular {
        upper: bool,
        left: bool,
        unit: bool,
    },
    Cholesky {
        upper: bool,
    },
    Matmul,
}

impl LinalgOp {
    /// The op an aten name (without `aten::`) stands for, with default arguments.
    pub(super) fn of(name: &str) -> Option<LinalgOp> {
        Some(match name {
            "linalg_solve_triangular" => LinalgOp::SolveTriangular {
                upper: false,
                left: true,
                unit: false,
            },
            "linalg_cholesky" | "cholesky" => LinalgOp::Cholesky { upper: false },
            "matmul" | "mm" | "mv" | "dot" => LinalgOp::Matmul,
            _ => return None,
        })
    }

    /// Fills in the op's arguments from the node's constant argument slots.
    pub(super) fn decode(&mut self, a: &Args) -> Result<()> {
        match self {
            LinalgOp::SolveTriangular { upper, left, unit } => {
                *upper = matches!(a.need(2)?, Val::Bool(true));
                *left = !matches!(a.arg(3)?, Some(Val::Bool(false)));
                *unit = matches!(a.arg(4)?, Some(Val::Bool(true)));
                if !*left {
                    return Err(a.unsupported(" with left = false"));
                }
            }
            LinalgOp::Cholesky { upper } => *upper = matches!(a.arg(1)?, Some(Val::Bool(true))),
            _ => {}
        }
        Ok(())
    }
}

/// The value of `node`.
pub(super) fn forward(op: LinalgOp, node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    Ok(match op {
        LinalgOp::SolveTriangular { upper, unit, .. } => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            Val::T(solve_triangular(a, b, upper, unit, false)?)
        }
        LinalgOp::Matmul => {
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
        LinalgOp::Cholesky { upper } => {
            let l = cholesky(arr(v(0))?)?;
            let r = l.shape.len();
            Val::T(if upper {
                transpose(&l, r - 2, r - 1)
            } else {
                l
            })
        }
    })
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(
    op: LinalgOp,
    node: &Node,
    env: &Env,
    g: Arr,
    grads: &mut [Option<Arr>],
) -> Result<()> {
    let vjp = Vjp { node, env };
    let ins = &node.ins;
    match op {
        LinalgOp::SolveTriangular { upper, unit, .. } => {
            // X = A⁻¹ B: dB = A⁻ᵀ G, dA = -dB Xᵀ (on A's triangle); both summed over the
            // batch dims they were broadcast along.
            let (a, b) = (arr(vjp.v(0))?, arr(vjp.v(1))?);
            let db = solve_triangular(a, &g, upper, unit, true)?;
            if vjp.wants(0) {
                let x = vjp.out()?;
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
            if vjp.wants(1) {
                accumulate(grads, ins[1], db.sum_to(&b.shape));
            }
        }
        LinalgOp::Matmul => {
            let (a, b) = (arr(vjp.v(0))?, arr(vjp.v(1))?);
            let (n, k) = if a.shape.len() == 1 {
                (1, a.shape[0])
            } else {
                (a.shape[0], a.shape[1])
            };
            let m = if b.shape.len() == 1 { 1 } else { b.shape[1] };
            if vjp.wants(0) {
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
            if vjp.wants(1) {
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
        LinalgOp::Cholesky { upper } => {
            let y = vjp.out()?;
            let r = y.shape.len();
            let (l, gl) = if upper {
                (transpose(y, r - 2, r - 1), transpose(&g, r - 2, r - 1))
            } else {
                (y.clone(), g)
            };
            accumulate(grads, ins[0], cholesky_backward(&l, &gl)?);
        }
    }
    Ok(())
}
