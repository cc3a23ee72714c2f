//! The forward and backward passes, dispatched to the op families. Each family's file holds its
//! ops' enum, their aten names, argument decoding, values and vector-Jacobian products:
//! `elementwise.rs`, `reduce.rs`, `shape.rs`, `linalg.rs`, `random.rs`. Adding an op touches its
//! family's file and a case in `ppl-runtime/tests/jit_ops.rs`.

use super::array::Arr;
use super::graph::{arr, Env, Node, Op, Val};
use super::{elementwise, linalg, random, reduce, shape};
use crate::error::Result;

/// The value of `node` from its inputs.
pub(super) fn eval(node: &Node, env: &Env) -> Result<Val> {
    match node.op {
        Op::Elementwise(op) => elementwise::forward(op, node, env),
        Op::Reduce(op) => reduce::forward(op, node, env),
        Op::Shape(op) => shape::forward(op, node, env),
        Op::Linalg(op) => linalg::forward(op, node, env),
        Op::Random(op) => random::forward(op, node, env),
    }
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(node: &Node, env: &Env, g: Arr, grads: &mut [Option<Arr>]) -> Result<()> {
    match node.op {
        Op::Elementwise(op) => elementwise::backward(op, node, env, g, grads),
        Op::Reduce(op) => reduce::backward(op, node, env, g, grads),
        Op::Shape(op) => shape::backward(op, node, env, g, grads),
        Op::Linalg(op) => linalg::backward(op, node, env, g, grads),
        Op::Random(op) => random::backward(op, node, env, g, grads),
    }
}

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

/// What a family's backward pass reads of a node: its inputs and output, which inputs want a
/// gradient, and the two adjoints every family uses.
pub(super) struct Vjp<'a> {
    pub(super) node: &'a Node,
    pub(super) env: &'a Env<'a>,
}

impl Vjp<'_> {
    /// Input `i`.
    pub(super) fn v(&self, i: usize) -> &Val {
        self.env.get(self.node.ins[i])
    }

    /// Whether input `i` exists and depends on the program's inputs.
    pub(super) fn wants(&self, i: usize) -> bool {
        self.node.ins.len() > i && self.env.live[self.node.ins[i]]
    }

    /// The node's value.
    pub(super) fn out(&self) -> Result<&Arr> {
        arr(self.env.get(self.node.out))
    }

    /// The adjoint of an elementwise function of input 0: `g_i *= d(x_i, out_i)`, in place on
    /// the owned `g`.
    pub(super) fn unary(
        &self,
        grads: &mut [Option<Arr>],
        g: Arr,
        d: &dyn Fn(f64, f64) -> f64,
    ) -> Result<()> {
        let x = arr(self.v(0))?;
        let y = self.out()?;
        let mut g = g;
        for (gv, (&xv, &yv)) in g.data.iter_mut().zip(x.data.iter().zip(&y.data)) {
            *gv *= d(xv, yv);
        }
        g.shape = x.shape.clone();
        accumulate(grads, self.node.ins[0], g);
        Ok(())
    }

    /// The adjoint of broadcasting input `i` to the shape of `gi`.
    pub(super) fn send(&self, grads: &mut [Option<Arr>], i: usize, gi: Arr) -> Result<()> {
        let shape = match self.v(i) {
            Val::T(a) => a.shape.clone(),
            _ => return Ok(()),
        };
        accumulate(grads, self.node.ins[i], gi.into_sum_to(&shape));
        Ok(())
    }
}
