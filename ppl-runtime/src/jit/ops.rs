//! The forward and backward passes, dispatched to the op families. Each family's file holds its
//! ops' enum, their aten names, argument decoding, values and vector-Jacobian products:
//! `elementwise.rs`, `reduce.rs`, `shape.rs`, `linalg.rs`, `random.rs`. Adding an op touches its
//! family's file and a case in `ppl-runtime/tests/jit_ops.rs`.

use super::array::Arr;
use super::graph::{Env, Node, Op, Val};
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
