//! The values and ops of a traced graph, and how ops read their inputs.

use std::borrow::Cow;
use std::collections::HashMap;

use super::array::Arr;
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

/// An op, with its non-tensor arguments decoded once, when the program is compiled ([`decode`]):
/// the forward and backward passes read `alpha` or `dims` from the op, never from an argument
/// slot by position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Op {
    /// `x + alpha y`.
    Add {
        alpha: f64,
    },
    /// `x - alpha y`.
    Sub {
        alpha: f64,
    },
    /// `y - alpha x`.
    Rsub {
        alpha: f64,
    },
    Mul,
    Div,
    /// `log(x / (1 - x))`, `x` clamped to `[eps, 1 - eps]` when given.
    Logit {
        eps: Option<f64>,
    },
    /// `log(1 + exp(beta x)) / beta`, linear above `threshold`.
    Softplus {
        beta: f64,
        threshold: f64,
    },
    /// An elementwise function of one tensor, from the table in `unary.rs`.
    Unary(UnaryFn),
    Size,
    Arange,
    /// `prim::NumToTensor`, `aten::Int`, `aten::Float`: numbers to 0-d tensors and back.
    Number,
    LogicalAnd,
    LogicalOr,
    Xlogy,
    Maximum,
    Minimum,
    LogSoftmax,
    Softmax,
    Gather,
    IndexSelect,
    Cumsum,
    Cumprod,
    SolveTriangular,
    Cholesky,
    TrilIndices,
    Tril,
    Triu,
    DiagEmbed,
    Eye,
    IndexCopy,
    Pad,
    NanToNum,
    Mvlgamma,
    Diagonal,
    Pow,
    /// Over `dims` (all when `None`).
    Sum {
        dims: Option<DimList>,
        keepdim: bool,
    },
    /// Over `dims` (all when `None`).
    Mean {
        dims: Option<DimList>,
        keepdim: bool,
    },
    Expand,
    /// Output `i` of `broadcast_tensors` of the inputs.
    BroadcastAll(usize),
    Stack,
    Cat,
    Select,
    Slice,
    Reshape,
    Unsqueeze,
    Squeeze,
    Identity,
    Detach,
    Matmul,
    Bcewl,
    Where,
    MaskedFill,
    LogicalNot,
    Clamp,
    ScalarTensor,
    /// zeros, ones, full and their `_like` forms.
    Fill,
    ListConstruct,
    Transpose,
    /// `permute(x, dims)`.
    Permute,
    ToKind,
    Logsumexp,
    /// `amax` (true) or `amin` (false) over dims.
    Extremum(bool),
    Compare(Cmp),
    /// A random op: fresh draws from the program's generator, or the traced run's draws.
    Random(Rnd),
}

/// The random ops the compiler draws fresh values for. The C++ tracer records the draws of
/// exactly these (the list is passed to it when tracing begins).
pub(super) const RANDOM_OPS: &[(&str, Rnd)] = &[
    ("randn", Rnd::Randn),
    ("randn_like", Rnd::Randn),
    ("rand", Rnd::Rand),
    ("rand_like", Rnd::Rand),
    ("randperm", Rnd::Randperm),
    ("_standard_gamma", Rnd::StandardGamma),
    ("bernoulli", Rnd::Bernoulli),
    ("poisson", Rnd::Poisson),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Rnd {
    Randn,
    Rand,
    Randperm,
    StandardGamma,
    Bernoulli,
    Poisson,
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
    if let Some(f) = UnaryFn::of(name) {
        return Some(Op::Unary(f));
    }
    if let Some(&(_, r)) = RANDOM_OPS.iter().find(|(n, _)| *n == name) {
        return Some(Op::Random(r));
    }
    Some(match name {
        "add" | "add_" => Op::Add { alpha: 1.0 },
        "sub" | "sub_" => Op::Sub { alpha: 1.0 },
        "rsub" => Op::Rsub { alpha: 1.0 },
        "mul" | "mul_" => Op::Mul,
        "div" | "div_" | "true_divide" => Op::Div,
        "logit" => Op::Logit { eps: None },
        "softplus" => Op::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        "logical_and" | "bitwise_and" | "__and__" => Op::LogicalAnd,
        "logical_or" | "bitwise_or" | "__or__" => Op::LogicalOr,
        "xlogy" => Op::Xlogy,
        "maximum" | "max" => Op::Maximum,
        "minimum" | "min" => Op::Minimum,
        "log_softmax" => Op::LogSoftmax,
        "softmax" => Op::Softmax,
        "gather" => Op::Gather,
        "index_select" => Op::IndexSelect,
        "cumsum" => Op::Cumsum,
        "cumprod" => Op::Cumprod,
        "linalg_solve_triangular" => Op::SolveTriangular,
        "linalg_cholesky" | "cholesky" => Op::Cholesky,
        "diagonal" => Op::Diagonal,
        "tril_indices" => Op::TrilIndices,
        "tril" => Op::Tril,
        "triu" => Op::Triu,
        "diag_embed" => Op::DiagEmbed,
        "eye" => Op::Eye,
        "index_copy" => Op::IndexCopy,
        "pad" | "constant_pad_nd" => Op::Pad,
        "nan_to_num" => Op::NanToNum,
        "mvlgamma" => Op::Mvlgamma,
        "size" => Op::Size,
        "arange" => Op::Arange,
        "Int" | "Float" | "ScalarImplicit" => Op::Number,
        _ if kind == "prim::NumToTensor" => Op::Number,
        "pow" => Op::Pow,
        "sum" => Op::Sum {
            dims: None,
            keepdim: false,
        },
        "mean" => Op::Mean {
            dims: None,
            keepdim: false,
        },
        "expand" | "expand_as" | "broadcast_to" => Op::Expand,
        "stack" => Op::Stack,
        "cat" | "concat" | "concatenate" => Op::Cat,
        "select" => Op::Select,
        "slice" | "narrow" => Op::Slice,
        "reshape" | "view" | "flatten" => Op::Reshape,
        "unsqueeze" => Op::Unsqueeze,
        "squeeze" => Op::Squeeze,
        "clone" | "contiguous" | "alias" | "lift_fresh" | "positive" => Op::Identity,
        "detach" => Op::Detach,
        "matmul" | "mm" | "mv" | "dot" => Op::Matmul,
        "binary_cross_entropy_with_logits" => Op::Bcewl,
        "where" => Op::Where,
        "masked_fill" | "masked_fill_" => Op::MaskedFill,
        "logical_not" => Op::LogicalNot,
        "clamp" | "clip" | "clamp_min" | "clamp_max" => Op::Clamp,
        "scalar_tensor" => Op::ScalarTensor,
        "zeros" | "ones" | "full" | "zeros_like" | "ones_like" | "full_like" => Op::Fill,
        "transpose" | "t" | "swapaxes" => Op::Transpose,
        "permute" => Op::Permute,
        "to" | "type_as" => Op::ToKind,
        "logsumexp" => Op::Logsumexp,
        "amax" => Op::Extremum(true),
        "amin" => Op::Extremum(false),
        "gt" => Op::Compare(Cmp::Gt),
        "ge" => Op::Compare(Cmp::Ge),
        "lt" => Op::Compare(Cmp::Lt),
        "le" => Op::Compare(Cmp::Le),
        "eq" => Op::Compare(Cmp::Eq),
        "ne" => Op::Compare(Cmp::Ne),
        _ if kind == "prim::ListConstruct" => Op::ListConstruct,
        _ => return None,
    })
}

/// Dims named by an op's argument, as given (negative from the end); normalized against the
/// input's rank when the op runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DimList {
    len: u8,
    dims: [i64; 8],
}

impl DimList {
    /// The dims of a list argument; `None` (all dims) for an empty list.
    pub(super) fn from_ints(l: &[i64]) -> Result<Option<DimList>> {
        if l.is_empty() {
            return Ok(None);
        }
        if l.len() > 8 {
            return Err(bad(format!("a reduction over {} dims", l.len())));
        }
        let mut dims = [0; 8];
        dims[..l.len()].copy_from_slice(l);
        Ok(Some(DimList {
            len: l.len() as u8,
            dims,
        }))
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
pub(super) fn reduced_dims(dims: Option<DimList>, r: usize) -> Result<Vec<usize>> {
    match dims {
        None => Ok((0..r).collect()),
        Some(d) => d.normalized(r),
    }
}

/// Fills in the op's non-tensor arguments from their slots, which must be constants (or values
/// folded at compile time): `add(x, y, alpha)`, `sum(x, dims, keepdim, dtype)`, ...
pub(super) fn decode(node: &mut Node, init: &[Val], live: &[bool]) -> Result<()> {
    let ins = node.ins.clone();
    let kind = node.kind.clone();
    let arg = |i: usize| -> Result<Option<&Val>> {
        match ins.get(i) {
            None => Ok(None),
            Some(&s) if live[s] => Err(Error::UnsupportedOp {
                op: kind.clone(),
                detail: format!(" with its argument {i} computed at run time"),
            }),
            Some(&s) => Ok(Some(&init[s])),
        }
    };
    match &mut node.op {
        Op::Add { alpha } | Op::Sub { alpha } | Op::Rsub { alpha } => {
            if let Some(v) = arg(2)? {
                *alpha = float(v)?;
            }
        }
        Op::Logit { eps } => {
            if let Some(v) = arg(1)? {
                *eps = opt_float(v)?;
            }
        }
        Op::Softplus { beta, threshold } => {
            if let Some(v) = arg(1)? {
                *beta = float(v)?;
            }
            if let Some(v) = arg(2)? {
                *threshold = float(v)?;
            }
        }
        // sum(self, dtype) is a full reduction; sum(self, dim, keepdim, dtype) is not.
        Op::Sum { dims, keepdim } | Op::Mean { dims, keepdim } if ins.len() >= 3 => {
            *dims = match arg(1)? {
                None | Some(Val::None) => None,
                Some(v) => DimList::from_ints(&ints(v)?)?,
            };
            *keepdim = matches!(arg(2)?, Some(Val::Bool(true)));
        }
        _ => {}
    }
    Ok(())
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

/// The dims of a tensor of rank `n` named by `d` (negative from the end).
/// The dims of a `permute`, normalized against rank `r`.
pub(super) fn perm_dims(v: &Val, r: usize) -> Result<Vec<usize>> {
    ints(v)?.into_iter().map(|d| norm_dim(d, r)).collect()
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

pub(super) fn opt_float(v: &Val) -> Result<Option<f64>> {
    match v {
        Val::None => Ok(None),
        v => float(v).map(Some),
    }
}
