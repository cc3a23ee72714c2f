//! The op families, and the forward and backward passes dispatched to them. Each family's file
//! holds both directions of its ops: `elementwise.rs`, `reduce.rs`, `shape.rs`, `linalg.rs`,
//! `random.rs`. Adding an op: its variant, name and argument decoding in `graph.rs`, its family
//! here, its two arms in the family's file, and a case in `tests/jit_ops.rs`.

use super::array::Arr;
use super::graph::{Env, Node, Op, Val};
use super::{elementwise, linalg, random, reduce, shape};
use crate::error::{Error, Result};

/// The families of ops, one file each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Elementwise,
    Reduce,
    Shape,
    Linalg,
    Random,
}

/// The family of an op.
pub(super) fn family(op: &Op) -> Family {
    match op {
        Op::Add { .. }
        | Op::Sub { .. }
        | Op::Rsub { .. }
        | Op::Mul
        | Op::Div
        | Op::Unary { .. }
        | Op::Logit { .. }
        | Op::LogicalAnd
        | Op::LogicalOr
        | Op::Xlogy
        | Op::Maximum
        | Op::Minimum
        | Op::Pow
        | Op::Softplus { .. }
        | Op::NanToNum { .. }
        | Op::Mvlgamma { .. }
        | Op::Where
        | Op::MaskedFill { .. }
        | Op::LogicalNot
        | Op::Clamp { .. }
        | Op::Compare { .. }
        | Op::Bcewl { .. }
        | Op::ToKind
        | Op::Number
        | Op::ScalarTensor => Family::Elementwise,
        Op::Sum { .. }
        | Op::Mean { .. }
        | Op::Logsumexp { .. }
        | Op::Extremum { .. }
        | Op::LogSoftmax { .. }
        | Op::Softmax { .. }
        | Op::Cumsum { .. }
        | Op::Cumprod { .. } => Family::Reduce,
        Op::Expand
        | Op::BroadcastAll { .. }
        | Op::Stack { .. }
        | Op::Cat { .. }
        | Op::Select { .. }
        | Op::Slice { .. }
        | Op::Reshape
        | Op::Unsqueeze
        | Op::Squeeze
        | Op::Identity
        | Op::Detach
        | Op::Transpose { .. }
        | Op::Permute { .. }
        | Op::Gather { .. }
        | Op::IndexSelect { .. }
        | Op::IndexCopy { .. }
        | Op::Pad { .. }
        | Op::Size
        | Op::ListConstruct
        | Op::Arange
        | Op::TrilIndices
        | Op::Eye
        | Op::Fill
        | Op::Diagonal { .. }
        | Op::DiagEmbed { .. }
        | Op::Tril { .. }
        | Op::Triu { .. } => Family::Shape,
        Op::Matmul | Op::SolveTriangular { .. } | Op::Cholesky { .. } => Family::Linalg,
        Op::Random { .. } => Family::Random,
    }
}

/// The value of `node` from its inputs.
pub(super) fn eval(node: &Node, env: &Env) -> Result<Val> {
    match family(&node.op) {
        Family::Elementwise => elementwise::forward(node, env),
        Family::Reduce => reduce::forward(node, env),
        Family::Shape => shape::forward(node, env),
        Family::Linalg => linalg::forward(node, env),
        Family::Random => random::forward(node, env),
    }
}

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
pub(super) fn backward(node: &Node, env: &Env, g: Arr, grads: &mut [Option<Arr>]) -> Result<()> {
    match family(&node.op) {
        Family::Elementwise => elementwise::backward(node, env, g, grads),
        Family::Reduce => reduce::backward(node, env, g, grads),
        Family::Shape => shape::backward(node, env, g, grads),
        Family::Linalg => linalg::backward(node, env, g, grads),
        Family::Random => random::backward(node, env, g, grads),
    }
}

/// The error of a family handed an op of another family (a bug in [`family`]).
pub(super) fn not_in_family(node: &Node, family: &str) -> Error {
    Error::Internal(format!(
        "jit: `{}` ({:?}) reached the {family} ops",
        node.kind, node.op
    ))
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
