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
    LogSoftmax {
        dim: i64,
    },
    Softmax {
        dim: i64,
    },
    Gather {
        dim: i64,
    },
    IndexSelect {
        dim: i64,
    },
    Cumsum {
        dim: i64,
    },
    Cumprod {
        dim: i64,
    },
    /// `A X = B` for `X`, `A` triangular.
    SolveTriangular {
        upper: bool,
        left: bool,
        unit: bool,
    },
    Cholesky {
        upper: bool,
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
    NanToNum {
        nan: f64,
        posinf: f64,
        neginf: f64,
    },
    Mvlgamma {
        p: i64,
    },
    Diagonal {
        offset: i64,
        dim1: i64,
        dim2: i64,
    },
    Pow,
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
    Matmul,
    /// `binary_cross_entropy_with_logits` (no weights); `reduction` 0 none, 1 mean, 2 sum.
    Bcewl {
        reduction: i64,
    },
    Where,
    MaskedFill {
        value: f64,
    },
    LogicalNot,
    Clamp {
        lo: f64,
        hi: f64,
    },
    ScalarTensor,
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
    ToKind,
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
    ("exponential_", Rnd::Exponential),
    ("uniform_", Rnd::Uniform),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Rnd {
    Randn,
    Rand,
    Randperm,
    StandardGamma,
    Bernoulli,
    Poisson,
    /// `x.exponential_(lambd)`: Exp(lambd) draws of `x`'s shape.
    Exponential,
    /// `x.uniform_(from, to)`: uniform draws of `x`'s shape.
    Uniform,
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
        "log_softmax" => Op::LogSoftmax { dim: -1 },
        "softmax" => Op::Softmax { dim: -1 },
        "gather" => Op::Gather { dim: 0 },
        "index_select" => Op::IndexSelect { dim: 0 },
        "cumsum" => Op::Cumsum { dim: 0 },
        "cumprod" => Op::Cumprod { dim: 0 },
        "linalg_solve_triangular" => Op::SolveTriangular {
            upper: false,
            left: true,
            unit: false,
        },
        "linalg_cholesky" | "cholesky" => Op::Cholesky { upper: false },
        "diagonal" => Op::Diagonal {
            offset: 0,
            dim1: 0,
            dim2: 1,
        },
        "tril_indices" => Op::TrilIndices,
        "tril" => Op::Tril { diagonal: 0 },
        "triu" => Op::Triu { diagonal: 0 },
        "diag_embed" => Op::DiagEmbed {
            offset: 0,
            dim1: -2,
            dim2: -1,
        },
        "eye" => Op::Eye,
        "index_copy" => Op::IndexCopy { dim: 0 },
        "pad" | "constant_pad_nd" => Op::Pad {
            pads: IntList::EMPTY,
            fill: 0.0,
        },
        "nan_to_num" => Op::NanToNum {
            nan: 0.0,
            posinf: f64::MAX,
            neginf: f64::MIN,
        },
        "mvlgamma" => Op::Mvlgamma { p: 1 },
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
        "stack" => Op::Stack { dim: 0 },
        "cat" | "concat" | "concatenate" => Op::Cat { dim: 0 },
        "select" => Op::Select { dim: 0, index: 0 },
        "slice" | "narrow" => Op::Slice {
            dim: 0,
            start: None,
            end: None,
            step: 1,
            len: None,
        },
        "reshape" | "view" | "flatten" => Op::Reshape,
        "unsqueeze" => Op::Unsqueeze,
        "squeeze" => Op::Squeeze,
        "clone" | "contiguous" | "alias" | "lift_fresh" | "positive" => Op::Identity,
        "detach" => Op::Detach,
        "matmul" | "mm" | "mv" | "dot" => Op::Matmul,
        "binary_cross_entropy_with_logits" => Op::Bcewl { reduction: 1 },
        "where" => Op::Where,
        "masked_fill" | "masked_fill_" => Op::MaskedFill { value: 0.0 },
        "logical_not" => Op::LogicalNot,
        "clamp" | "clip" | "clamp_min" | "clamp_max" => Op::Clamp {
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        },
        "scalar_tensor" => Op::ScalarTensor,
        "zeros" | "ones" | "full" | "zeros_like" | "ones_like" | "full_like" | "empty"
        | "empty_like" => Op::Fill,
        "transpose" | "t" | "swapaxes" => Op::Transpose { dims: None },
        "permute" => Op::Permute {
            dims: IntList::EMPTY,
        },
        "to" | "type_as" => Op::ToKind,
        "logsumexp" => Op::Logsumexp {
            dims: None,
            keepdim: false,
        },
        "amax" => Op::Extremum {
            max: true,
            dims: None,
            keepdim: false,
        },
        "amin" => Op::Extremum {
            max: false,
            dims: None,
            keepdim: false,
        },
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
    let need = |i: usize| -> Result<&Val> {
        arg(i)?.ok_or_else(|| bad(format!("`{kind}` has no argument {i}")))
    };
    let unsupported = |detail: &str| Error::UnsupportedOp {
        op: kind.clone(),
        detail: detail.to_string(),
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
                Some(v) => IntList::from_ints(&ints(v)?)?,
            };
            *keepdim = matches!(arg(2)?, Some(Val::Bool(true)));
        }
        Op::LogSoftmax { dim }
        | Op::Softmax { dim }
        | Op::Gather { dim }
        | Op::IndexSelect { dim }
        | Op::Cumsum { dim }
        | Op::Cumprod { dim }
        | Op::IndexCopy { dim } => *dim = int(need(1)?)?,
        Op::Stack { dim } | Op::Cat { dim } => {
            if let Some(v) = arg(1)? {
                *dim = int(v)?;
            }
        }
        Op::SolveTriangular { upper, left, unit } => {
            *upper = matches!(need(2)?, Val::Bool(true));
            *left = !matches!(arg(3)?, Some(Val::Bool(false)));
            *unit = matches!(arg(4)?, Some(Val::Bool(true)));
            if !*left {
                return Err(unsupported(" with left = false"));
            }
        }
        Op::Cholesky { upper } => *upper = matches!(arg(1)?, Some(Val::Bool(true))),
        Op::Diagonal { offset, dim1, dim2 } => {
            *offset = opt_int(arg(1)?)?.unwrap_or(0);
            *dim1 = opt_int(arg(2)?)?.unwrap_or(0);
            *dim2 = opt_int(arg(3)?)?.unwrap_or(1);
        }
        Op::DiagEmbed { offset, dim1, dim2 } => {
            *offset = opt_int(arg(1)?)?.unwrap_or(0);
            *dim1 = opt_int(arg(2)?)?.unwrap_or(-2);
            *dim2 = opt_int(arg(3)?)?.unwrap_or(-1);
        }
        Op::Tril { diagonal } | Op::Triu { diagonal } => {
            *diagonal = opt_int(arg(1)?)?.unwrap_or(0);
        }
        Op::Pad { pads, fill } => {
            let p = IntList::from_ints(&ints(need(1)?)?)?;
            *pads = p.unwrap_or(IntList::EMPTY);
            // constant_pad_nd(x, pad, value); pad(x, pad, mode, value), its mode opaque (only
            // the constant mode is compiled).
            let value = if kind.ends_with("constant_pad_nd") {
                arg(2)?
            } else {
                arg(3)?
            };
            *fill = value.map(opt_float).transpose()?.flatten().unwrap_or(0.0);
        }
        Op::NanToNum {
            nan,
            posinf,
            neginf,
        } => {
            let get = |v: Option<&Val>| -> Result<Option<f64>> {
                v.map(opt_float).transpose().map(Option::flatten)
            };
            *nan = get(arg(1)?)?.unwrap_or(0.0);
            *posinf = get(arg(2)?)?.unwrap_or(f64::MAX);
            *neginf = get(arg(3)?)?.unwrap_or(f64::MIN);
        }
        Op::Mvlgamma { p } => *p = int(need(1)?)?,
        Op::Select { dim, index } => {
            *dim = int(need(1)?)?;
            *index = int(need(2)?)?;
        }
        Op::Slice {
            dim,
            start,
            end,
            step,
            len,
        } => {
            *dim = int(need(1)?)?;
            if kind.ends_with("narrow") {
                *start = Some(int(need(2)?)?);
                *len = Some(int(need(3)?)?);
            } else {
                *start = opt_int(arg(2)?)?;
                *end = opt_int(arg(3)?)?;
                *step = opt_int(arg(4)?)?.unwrap_or(1);
                if *step <= 0 {
                    return Err(unsupported(" with a step that is not positive"));
                }
            }
        }
        Op::Bcewl { reduction } => {
            if !matches!(arg(2)?, None | Some(Val::None))
                || !matches!(arg(3)?, None | Some(Val::None))
            {
                return Err(unsupported(" with weights"));
            }
            *reduction = opt_int(arg(4)?)?.unwrap_or(1);
        }
        Op::MaskedFill { value } => *value = float(need(2)?)?,
        Op::Clamp { lo, hi } => {
            let get = |v: Option<&Val>| -> Result<Option<f64>> {
                v.map(opt_float).transpose().map(Option::flatten)
            };
            if kind.ends_with("clamp_min") {
                *lo = get(arg(1)?)?.unwrap_or(f64::NEG_INFINITY);
            } else if kind.ends_with("clamp_max") {
                *hi = get(arg(1)?)?.unwrap_or(f64::INFINITY);
            } else {
                *lo = get(arg(1)?)?.unwrap_or(f64::NEG_INFINITY);
                *hi = get(arg(2)?)?.unwrap_or(f64::INFINITY);
            }
        }
        Op::Transpose { dims } if ins.len() >= 3 => {
            *dims = Some((int(need(1)?)?, int(need(2)?)?));
        }
        Op::Permute { dims } => {
            *dims = IntList::from_ints(&ints(need(1)?)?)?.unwrap_or(IntList::EMPTY);
        }
        Op::Logsumexp { dims, keepdim } | Op::Extremum { dims, keepdim, .. } => {
            *dims = match arg(1)? {
                None | Some(Val::None) => None,
                Some(v) => IntList::from_ints(&ints(v)?)?,
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
