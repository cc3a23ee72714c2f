//! The values and ops of a traced graph, and how ops read their inputs.

use std::borrow::Cow;
use std::collections::HashMap;

use super::array::Arr;
pub(super) use super::elementwise::EwOp;
pub(super) use super::linalg::LinalgOp;
pub(super) use super::random::RandomOp;
pub(super) use super::reduce::ReduceOp;
pub(super) use super::shape::ShapeOp;
pub(super) use super::unary::UnaryFn;
use crate::error::{Error, Result};

/// A value in the graph.
#[derive(Clone, Debug)]
pub(super) enum Val {
    T(Arr),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ints(Vec<i64>),
    /// A list of tensors: their slots.
    List(Vec<usize>),
    None,
    /// A constant the program never reads as a number (a device, a layout name, ...).
    Opaque,
    /// Not computed yet.
    Empty,
}

/// An op: its family, and within it the op with its non-tensor arguments decoded once, when the
/// program is compiled ([`decode`]). The forward and backward passes read `alpha` or `dims` from
/// the op, never from an argument slot by position. Each family's file holds its ops' enum, aten
/// names, argument decoding, values and vector-Jacobian products: adding an op touches that file
/// and its test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Op {
    /// Elementwise ops (`elementwise.rs`).
    Elementwise(EwOp),
    /// Reductions and scans (`reduce.rs`).
    Reduce(ReduceOp),
    /// Shapes, views, indexing and constant factories (`shape.rs`).
    Shape(ShapeOp),
    /// Linear algebra (`linalg.rs`).
    Linalg(LinalgOp),
    /// A random op: fresh draws from the program's generator, or the traced run's draws
    /// (`random.rs`).
    Random(RandomOp),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

pub(super) fn op_of(kind: &str) -> Option<Op> {
    let name = kind.strip_prefix("aten::").unwrap_or(kind);
    EwOp::of(name, kind)
        .map(Op::Elementwise)
        .or_else(|| ReduceOp::of(name).map(Op::Reduce))
        .or_else(|| ShapeOp::of(name, kind).map(Op::Shape))
        .or_else(|| LinalgOp::of(name).map(Op::Linalg))
        .or_else(|| RandomOp::of(name).map(Op::Random))
}

/// A short list of ints from an op's argument (dims as given, negative from the end, normalized
/// against the input's rank when the op runs; or paddings, shapes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct IntList {
    len: u8,
    dims: [i64; 8],
}

impl IntList {
    /// No ints.
    pub(super) const EMPTY: IntList = IntList {
        len: 0,
        dims: [0; 8],
    };

    /// The dims of a list argument; `None` (all dims) for an empty list.
    pub(super) fn from_ints(l: &[i64]) -> Result<Option<IntList>> {
        if l.is_empty() {
            return Ok(None);
        }
        if l.len() > 8 {
            return Err(bad(format!(
                "a list argument of {} ints (at most 8)",
                l.len()
            )));
        }
        let mut dims = [0; 8];
        dims[..l.len()].copy_from_slice(l);
        Ok(Some(IntList {
            len: l.len() as u8,
            dims,
        }))
    }

    /// The ints.
    pub(super) fn as_slice(&self) -> &[i64] {
        &self.dims[..self.len as usize]
    }

    /// The dims normalized against rank `r`.
    pub(super) fn normalized(&self, r: usize) -> Result<Vec<usize>> {
        self.dims[..self.len as usize]
            .iter()
            .map(|&d| norm_dim(d, r))
            .collect()
    }
}

/// The dims a reduction runs over, for an input of rank `r`.
pub(super) fn reduced_dims(dims: Option<IntList>, r: usize) -> Result<Vec<usize>> {
    match dims {
        None => Ok((0..r).collect()),
        Some(d) => d.normalized(r),
    }
}

/// The non-tensor arguments of a node, for the families' `decode`: each must be a constant (or
/// a value folded at compile time).
pub(super) struct Args<'a> {
    kind: &'a str,
    ins: &'a [usize],
    init: &'a [Val],
    live: &'a [bool],
}

impl Args<'_> {
    /// The aten name.
    pub(super) fn kind(&self) -> &str {
        self.kind
    }

    /// The number of inputs, tensors included.
    pub(super) fn len(&self) -> usize {
        self.ins.len()
    }

    /// Input `i`, if the node has it; an error if it is computed at run time.
    pub(super) fn arg(&self, i: usize) -> Result<Option<&Val>> {
        match self.ins.get(i) {
            None => Ok(None),
            Some(&s) if self.live[s] => Err(Error::UnsupportedOp {
                op: self.kind.to_string(),
                detail: format!(" with its argument {i} computed at run time"),
            }),
            Some(&s) => Ok(Some(&self.init[s])),
        }
    }

    /// Input `i`, which the op needs.
    pub(super) fn need(&self, i: usize) -> Result<&Val> {
        self.arg(i)?
            .ok_or_else(|| bad(format!("`{}` has no argument {i}", self.kind)))
    }

    /// The op refused with these arguments.
    pub(super) fn unsupported(&self, detail: &str) -> Error {
        Error::UnsupportedOp {
            op: self.kind.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// Fills in the op's non-tensor arguments from their slots, once, when the program is compiled:
/// `add(x, y, alpha)`, `sum(x, dims, keepdim, dtype)`, ... (each family's `decode`).
pub(super) fn decode(node: &mut Node, init: &[Val], live: &[bool]) -> Result<()> {
    let a = Args {
        kind: &node.kind,
        ins: &node.ins,
        init,
        live,
    };
    match &mut node.op {
        Op::Elementwise(op) => op.decode(&a),
        Op::Reduce(op) => op.decode(&a),
        Op::Shape(op) => op.decode(&a),
        Op::Linalg(op) => op.decode(&a),
        Op::Random(_) => Ok(()),
    }
}

#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) op: Op,
    /// The aten name, for error messages.
    pub(super) kind: String,
    pub(super) ins: Vec<usize>,
    pub(super) out: usize,
}

pub(super) fn bad(what: impl Into<String>) -> Error {
    Error::Jit(what.into())
}

pub(super) fn norm_dim(d: i64, n: usize) -> Result<usize> {
    let n = n as i64;
    let d = if d < 0 { d + n } else { d };
    if d < 0 || d >= n.max(1) {
        return Err(bad(format!("dimension {d} out of range for rank {n}")));
    }
    Ok(d as usize)
}

/// Where ops read their inputs: constants from the program, the rest from this run.
pub(super) struct Env<'a> {
    pub(super) init: &'a [Val],
    pub(super) run: &'a [Val],
    pub(super) live: &'a [bool],
    /// Transposes of constant matrices that multiply vectors (see `Program::columns`).
    pub(super) columns: &'a HashMap<usize, Arr>,
}

impl Env<'_> {
    pub(super) fn get(&self, slot: usize) -> &Val {
        if self.live[slot] {
            &self.run[slot]
        } else {
            &self.init[slot]
        }
    }
}

pub(super) fn list_live(init: &[Val], live: &[bool], slot: usize) -> bool {
    matches!(&init[slot], Val::List(items) if items.iter().any(|&i| live[i]))
}

pub(super) fn scalar_of(v: &Val) -> Result<f64> {
    match v {
        Val::T(a) if a.numel() == 1 => Ok(a.data[0]),
        Val::Float(x) => Ok(*x),
        Val::Int(i) => Ok(*i as f64),
        _ => Err(bad("an output is not a scalar")),
    }
}

pub(super) fn arr(v: &Val) -> Result<&Arr> {
    match v {
        Val::T(a) => Ok(a),
        _ => Err(bad("expected a tensor")),
    }
}

/// A tensor or a number, as an array.
pub(super) fn num(v: &Val) -> Result<Cow<'_, Arr>> {
    Ok(match v {
        Val::T(a) => Cow::Borrowed(a),
        Val::Float(x) => Cow::Owned(Arr::scalar(*x)),
        Val::Int(i) => Cow::Owned(Arr::scalar(*i as f64)),
        Val::Bool(b) => Cow::Owned(Arr::scalar(f64::from(u8::from(*b)))),
        _ => return Err(bad("expected a tensor or a number")),
    })
}

pub(super) fn float(v: &Val) -> Result<f64> {
    match v {
        Val::Float(x) => Ok(*x),
        Val::Int(i) => Ok(*i as f64),
        Val::Bool(b) => Ok(f64::from(u8::from(*b))),
        Val::T(a) if a.numel() == 1 => Ok(a.data[0]),
        _ => Err(bad("expected a number")),
    }
}

pub(super) fn int(v: &Val) -> Result<i64> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Bool(b) => Ok(i64::from(*b)),
        _ => Err(bad("expected an integer")),
    }
}

pub(super) fn ints(v: &Val) -> Result<Vec<i64>> {
    match v {
        Val::Ints(l) => Ok(l.clone()),
        Val::Int(i) => Ok(vec![*i]),
        _ => Err(bad("expected a list of integers")),
    }
}

/// An optional int argument: absent or `None` is `None`.
pub(super) fn opt_int(v: Option<&Val>) -> Result<Option<i64>> {
    match v {
        None | Some(Val::None) => Ok(None),
        Some(v) => int(v).map(Some),
    }
}

pub(super) fn opt_float(v: &Val) -> Result<Option<f64>> {
    match v {
        Val::None => Ok(None),
        v => float(v).map(Some),
    }
}
