//! A traced graph compiled into a host program: a straight-line list of ops on float64 arrays,
//! run forwards for values and backwards for gradients (reverse mode), with everything that does
//! not depend on the inputs folded into constants at compile time.
//!
//! Supported: the aten ops that ppl's continuous distributions, transforms and the usual model
//! arithmetic record (elementwise math, reductions, broadcasting, views, `matmul` of vectors and
//! matrices, `binary_cross_entropy_with_logits`, ...). Anything else is a [`Error::Invalid`] naming
//! the op, and the caller falls back to libtorch.

use std::collections::HashMap;

use rand::rngs::StdRng;

use super::array::{broadcast_shapes, strides, Arr};
use super::random;
use super::special::{digamma, lgamma, trigamma};
use crate::error::{Error, Result};

/// A value in the graph.
#[derive(Clone, Debug)]
enum Val {
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Rsub,
    Mul,
    Div,
    Neg,
    Exp,
    Log,
    Log1p,
    Expm1,
    Square,
    Sqrt,
    Rsqrt,
    Reciprocal,
    Sigmoid,
    Logit,
    Tanh,
    Softplus,
    LogSigmoid,
    Lgamma,
    Digamma,
    Abs,
    Atan,
    Sin,
    Cos,
    Sinh,
    Cosh,
    Erf,
    Erfc,
    Relu,
    /// floor, ceil, round, trunc, sign: piecewise constant (zero gradient).
    Step(StepFn),
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
    Sum,
    Mean,
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
    ToKind,
    Logsumexp,
    Compare(Cmp),
    /// A random op: fresh draws from the program's generator, or the traced run's draws.
    Random(Rnd),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rnd {
    Randn,
    Rand,
    Randperm,
    StandardGamma,
    Bernoulli,
    Poisson,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StepFn {
    Floor,
    Ceil,
    Round,
    Trunc,
    Sign,
}

impl StepFn {
    fn apply(self, x: f64) -> f64 {
        match self {
            StepFn::Floor => x.floor(),
            StepFn::Ceil => x.ceil(),
            StepFn::Round => x.round_ties_even(),
            StepFn::Trunc => x.trunc(),
            StepFn::Sign if x == 0.0 => 0.0,
            StepFn::Sign => x.signum(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

fn op_of(kind: &str) -> Option<Op> {
    let name = kind.strip_prefix("aten::").unwrap_or(kind);
    Some(match name {
        "add" | "add_" => Op::Add,
        "sub" | "sub_" => Op::Sub,
        "rsub" => Op::Rsub,
        "mul" | "mul_" => Op::Mul,
        "div" | "div_" | "true_divide" => Op::Div,
        "neg" => Op::Neg,
        "exp" => Op::Exp,
        "log" => Op::Log,
        "log1p" => Op::Log1p,
        "expm1" => Op::Expm1,
        "square" => Op::Square,
        "sqrt" => Op::Sqrt,
        "rsqrt" => Op::Rsqrt,
        "reciprocal" => Op::Reciprocal,
        "sigmoid" => Op::Sigmoid,
        "logit" => Op::Logit,
        "tanh" => Op::Tanh,
        "softplus" => Op::Softplus,
        "log_sigmoid" => Op::LogSigmoid,
        "lgamma" => Op::Lgamma,
        "digamma" => Op::Digamma,
        "abs" => Op::Abs,
        "atan" | "arctan" => Op::Atan,
        "sin" => Op::Sin,
        "cos" => Op::Cos,
        "sinh" => Op::Sinh,
        "cosh" => Op::Cosh,
        "erf" => Op::Erf,
        "erfc" => Op::Erfc,
        "relu" => Op::Relu,
        "floor" => Op::Step(StepFn::Floor),
        "ceil" => Op::Step(StepFn::Ceil),
        "round" => Op::Step(StepFn::Round),
        "trunc" => Op::Step(StepFn::Trunc),
        "sign" => Op::Step(StepFn::Sign),
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
        "sum" => Op::Sum,
        "mean" => Op::Mean,
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
        "to" | "type_as" => Op::ToKind,
        "logsumexp" => Op::Logsumexp,
        "gt" => Op::Compare(Cmp::Gt),
        "ge" => Op::Compare(Cmp::Ge),
        "lt" => Op::Compare(Cmp::Lt),
        "le" => Op::Compare(Cmp::Le),
        "eq" => Op::Compare(Cmp::Eq),
        "ne" => Op::Compare(Cmp::Ne),
        "randn" | "randn_like" => Op::Random(Rnd::Randn),
        "rand" | "rand_like" => Op::Random(Rnd::Rand),
        "randperm" => Op::Random(Rnd::Randperm),
        "_standard_gamma" => Op::Random(Rnd::StandardGamma),
        "bernoulli" => Op::Random(Rnd::Bernoulli),
        "poisson" => Op::Random(Rnd::Poisson),
        _ if kind == "prim::ListConstruct" => Op::ListConstruct,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
struct Node {
    op: Op,
    /// The aten name, for error messages.
    kind: String,
    ins: Vec<usize>,
    out: usize,
}

/// A compiled graph: inputs are arrays of fixed shapes, the outputs are scalars.
#[derive(Clone, Debug)]
pub struct Program {
    inputs: Vec<usize>,
    input_shapes: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    /// The ops that depend on an input, in order.
    nodes: Vec<Node>,
    /// Values: constants (and folded ops) filled in at compile time, the rest per run.
    init: Vec<Val>,
    /// Whether a slot depends on an input or a random draw (and so is computed per run).
    live: Vec<bool>,
    /// What each random op drew in the traced run.
    traced_draws: HashMap<usize, Arr>,
    /// For each constant matrix `X` (n x k) in a matrix-vector product, `Xᵀ` row-major: both
    /// `X w` (k scaled columns added up) and `Xᵀ g` (k dot products) then run over contiguous
    /// memory.
    columns: HashMap<usize, Arr>,
}

/// Where a program's random ops get their values.
pub enum Draws<'a> {
    /// Fresh draws from this generator.
    Fresh(&'a mut StdRng),
    /// The draws of the traced run (to check a program against libtorch's run).
    Traced,
}

fn bad(what: impl Into<String>) -> Error {
    Error::Invalid(format!("jit: {}", what.into()))
}

fn parse<T: std::str::FromStr>(tok: Option<&str>, line: &str) -> Result<T> {
    tok.and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(format!("cannot read the traced graph at `{line}`")))
}

/// The dims of a tensor of rank `n` named by `d` (negative from the end).
fn norm_dim(d: i64, n: usize) -> Result<usize> {
    let n = n as i64;
    let d = if d < 0 { d + n } else { d };
    if d < 0 || d >= n.max(1) {
        return Err(bad(format!("dimension {d} out of range for rank {n}")));
    }
    Ok(d as usize)
}

impl Program {
    /// Compiles the text of a traced graph (see `csrc/trace.cpp`) whose inputs have the given
    /// shapes.
    pub fn compile(text: &str, input_shapes: &[Vec<usize>]) -> Result<Program> {
        let mut slot_of: HashMap<u64, usize> = HashMap::new();
        let mut init: Vec<Val> = Vec::new();
        let mut slot = |id: u64, init: &mut Vec<Val>| -> usize {
            *slot_of.entry(id).or_insert_with(|| {
                init.push(Val::Empty);
                init.len() - 1
            })
        };
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut nodes = Vec::new();
        let mut list_items: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut broadcast_lists: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut traced_draws: HashMap<usize, Arr> = HashMap::new();
        for line in text.lines() {
            let mut t = line.split_whitespace();
            match t.next() {
                Some("I") => inputs.push(slot(parse(t.next(), line)?, &mut init)),
                Some("O") => outputs.push(slot(parse(t.next(), line)?, &mut init)),
                Some("R") => {
                    let s = slot(parse(t.next(), line)?, &mut init);
                    let nd: usize = parse(t.next(), line)?;
                    let mut shape = Vec::with_capacity(nd);
                    for _ in 0..nd {
                        shape.push(parse(t.next(), line)?);
                    }
                    let n: usize = shape.iter().product();
                    let mut data = Vec::with_capacity(n);
                    for _ in 0..n {
                        data.push(parse(t.next(), line)?);
                    }
                    traced_draws.insert(s, Arr { shape, data });
                }
                Some("C") => {
                    let s = slot(parse(t.next(), line)?, &mut init);
                    init[s] = match t.next() {
                        Some("i") => Val::Int(parse(t.next(), line)?),
                        Some("f") => Val::Float(parse(t.next(), line)?),
                        Some("b") => Val::Bool(parse::<i64>(t.next(), line)? != 0),
                        Some("n") => Val::None,
                        Some("l") => {
                            let n: usize = parse(t.next(), line)?;
                            let mut v = Vec::with_capacity(n);
                            for _ in 0..n {
                                v.push(parse(t.next(), line)?);
                            }
                            Val::Ints(v)
                        }
                        Some("t") => {
                            let nd: usize = parse(t.next(), line)?;
                            let mut shape = Vec::with_capacity(nd);
                            for _ in 0..nd {
                                shape.push(parse(t.next(), line)?);
                            }
                            let n: usize = shape.iter().product();
                            let mut data = Vec::with_capacity(n);
                            for _ in 0..n {
                                data.push(parse(t.next(), line)?);
                            }
                            Val::T(Arr { shape, data })
                        }
                        _ => Val::Opaque,
                    };
                }
                Some("N") => {
                    let kind: String = parse(t.next(), line)?;
                    let nin: usize = parse(t.next(), line)?;
                    let mut ins = Vec::with_capacity(nin);
                    for _ in 0..nin {
                        ins.push(slot(parse(t.next(), line)?, &mut init));
                    }
                    let nout: usize = parse(t.next(), line)?;
                    let mut outs = Vec::with_capacity(nout);
                    for _ in 0..nout {
                        outs.push(slot(parse(t.next(), line)?, &mut init));
                    }
                    // `broadcast_tensors` makes a list that `ListUnpack` takes apart: one
                    // `BroadcastAll(i)` per element instead.
                    if kind == "aten::broadcast_tensors" && ins.len() == 1 && nout == 1 {
                        if let Some(items) = list_items.get(&ins[0]) {
                            broadcast_lists.insert(outs[0], items.clone());
                            continue;
                        }
                    }
                    if kind == "prim::ListUnpack" && ins.len() == 1 {
                        if let Some(items) = broadcast_lists.get(&ins[0]) {
                            for (i, &out) in outs.iter().enumerate() {
                                nodes.push(Node {
                                    op: Op::BroadcastAll(i),
                                    kind: "aten::broadcast_tensors".into(),
                                    ins: items.clone(),
                                    out,
                                });
                            }
                            continue;
                        }
                        if let Some(items) = list_items.get(&ins[0]) {
                            for (&item, &out) in items.iter().zip(&outs) {
                                nodes.push(Node {
                                    op: Op::Identity,
                                    kind: "prim::ListUnpack".into(),
                                    ins: vec![item],
                                    out,
                                });
                            }
                            continue;
                        }
                    }
                    if nout != 1 {
                        return Err(bad(format!(
                            "the op `{kind}` ({nout} outputs) is not supported"
                        )));
                    }
                    let out = outs[0];
                    if kind == "prim::ListConstruct" {
                        list_items.insert(out, ins.clone());
                    }
                    let op = op_of(&kind)
                        .ok_or_else(|| bad(format!("the op `{kind}` is not supported")))?;
                    nodes.push(Node { op, kind, ins, out });
                }
                _ => {}
            }
        }
        if inputs.len() != input_shapes.len() {
            return Err(bad(format!(
                "the graph has {} inputs, {} shapes given",
                inputs.len(),
                input_shapes.len()
            )));
        }
        // Which slots depend on an input; fold everything else now.
        let mut live = vec![false; init.len()];
        for &i in &inputs {
            live[i] = true;
        }
        let mut program = Program {
            inputs,
            input_shapes: input_shapes.to_vec(),
            outputs,
            nodes: Vec::new(),
            init,
            live: Vec::new(),
            traced_draws,
            columns: HashMap::new(),
        };
        let no_columns = HashMap::new();
        let no_live = vec![false; live.len()];
        for node in nodes {
            let depends = node
                .ins
                .iter()
                .any(|&i| live[i] || list_live(&program.init, &live, i));
            let random = matches!(node.op, Op::Random(_));
            if depends || random {
                live[node.out] = true;
                program.nodes.push(node);
            } else {
                let env = Env {
                    init: &program.init,
                    run: &[],
                    live: &no_live,
                    columns: &no_columns,
                };
                let v = eval(&node, &env).map_err(|e| bad(format!("`{}`: {e}", node.kind)))?;
                program.init[node.out] = v;
            }
        }
        program.live = live;
        program.sink_scalar_expands();
        for n in &program.nodes {
            if n.op != Op::Matmul || program.live[n.ins[0]] {
                continue;
            }
            if let Val::T(x) = &program.init[n.ins[0]] {
                if x.shape.len() == 2 && x.numel() >= 256 {
                    program.columns.insert(n.ins[0], transpose2(x));
                }
            }
        }
        Ok(program)
    }

    /// The shape of every tensor slot, from one run on the traced draws (`None` where that run
    /// fails, e.g. with no traced draws: then no shape-based rewrite happens).
    fn slot_shapes(&self) -> Option<Vec<Option<Vec<usize>>>> {
        let inputs: Vec<Vec<f64>> = self
            .input_shapes
            .iter()
            .map(|s| vec![0.5; s.iter().product()])
            .collect();
        let refs: Vec<&[f64]> = inputs.iter().map(|v| v.as_slice()).collect();
        let run = self.run(&refs, &mut Draws::Traced).ok()?;
        let env = Env {
            init: &self.init,
            run: &run,
            live: &self.live,
            columns: &self.columns,
        };
        Some(
            (0..self.init.len())
                .map(|i| match env.get(i) {
                    Val::T(a) => Some(a.shape.clone()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Rewrites `f(expand(x))` with a one-element `x` so that the expansion happens last or not
    /// at all: a unary elementwise `f` runs on `x` and the result is expanded; a binary one
    /// whose other operand already has the output's shape takes `x` itself (broadcasting gives
    /// the same values). Normal's `log(scale)` over a scale broadcast to 10 000 data points
    /// becomes one log. Unused expansions are then dropped.
    fn sink_scalar_expands(&mut self) {
        let Some(mut shapes) = self.slot_shapes() else {
            return;
        };
        let is_unary = |op: Op| {
            matches!(
                op,
                Op::Neg
                    | Op::Exp
                    | Op::Log
                    | Op::Log1p
                    | Op::Expm1
                    | Op::Square
                    | Op::Sqrt
                    | Op::Rsqrt
                    | Op::Reciprocal
                    | Op::Sigmoid
                    | Op::Logit
                    | Op::Tanh
                    | Op::Softplus
                    | Op::LogSigmoid
                    | Op::Lgamma
                    | Op::Digamma
                    | Op::Abs
                    | Op::Atan
                    | Op::Sin
                    | Op::Cos
                    | Op::Sinh
                    | Op::Cosh
                    | Op::Erf
                    | Op::Erfc
                    | Op::Relu
            )
        };
        let is_binary = |op: Op| {
            matches!(
                op,
                Op::Add
                    | Op::Sub
                    | Op::Rsub
                    | Op::Mul
                    | Op::Div
                    | Op::Pow
                    | Op::Xlogy
                    | Op::Maximum
                    | Op::Minimum
            )
        };
        let one = |shapes: &[Option<Vec<usize>>], s: usize| -> bool {
            shapes[s]
                .as_ref()
                .is_some_and(|sh| sh.iter().product::<usize>() == 1)
        };
        for _round in 0..64 {
            // The one-element source of each slot made by expanding one.
            let mut source: HashMap<usize, usize> = HashMap::new();
            for n in &self.nodes {
                let src = match n.op {
                    Op::Expand => Some(n.ins[0]),
                    Op::BroadcastAll(i) => Some(n.ins[i]),
                    _ => None,
                };
                if let Some(x) = src {
                    if one(&shapes, x) && shapes[n.out].is_some() {
                        source.insert(n.out, x);
                    }
                }
            }
            let mut changed = false;
            let mut i = 0;
            while i < self.nodes.len() {
                let n = self.nodes[i].clone();
                if is_binary(n.op) && n.ins.len() >= 2 {
                    for k in 0..2 {
                        if let Some(&x) = source.get(&n.ins[k]) {
                            let other = n.ins[1 - k];
                            if shapes[other].is_some() && shapes[other] == shapes[n.out] {
                                self.nodes[i].ins[k] = x;
                                changed = true;
                            }
                        }
                    }
                } else if is_unary(n.op) {
                    if let Some(&x) = source.get(&n.ins[0]) {
                        // f(expand(x)) -> expand(f(x)).
                        let t = self.new_slot(true);
                        let target = self.new_slot(false);
                        let out_shape = shapes[n.out].clone().unwrap_or_default();
                        self.init[target] =
                            Val::Ints(out_shape.iter().map(|&d| d as i64).collect());
                        shapes.push(shapes[x].clone());
                        shapes.push(None);
                        let mut inner = n.clone();
                        inner.ins[0] = x;
                        inner.out = t;
                        self.nodes[i] = inner;
                        self.nodes.insert(
                            i + 1,
                            Node {
                                op: Op::Expand,
                                kind: "aten::expand".into(),
                                ins: vec![t, target],
                                out: n.out,
                            },
                        );
                        changed = true;
                        i += 1;
                    }
                }
                i += 1;
            }
            if !changed {
                break;
            }
        }
        self.drop_aliases(&shapes);
        self.drop_dead_nodes();
        if std::env::var_os("PPL_JIT_DUMP").is_some() {
            for n in &self.nodes {
                let sh = |s: usize| shapes.get(s).cloned().flatten();
                eprintln!(
                    "{} {:?} -> {} {:?}",
                    n.kind,
                    n.ins.iter().map(|&i| sh(i)).collect::<Vec<_>>(),
                    n.out,
                    sh(n.out)
                );
            }
        }
    }

    /// Drops the nodes that only copy their input (an expansion or a reshape to the shape it
    /// already has, `clone`, `contiguous`, a cast between float types): their readers read the
    /// input instead.
    fn drop_aliases(&mut self, shapes: &[Option<Vec<usize>>]) {
        let mut alias: HashMap<usize, usize> = HashMap::new();
        let resolve = |alias: &HashMap<usize, usize>, mut s: usize| {
            while let Some(&t) = alias.get(&s) {
                s = t;
            }
            s
        };
        let mut kept = Vec::with_capacity(self.nodes.len());
        for mut n in std::mem::take(&mut self.nodes) {
            for i in n.ins.iter_mut() {
                *i = resolve(&alias, *i);
            }
            let src = match n.op {
                Op::Identity => Some(n.ins[0]),
                Op::Expand | Op::Reshape => Some(n.ins[0]),
                Op::BroadcastAll(i) => Some(n.ins[i]),
                Op::ToKind => {
                    let env_int = n.ins[1..].iter().find_map(|&s| match &self.init[s] {
                        Val::Int(c) if !self.live[s] => Some(*c),
                        _ => None,
                    });
                    match env_int {
                        Some(c) if is_integer_kind(c) => None,
                        _ => Some(n.ins[0]),
                    }
                }
                _ => None,
            };
            let same_shape = |x: usize| {
                shapes.get(x).cloned().flatten().is_some()
                    && shapes.get(x).cloned().flatten() == shapes.get(n.out).cloned().flatten()
            };
            match src {
                Some(x) if same_shape(x) && !self.outputs.contains(&n.out) => {
                    alias.insert(n.out, x);
                }
                _ => kept.push(n),
            }
        }
        self.nodes = kept;
    }

    fn new_slot(&mut self, live: bool) -> usize {
        self.init.push(Val::Empty);
        self.live.push(live);
        self.init.len() - 1
    }

    /// Removes nodes whose output nothing reads.
    fn drop_dead_nodes(&mut self) {
        loop {
            let mut used = vec![false; self.init.len()];
            for &o in &self.outputs {
                used[o] = true;
            }
            for n in &self.nodes {
                for &i in &n.ins {
                    used[i] = true;
                    if let Val::List(items) = &self.init[i] {
                        for &j in items {
                            used[j] = true;
                        }
                    }
                }
                if n.op == Op::ListConstruct && used[n.out] {
                    for &j in &n.ins {
                        used[j] = true;
                    }
                }
            }
            let before = self.nodes.len();
            // Random ops stay: dropping one would shift the draws of the others.
            self.nodes
                .retain(|n| used[n.out] || matches!(n.op, Op::Random(_)));
            if self.nodes.len() == before {
                break;
            }
        }
    }

    /// Whether the program draws random numbers.
    pub fn has_random_ops(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n.op, Op::Random(_)))
    }

    /// Runs the ops: the values of the live slots.
    fn run(&self, inputs: &[&[f64]], draws: &mut Draws<'_>) -> Result<Vec<Val>> {
        if inputs.len() != self.inputs.len() {
            return Err(bad("wrong number of inputs"));
        }
        let mut run = vec![Val::Empty; self.init.len()];
        for ((&s, x), shape) in self.inputs.iter().zip(inputs).zip(&self.input_shapes) {
            if x.len() != shape.iter().product::<usize>() {
                return Err(bad(format!(
                    "an input of {} values for shape {shape:?}",
                    x.len()
                )));
            }
            run[s] = Val::T(Arr {
                shape: shape.clone(),
                data: x.to_vec(),
            });
        }
        for node in &self.nodes {
            let env = Env {
                init: &self.init,
                run: &run,
                live: &self.live,
                columns: &self.columns,
            };
            let v = match node.op {
                Op::Random(r) => match draws {
                    Draws::Traced => {
                        Val::T(self.traced_draws.get(&node.out).cloned().ok_or_else(|| {
                            bad(format!("no traced draw of `{}` to replay", node.kind))
                        })?)
                    }
                    Draws::Fresh(rng) => draw(r, node, &env, rng)
                        .map_err(|e| bad(format!("`{}`: {e}", node.kind)))?,
                },
                _ => eval(node, &env).map_err(|e| bad(format!("`{}`: {e}", node.kind)))?,
            };
            if cfg!(debug_assertions) && std::env::var_os("PPL_JIT_DEBUG").is_some() {
                let shape = match &v {
                    Val::T(a) => format!("{:?}", a.shape),
                    other => format!("{other:?}"),
                };
                eprintln!("{} {:?} -> {} {shape}", node.kind, node.ins, node.out);
            }
            run[node.out] = v;
        }
        Ok(run)
    }

    fn output_values(&self, run: &[Val]) -> Result<Vec<f64>> {
        let env = Env {
            init: &self.init,
            run,
            live: &self.live,
            columns: &self.columns,
        };
        self.outputs
            .iter()
            .map(|&o| scalar_of(env.get(o)))
            .collect()
    }

    /// The values of the outputs at `inputs` (flat, row-major, one slice per input).
    pub fn forward(&self, inputs: &[&[f64]]) -> Result<Vec<f64>> {
        let run = self.run(inputs, &mut Draws::Traced)?;
        self.output_values(&run)
    }

    /// The sum of the outputs at `inputs`, and its gradient with respect to each input.
    pub fn value_and_grad(&self, inputs: &[&[f64]]) -> Result<(f64, Vec<Vec<f64>>)> {
        let all: Vec<usize> = (0..self.outputs.len()).collect();
        let (outs, grads) = self.evaluate(inputs, &all, Draws::Traced)?;
        Ok((outs.iter().sum(), grads))
    }

    /// The outputs at `inputs`, and the gradient of the sum of the outputs numbered `grad_of`
    /// with respect to each input; random ops draw from `draws`.
    pub fn evaluate(
        &self,
        inputs: &[&[f64]],
        grad_of: &[usize],
        mut draws: Draws<'_>,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let run = self.run(inputs, &mut draws)?;
        let outs = self.output_values(&run)?;
        let env = Env {
            init: &self.init,
            run: &run,
            live: &self.live,
            columns: &self.columns,
        };
        let mut grads: Vec<Option<Arr>> = vec![None; run.len()];
        for &k in grad_of {
            let o = *self
                .outputs
                .get(k)
                .ok_or_else(|| bad(format!("no output {k}")))?;
            if self.live[o] {
                let shape = arr(&run[o])?.shape.clone();
                accumulate(&mut grads, o, Arr::full(&shape, 1.0));
            }
        }
        for node in self.nodes.iter().rev() {
            let Some(g) = grads[node.out].take() else {
                continue;
            };
            backward(node, &env, g, &mut grads)
                .map_err(|e| bad(format!("gradient of `{}`: {e}", node.kind)))?;
        }
        let mut out = Vec::with_capacity(self.inputs.len());
        for (&s, shape) in self.inputs.iter().zip(&self.input_shapes) {
            out.push(match grads[s].take() {
                Some(g) => g.data,
                None => vec![0.0; shape.iter().product()],
            });
        }
        Ok((outs, out))
    }
}

/// Fresh values of a random op.
fn draw(r: Rnd, node: &Node, env: &Env, rng: &mut StdRng) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let name = node.kind.as_str();
    // The shape of a factory (`randn(size, ...)`) or of its `_like` argument.
    let shape_of = |i: usize| -> Result<Vec<usize>> {
        Ok(if name.ends_with("_like") {
            num(v(i))?.shape.clone()
        } else {
            ints(v(i))?.iter().map(|&d| d.max(0) as usize).collect()
        })
    };
    Ok(Val::T(match r {
        Rnd::Randn => {
            let shape = shape_of(0)?;
            let n = shape.iter().product();
            Arr {
                shape,
                data: random::randn(rng, n),
            }
        }
        Rnd::Rand => {
            let shape = shape_of(0)?;
            let n = shape.iter().product();
            Arr {
                shape,
                data: random::rand(rng, n),
            }
        }
        Rnd::Randperm => {
            let n = int(v(0))?.max(0) as usize;
            Arr {
                shape: vec![n],
                data: random::randperm(rng, n),
            }
        }
        Rnd::StandardGamma | Rnd::Poisson | Rnd::Bernoulli => {
            use rand::Rng;
            let x = arr(v(0))?;
            // bernoulli(probs) or bernoulli(self, p: float).
            let p_const = match node.ins.get(1).map(|&s| env.get(s)) {
                Some(Val::Float(p)) => Some(*p),
                _ => None,
            };
            let data = x
                .data
                .iter()
                .map(|&a| match r {
                    Rnd::StandardGamma => random::standard_gamma(rng, a),
                    Rnd::Poisson => random::poisson(rng, a),
                    _ => f64::from(u8::from(rng.random::<f64>() < p_const.unwrap_or(a))),
                })
                .collect();
            Arr {
                shape: x.shape.clone(),
                data,
            }
        }
    }))
}

/// Where ops read their inputs: constants from the program, the rest from this run.
struct Env<'a> {
    init: &'a [Val],
    run: &'a [Val],
    live: &'a [bool],
    /// Transposes of constant matrices that multiply vectors (see `Program::columns`).
    columns: &'a HashMap<usize, Arr>,
}

impl Env<'_> {
    fn get(&self, slot: usize) -> &Val {
        if self.live[slot] {
            &self.run[slot]
        } else {
            &self.init[slot]
        }
    }
}

fn list_live(init: &[Val], live: &[bool], slot: usize) -> bool {
    matches!(&init[slot], Val::List(items) if items.iter().any(|&i| live[i]))
}

fn scalar_of(v: &Val) -> Result<f64> {
    match v {
        Val::T(a) if a.numel() == 1 => Ok(a.data[0]),
        Val::Float(x) => Ok(*x),
        Val::Int(i) => Ok(*i as f64),
        _ => Err(bad("an output is not a scalar")),
    }
}

fn arr(v: &Val) -> Result<&Arr> {
    match v {
        Val::T(a) => Ok(a),
        _ => Err(bad("expected a tensor")),
    }
}

/// A tensor or a number, as an array.
fn num(v: &Val) -> Result<std::borrow::Cow<'_, Arr>> {
    use std::borrow::Cow;
    Ok(match v {
        Val::T(a) => Cow::Borrowed(a),
        Val::Float(x) => Cow::Owned(Arr::scalar(*x)),
        Val::Int(i) => Cow::Owned(Arr::scalar(*i as f64)),
        Val::Bool(b) => Cow::Owned(Arr::scalar(f64::from(u8::from(*b)))),
        _ => return Err(bad("expected a tensor or a number")),
    })
}

fn float(v: &Val) -> Result<f64> {
    match v {
        Val::Float(x) => Ok(*x),
        Val::Int(i) => Ok(*i as f64),
        Val::Bool(b) => Ok(f64::from(u8::from(*b))),
        Val::T(a) if a.numel() == 1 => Ok(a.data[0]),
        _ => Err(bad("expected a number")),
    }
}

fn int(v: &Val) -> Result<i64> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Bool(b) => Ok(i64::from(*b)),
        _ => Err(bad("expected an integer")),
    }
}

fn ints(v: &Val) -> Result<Vec<i64>> {
    match v {
        Val::Ints(l) => Ok(l.clone()),
        Val::Int(i) => Ok(vec![*i]),
        _ => Err(bad("expected a list of integers")),
    }
}

fn opt_float(v: &Val) -> Result<Option<f64>> {
    match v {
        Val::None => Ok(None),
        v => float(v).map(Some),
    }
}

fn zip(a: &Arr, b: &Arr, f: impl Fn(f64, f64) -> f64) -> Result<Arr> {
    a.zip(b, f).ok_or_else(|| {
        bad(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })
}

/// Dims to reduce for `sum`/`mean`: `None`, an empty list → all.
fn reduce_dims(v: Option<&Val>, rank: usize) -> Result<Vec<usize>> {
    let all: Vec<usize> = (0..rank).collect();
    match v {
        None | Some(Val::None) => Ok(all),
        Some(v) => {
            let l = ints(v)?;
            if l.is_empty() {
                return Ok(all);
            }
            l.iter().map(|&d| norm_dim(d, rank)).collect()
        }
    }
}

/// `x` summed over `dims`, keeping them as size 1.
fn sum_keep(x: &Arr, dims: &[usize]) -> Arr {
    let kept: Vec<usize> = x
        .shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect();
    x.sum_to(&kept)
}

fn squeeze_dims(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !dims.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

/// `(outer, n, inner)` of `shape` around `dim`.
fn split3(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

/// The resolved `(start, len, step)` of a slice.
fn slice_range(n: usize, start: &Val, end: &Val, step: i64) -> Result<(usize, usize, usize)> {
    let n = n as i64;
    let fix = |v: i64| -> i64 {
        let v = if v < 0 { v + n } else { v };
        v.clamp(0, n)
    };
    let s = match start {
        Val::None => 0,
        v => fix(int(v)?),
    };
    let e = match end {
        Val::None => n,
        v => fix(int(v)?),
    };
    if step <= 0 {
        return Err(bad("slice step must be positive"));
    }
    let len = if e > s { (e - s + step - 1) / step } else { 0 };
    Ok((s as usize, len as usize, step as usize))
}

/// Gathers along `dim`: `out[o, j, i] = x[o, idx[j], i]`.
fn gather(x: &Arr, dim: usize, idx: impl Iterator<Item = usize> + Clone) -> Arr {
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
fn scatter(g: &Arr, shape: &[usize], dim: usize, idx: impl Iterator<Item = usize> + Clone) -> Arr {
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
fn indices(idx: &Arr, n: usize) -> Result<Vec<usize>> {
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
fn gather_offsets(x: &Arr, dim: usize, idx: &Arr) -> Result<Vec<usize>> {
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

/// The cumulative sum along `dim` (from the end when `reverse`: the adjoint of cumsum).
fn cumsum(x: &Arr, dim: usize, reverse: bool) -> Arr {
    let (outer, n, inner) = split3(&x.shape, dim);
    let mut y = x.clone();
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = 0.0;
            for jj in 0..n {
                let j = if reverse { n - 1 - jj } else { jj };
                let at = (o * n + j) * inner + i;
                acc += x.data[at];
                y.data[at] = acc;
            }
        }
    }
    y
}

/// `A` and `B` of `linalg_solve_triangular` broadcast to a common batch: `(A, B, n, k)` with
/// `A` of shape (batch, n, n) and `B` of shape (batch, n, k).
fn solve_operands(a: &Arr, b: &Arr) -> Result<(Arr, Arr, usize, usize)> {
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
fn solve_triangular(a: &Arr, b: &Arr, upper: bool, unit: bool, transposed: bool) -> Result<Arr> {
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
fn tri_mask(x: &Arr, d: i64, lower: bool, f: impl Fn(f64, bool) -> f64) -> Arr {
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

/// Only the default dims (the last two) of `diag_embed` are compiled.
fn check_last_two(node: &Node, env: &Env, rank: usize) -> Result<()> {
    let v = |i: usize| node.ins.get(i).map(|&s| env.get(s));
    let d1 = v(2).map(int).transpose()?.unwrap_or(-2);
    let d2 = v(3).map(int).transpose()?.unwrap_or(-1);
    if norm_dim(d1, rank)? != rank - 2 || norm_dim(d2, rank)? != rank - 1 {
        return Err(bad("diag_embed into dims other than the last two"));
    }
    Ok(())
}

/// Constant padding (torch's `pad` list: last dim first, `(before, after)` pairs, non-negative):
/// the padded array and where `x` starts in each dim.
fn pad(x: &Arr, pads: &[i64], fill: f64) -> Result<(Arr, Vec<usize>)> {
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

/// `(offset, dim1, dim2)` of `diagonal(self, offset, dim1, dim2)`.
fn diagonal_args(node: &Node, env: &Env, x: &Arr) -> Result<(i64, usize, usize)> {
    let v = |i: usize| node.ins.get(i).map(|&s| env.get(s));
    let r = x.shape.len();
    let off = v(1).map(int).transpose()?.unwrap_or(0);
    let d1 = norm_dim(v(2).map(int).transpose()?.unwrap_or(0), r)?;
    let d2 = norm_dim(v(3).map(int).transpose()?.unwrap_or(1), r)?;
    Ok((off, d1, d2))
}

/// The flat offsets into `x` of its diagonal, and the diagonal's shape (the other dims, then
/// the diagonal).
fn diagonal_offsets(x: &Arr, off: i64, d1: usize, d2: usize) -> (Vec<usize>, Vec<usize>) {
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
fn sum(x: &[f64]) -> f64 {
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
fn dot(a: &[f64], b: &[f64]) -> f64 {
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
fn matmul(a: &Arr, b: &Arr) -> Result<Arr> {
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

fn transpose2(x: &Arr) -> Arr {
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
fn transpose(x: &Arr, d0: usize, d1: usize) -> Arr {
    if d0 == d1 {
        return x.clone();
    }
    let mut shape = x.shape.clone();
    shape.swap(d0, d1);
    let xs = strides(&x.shape);
    let mut perm_strides = xs.clone();
    perm_strides.swap(d0, d1);
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

fn softplus(x: f64, beta: f64, threshold: f64) -> f64 {
    if x * beta > threshold {
        x
    } else {
        (x * beta).exp().ln_1p() / beta
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

fn list_arrs<'a>(env: &'a Env, v: &Val) -> Result<Vec<&'a Arr>> {
    match v {
        Val::List(items) => items.iter().map(|&i| arr(env.get(i))).collect(),
        _ => Err(bad("expected a list of tensors")),
    }
}

/// Reduction code of torch's loss functions: 0 none, 1 mean, 2 sum.
fn reduce_loss(x: Arr, reduction: i64) -> Arr {
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
fn is_integer_kind(code: i64) -> bool {
    matches!(code, 0..=4 | 11 | 27..=29)
}

fn eval(node: &Node, env: &Env) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let nin = node.ins.len();
    let unary = |f: fn(f64) -> f64| -> Result<Val> { Ok(Val::T(arr(v(0))?.map(f))) };
    Ok(match node.op {
        Op::Add | Op::Sub | Op::Rsub => {
            let alpha = if nin > 2 { float(v(2))? } else { 1.0 };
            let (a, b) = (num(v(0))?, num(v(1))?);
            Val::T(match node.op {
                Op::Add => zip(&a, &b, |x, y| x + alpha * y)?,
                Op::Sub => zip(&a, &b, |x, y| x - alpha * y)?,
                _ => zip(&a, &b, |x, y| y - alpha * x)?,
            })
        }
        Op::Mul => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x * y)?),
        Op::Div => {
            if nin > 2 && !matches!(v(2), Val::None) {
                return Err(bad("div with a rounding mode"));
            }
            Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| x / y)?)
        }
        Op::Neg => unary(|x| -x)?,
        Op::Exp => unary(f64::exp)?,
        Op::Log => unary(f64::ln)?,
        Op::Log1p => unary(f64::ln_1p)?,
        Op::Expm1 => unary(f64::exp_m1)?,
        Op::Square => unary(|x| x * x)?,
        Op::Sqrt => unary(f64::sqrt)?,
        Op::Rsqrt => unary(|x| 1.0 / x.sqrt())?,
        Op::Reciprocal => unary(|x| 1.0 / x)?,
        Op::Sigmoid => unary(sigmoid)?,
        Op::Logit => {
            let eps = if nin > 1 { opt_float(v(1))? } else { None };
            Val::T(arr(v(0))?.map(|x| {
                let x = eps.map_or(x, |e| x.clamp(e, 1.0 - e));
                (x / (1.0 - x)).ln()
            }))
        }
        Op::Tanh => unary(f64::tanh)?,
        Op::LogSigmoid => unary(log_sigmoid)?,
        Op::Lgamma => unary(lgamma)?,
        Op::Digamma => unary(digamma)?,
        Op::Abs => unary(f64::abs)?,
        Op::Atan => unary(f64::atan)?,
        Op::Sin => unary(f64::sin)?,
        Op::Cos => unary(f64::cos)?,
        Op::Sinh => unary(f64::sinh)?,
        Op::Cosh => unary(f64::cosh)?,
        Op::Erf => unary(libm::erf)?,
        Op::Erfc => unary(libm::erfc)?,
        Op::Relu => unary(|x| x.max(0.0))?,
        Op::Step(f) => Val::T(arr(v(0))?.map(|x| f.apply(x))),
        Op::LogicalAnd => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 && b != 0.0))
        })?),
        Op::LogicalOr => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
            f64::from(u8::from(a != 0.0 || b != 0.0))
        })?),
        Op::Xlogy => Val::T(zip(&*num(v(0))?, &*num(v(1))?, |x, y| {
            if x == 0.0 && !y.is_nan() {
                0.0
            } else {
                x * y.ln()
            }
        })?),
        Op::Maximum | Op::Minimum if nin == 1 => {
            let x = arr(v(0))?;
            let pick = if node.op == Op::Maximum {
                f64::max
            } else {
                f64::min
            };
            let init = if node.op == Op::Maximum {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            Val::T(Arr::scalar(x.data.iter().fold(init, |m, &y| pick(m, y))))
        }
        Op::Maximum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::max)?),
        Op::Minimum => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::min)?),
        Op::LogSoftmax | Op::Softmax => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (outer, n, inner) = split3(&x.shape, dim);
            let mut y = x.clone();
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * n + j) * inner + i;
                    let m = (0..n)
                        .map(|j| x.data[at(j)])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + (0..n).map(|j| (x.data[at(j)] - m).exp()).sum::<f64>().ln();
                    for j in 0..n {
                        let l = x.data[at(j)] - lse;
                        y.data[at(j)] = if node.op == Op::Softmax { l.exp() } else { l };
                    }
                }
            }
            Val::T(y)
        }
        Op::Gather => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let idx = arr(v(2))?;
            Val::T(Arr {
                shape: idx.shape.clone(),
                data: gather_offsets(x, dim, idx)?
                    .into_iter()
                    .map(|o| x.data[o])
                    .collect(),
            })
        }
        Op::IndexSelect => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            Val::T(gather(x, dim, idx.into_iter()))
        }
        Op::Cumsum => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            Val::T(cumsum(x, dim, false))
        }
        Op::Cumprod => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (outer, n, inner) = split3(&x.shape, dim);
            let mut y = x.clone();
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = 1.0;
                    for j in 0..n {
                        let at = (o * n + j) * inner + i;
                        acc *= x.data[at];
                        y.data[at] = acc;
                    }
                }
            }
            Val::T(y)
        }
        Op::SolveTriangular => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            let upper = matches!(v(2), Val::Bool(true));
            let left = nin < 4 || matches!(v(3), Val::Bool(true));
            let unit = nin > 4 && matches!(v(4), Val::Bool(true));
            if !left {
                return Err(bad("linalg_solve_triangular with left = false"));
            }
            Val::T(solve_triangular(a, b, upper, unit, false)?)
        }
        Op::Diagonal => {
            let x = arr(v(0))?;
            let (off, d1, d2) = diagonal_args(node, env, x)?;
            let (offsets, shape) = diagonal_offsets(x, off, d1, d2);
            Val::T(Arr {
                shape,
                data: offsets.iter().map(|&o| x.data[o]).collect(),
            })
        }
        Op::TrilIndices => {
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
        Op::Tril | Op::Triu => {
            let x = arr(v(0))?;
            let d = if nin > 1 { int(v(1))? } else { 0 };
            Val::T(tri_mask(x, d, node.op == Op::Tril, |x, keep| {
                if keep {
                    x
                } else {
                    0.0
                }
            }))
        }
        Op::DiagEmbed => {
            let x = arr(v(0))?;
            let off = if nin > 1 { int(v(1))? } else { 0 };
            let n = *x
                .shape
                .last()
                .ok_or_else(|| bad("diag_embed of a scalar"))?;
            let m = n + off.unsigned_abs() as usize;
            let mut shape = x.shape[..x.shape.len() - 1].to_vec();
            shape.extend([m, m]);
            let mut out = Arr::full(&shape, 0.0);
            check_last_two(node, env, shape.len())?;
            let (offsets, _) = diagonal_offsets(&out, off, shape.len() - 2, shape.len() - 1);
            for (&o, &xv) in offsets.iter().zip(&x.data) {
                out.data[o] = xv;
            }
            Val::T(out)
        }
        Op::Eye => {
            let n = int(v(0))? as usize;
            // eye(n, dtype, layout, device, pin) or eye(n, m, dtype, ...).
            let m = if nin >= 6 { int(v(1))? as usize } else { n };
            let mut out = Arr::full(&[n, m], 0.0);
            for i in 0..n.min(m) {
                out.data[i * m + i] = 1.0;
            }
            Val::T(out)
        }
        Op::IndexCopy => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
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
        Op::Pad => {
            let x = arr(v(0))?;
            let pads = ints(v(1))?;
            let fill = if node.kind.ends_with("constant_pad_nd") {
                opt_float(v(2))?.unwrap_or(0.0)
            } else {
                if let Val::Opaque = v(2) {
                } else if !matches!(v(2), Val::None) {
                    // Only the constant mode is compiled; its name comes through as opaque.
                }
                opt_float(v(3))?.unwrap_or(0.0)
            };
            Val::T(pad(x, &pads, fill)?.0)
        }
        Op::NanToNum => {
            let x = arr(v(0))?;
            let nan = opt_float(v(1))?.unwrap_or(0.0);
            let pinf = opt_float(v(2))?.unwrap_or(f64::MAX);
            let ninf = opt_float(v(3))?.unwrap_or(f64::MIN);
            Val::T(x.map(|y| {
                if y.is_nan() {
                    nan
                } else if y == f64::INFINITY {
                    pinf
                } else if y == f64::NEG_INFINITY {
                    ninf
                } else {
                    y
                }
            }))
        }
        Op::Mvlgamma => {
            let p = int(v(1))?;
            let c = (p * (p - 1)) as f64 / 4.0 * std::f64::consts::PI.ln();
            Val::T(arr(v(0))?.map(|x| c + (0..p).map(|i| lgamma(x - i as f64 / 2.0)).sum::<f64>()))
        }
        Op::Size => {
            let x = num(v(0))?;
            if nin > 1 {
                Val::Int(x.shape[norm_dim(int(v(1))?, x.shape.len())?] as i64)
            } else {
                Val::Ints(x.shape.iter().map(|&d| d as i64).collect())
            }
        }
        Op::Arange => {
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
        Op::Number => {
            let name = node.kind.as_str();
            match v(0) {
                Val::T(a) if name.ends_with("Int") => Val::Int(a.data[0].trunc() as i64),
                Val::T(a) => Val::Float(a.data[0]),
                Val::Int(i) => Val::T(Arr::scalar(*i as f64)),
                Val::Float(x) => Val::T(Arr::scalar(*x)),
                other => other.clone(),
            }
        }
        Op::Softplus => {
            let beta = if nin > 1 { float(v(1))? } else { 1.0 };
            let th = if nin > 2 { float(v(2))? } else { 20.0 };
            Val::T(arr(v(0))?.map(|x| softplus(x, beta, th)))
        }
        Op::Pow => Val::T(zip(&*num(v(0))?, &*num(v(1))?, f64::powf)?),
        Op::Sum | Op::Mean => {
            let x = arr(v(0))?;
            // sum(self, dtype) or sum(self, dim, keepdim, dtype).
            let (dims, keep) = if nin >= 3 {
                (
                    reduce_dims(Some(v(1)), x.shape.len())?,
                    matches!(v(2), Val::Bool(true)),
                )
            } else {
                (reduce_dims(None, x.shape.len())?, false)
            };
            let mut s = sum_keep(x, &dims);
            if node.op == Op::Mean {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                s.data.iter_mut().for_each(|y| *y /= n);
            }
            if !keep {
                s.shape = squeeze_dims(&s.shape, &dims);
            }
            Val::T(s)
        }
        Op::Expand => {
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
        Op::BroadcastAll(i) => {
            let mut shape: Vec<usize> = Vec::new();
            for &s in &node.ins {
                let a = num(env.get(s))?;
                shape = broadcast_shapes(&shape, &a.shape)
                    .ok_or_else(|| bad("broadcast_tensors: shapes do not broadcast"))?;
            }
            Val::T(num(v(i))?.expand_to(&shape))
        }
        Op::Stack | Op::Cat => {
            let xs = list_arrs(env, v(0))?;
            let first = xs.first().ok_or_else(|| bad("stack of nothing"))?;
            let rank = first.shape.len() + usize::from(node.op == Op::Stack);
            let dim = norm_dim(if nin > 1 { int(v(1))? } else { 0 }, rank)?;
            let parts: Vec<Arr> = xs
                .iter()
                .map(|x| {
                    if node.op == Op::Stack {
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
        Op::Select => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let n = x.shape[dim] as i64;
            let i = int(v(2))?;
            let i = if i < 0 { i + n } else { i };
            if i < 0 || i >= n {
                return Err(bad("select index out of range"));
            }
            let mut g = gather(x, dim, std::iter::once(i as usize));
            g.shape.remove(dim);
            Val::T(g)
        }
        Op::Slice => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (s, len, step) = if node.kind.ends_with("narrow") {
                let st = int(v(2))?;
                let st = if st < 0 { st + x.shape[dim] as i64 } else { st };
                (st as usize, int(v(3))? as usize, 1)
            } else {
                slice_range(x.shape[dim], v(2), v(3), int(v(4))?)?
            };
            Val::T(gather(x, dim, (0..len).map(move |j| s + j * step)))
        }
        Op::Reshape => {
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
        Op::Unsqueeze => {
            let x = arr(v(0))?;
            let d = norm_dim(int(v(1))?, x.shape.len() + 1)?;
            let mut shape = x.shape.clone();
            shape.insert(d, 1);
            Val::T(Arr {
                shape,
                data: x.data.clone(),
            })
        }
        Op::Squeeze => {
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
        Op::Identity | Op::Detach => Val::T(arr(v(0))?.clone()),
        Op::ToKind => {
            let x = arr(v(0))?;
            // to(self, dtype, ...), to(self, device, dtype, ...) or type_as(self, other).
            let code = (1..nin.min(3)).find_map(|i| match v(i) {
                Val::Int(c) => Some(*c),
                _ => None,
            });
            Val::T(match code {
                Some(11) => x.map(|y| f64::from(u8::from(y != 0.0))),
                Some(c) if is_integer_kind(c) => x.map(f64::trunc),
                _ => x.clone(),
            })
        }
        Op::Matmul => {
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
        Op::Bcewl => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            if nin > 3 && (!matches!(v(2), Val::None) || !matches!(v(3), Val::None)) {
                return Err(bad("binary_cross_entropy_with_logits with weights"));
            }
            let l = zip(&x, &y, |x, y| x.max(0.0) - x * y + (-x.abs()).exp().ln_1p())?;
            Val::T(reduce_loss(l, if nin > 4 { int(v(4))? } else { 1 }))
        }
        Op::Where => {
            let c = num(v(0))?;
            let a = num(v(1))?;
            let b = num(v(2))?;
            let ab = zip(&a, &b, |_, _| 0.0)?;
            let a = a.expand_to(&ab.shape);
            let b = b.expand_to(&ab.shape);
            let shape = broadcast_shapes(&c.shape, &ab.shape)
                .ok_or_else(|| bad("where: shapes do not broadcast"))?;
            let (c, a, b) = (
                c.expand_to(&shape),
                a.expand_to(&shape),
                b.expand_to(&shape),
            );
            Val::T(Arr {
                shape,
                data: c
                    .data
                    .iter()
                    .zip(a.data.iter().zip(&b.data))
                    .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
                    .collect(),
            })
        }
        Op::MaskedFill => {
            let fill = float(v(2))?;
            Val::T(zip(arr(v(0))?, &*num(v(1))?, |x, m| {
                if m != 0.0 {
                    fill
                } else {
                    x
                }
            })?)
        }
        Op::LogicalNot => unary(|x| f64::from(u8::from(x == 0.0)))?,
        Op::Clamp => {
            let x = arr(v(0))?;
            let (lo, hi) = clamp_bounds(node, env)?;
            Val::T(x.map(|y| y.max(lo).min(hi)))
        }
        Op::ScalarTensor => Val::T(Arr::scalar(float(v(0))?)),
        Op::Fill => {
            let name = node.kind.trim_start_matches("aten::");
            let shape: Vec<usize> = if name.ends_with("_like") {
                num(v(0))?.shape.clone()
            } else {
                ints(v(0))?.iter().map(|&d| d.max(0) as usize).collect()
            };
            let fill = match name {
                "zeros" | "zeros_like" => 0.0,
                "ones" | "ones_like" => 1.0,
                _ => float(v(1))?,
            };
            Val::T(Arr::full(&shape, fill))
        }
        Op::ListConstruct => {
            let items: Vec<&Val> = node.ins.iter().map(|&i| env.get(i)).collect();
            if items.iter().all(|x| matches!(x, Val::Int(_))) {
                Val::Ints(items.iter().map(|x| int(x)).collect::<Result<_>>()?)
            } else {
                Val::List(node.ins.clone())
            }
        }
        Op::Transpose => {
            let x = arr(v(0))?;
            if nin == 1 {
                Val::T(if x.shape.len() == 2 {
                    transpose2(x)
                } else {
                    x.clone()
                })
            } else {
                let r = x.shape.len();
                Val::T(transpose(
                    x,
                    norm_dim(int(v(1))?, r)?,
                    norm_dim(int(v(2))?, r)?,
                ))
            }
        }
        Op::Logsumexp => {
            let x = arr(v(0))?;
            let dims = reduce_dims(Some(v(1)), x.shape.len())?;
            let keep = nin > 2 && matches!(v(2), Val::Bool(true));
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
        Op::Random(_) => return Err(bad("a random op cannot be folded")),
        Op::Compare(c) => {
            let f: fn(f64, f64) -> bool = match c {
                Cmp::Gt => |a, b| a > b,
                Cmp::Ge => |a, b| a >= b,
                Cmp::Lt => |a, b| a < b,
                Cmp::Le => |a, b| a <= b,
                Cmp::Eq => |a, b| a == b,
                Cmp::Ne => |a, b| a != b,
            };
            Val::T(zip(&*num(v(0))?, &*num(v(1))?, |a, b| {
                f64::from(u8::from(f(a, b)))
            })?)
        }
    })
}

fn clamp_bounds(node: &Node, env: &Env) -> Result<(f64, f64)> {
    let v = |i: usize| -> Option<&Val> { node.ins.get(i).map(|&s| env.get(s)) };
    let get = |i: usize| -> Result<Option<f64>> {
        match v(i) {
            Some(x) => opt_float(x),
            None => Ok(None),
        }
    };
    Ok(if node.kind.ends_with("clamp_min") {
        (get(1)?.unwrap_or(f64::NEG_INFINITY), f64::INFINITY)
    } else if node.kind.ends_with("clamp_max") {
        (f64::NEG_INFINITY, get(1)?.unwrap_or(f64::INFINITY))
    } else {
        (
            get(1)?.unwrap_or(f64::NEG_INFINITY),
            get(2)?.unwrap_or(f64::INFINITY),
        )
    })
}

/// The max over `dims`, keeping them as size 1.
fn max_keep(x: &Arr, dims: &[usize]) -> Arr {
    let kept: Vec<usize> = x
        .shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect();
    let mut out = Arr::full(&kept, f64::NEG_INFINITY);
    let idx = super::array::broadcast_index(&kept, &x.shape);
    for (v, &i) in x.data.iter().zip(&idx) {
        if *v > out.data[i] {
            out.data[i] = *v;
        }
    }
    out
}

fn concat(parts: &[Arr], dim: usize) -> Result<Arr> {
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

fn accumulate(grads: &mut [Option<Arr>], slot: usize, g: Arr) {
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

/// Adds the gradient `g` of `node`'s output into the gradients of its live inputs.
fn backward(node: &Node, env: &Env, g: Arr, grads: &mut [Option<Arr>]) -> Result<()> {
    let ins = &node.ins;
    let live = env.live;
    let v = |i: usize| -> &Val { env.get(ins[i]) };
    let wants = |i: usize| -> bool { ins.len() > i && live[ins[i]] };
    let out = || arr(env.get(node.out));
    // d out / d x as a function of (x, out), for elementwise unary ops.
    // In place on the owned `g`: g_i *= d(x_i, out_i).
    let unary = |grads: &mut [Option<Arr>], g: Arr, d: &dyn Fn(f64, f64) -> f64| -> Result<()> {
        let x = arr(v(0))?;
        let y = out()?;
        let mut g = g;
        for (gv, (&xv, &yv)) in g.data.iter_mut().zip(x.data.iter().zip(&y.data)) {
            *gv *= d(xv, yv);
        }
        g.shape = x.shape.clone();
        accumulate(grads, ins[0], g);
        Ok(())
    };
    // The adjoint of broadcasting an operand of `shape`.
    let send = |grads: &mut [Option<Arr>], i: usize, gi: Arr| -> Result<()> {
        let shape = match env.get(ins[i]) {
            Val::T(a) => a.shape.clone(),
            _ => return Ok(()),
        };
        accumulate(grads, ins[i], gi.into_sum_to(&shape));
        Ok(())
    };
    match node.op {
        Op::Add | Op::Sub | Op::Rsub => {
            let alpha = if ins.len() > 2 { float(v(2))? } else { 1.0 };
            let (ca, cb) = match node.op {
                Op::Add => (1.0, alpha),
                Op::Sub => (1.0, -alpha),
                _ => (-alpha, 1.0),
            };
            // Scalar operands get a sum; full ones a scaled copy, the last of them `g` itself.
            let mut full = Vec::new();
            for (k, c) in [(0usize, ca), (1usize, cb)] {
                if !wants(k) {
                    continue;
                }
                let operand = num(v(k))?;
                if operand.numel() == 1 && operand.shape.len() <= g.shape.len() {
                    let shape = operand.shape.clone();
                    accumulate(grads, ins[k], Arr::full(&shape, c * sum(&g.data)));
                } else {
                    full.push((k, c));
                }
            }
            let mut g = g;
            while let Some((k, c)) = full.pop() {
                let mut gk = if full.is_empty() {
                    std::mem::replace(&mut g, Arr::scalar(0.0))
                } else {
                    g.clone()
                };
                if c != 1.0 {
                    gk.data.iter_mut().for_each(|x| *x *= c);
                }
                send(grads, k, gk)?;
            }
        }
        Op::Mul | Op::Div => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            let div = node.op == Op::Div;
            // A scalar operand's gradient: one dot product.
            for (k, &slot) in ins.iter().enumerate().take(2) {
                let (me, other) = if k == 0 { (&a, &b) } else { (&b, &a) };
                if !wants(k) || me.numel() != 1 || other.shape != g.shape {
                    continue;
                }
                if me.shape.len() > g.shape.len() {
                    continue;
                }
                let d = match (div, k) {
                    (false, _) => dot(&g.data, &other.data),
                    // d(a / b)/da for a scalar a: Σ g / b.
                    (true, 0) => g.data.iter().zip(&other.data).map(|(g, b)| g / b).sum(),
                    // d(a / b)/db = -a / b².
                    (true, _) => -dot(&g.data, &other.data) / (me.data[0] * me.data[0]),
                };
                let shape = me.shape.clone();
                accumulate(grads, slot, Arr::full(&shape, d));
            }
            let full = |k: usize| -> bool {
                let (me, other) = if k == 0 { (&a, &b) } else { (&b, &a) };
                wants(k)
                    && !(me.numel() == 1
                        && other.shape == g.shape
                        && me.shape.len() <= g.shape.len())
            };
            let (f0, f1) = (full(0), full(1));
            if f1 {
                let d = if div {
                    let ab = zip(&a, &b, |a, b| -a / (b * b))?;
                    zip(&g, &ab, |g, d| g * d)?
                } else {
                    zip(&g, &a, |g, a| g * a)?
                };
                send(grads, 1, d)?;
            }
            if f0 {
                if b.numel() == 1 || b.shape == g.shape {
                    // In place on g.
                    let mut g = g;
                    let bv = &b.data;
                    let one = bv.len() == 1;
                    for (i, x) in g.data.iter_mut().enumerate() {
                        let bi = if one { bv[0] } else { bv[i] };
                        if div {
                            *x /= bi;
                        } else {
                            *x *= bi;
                        }
                    }
                    send(grads, 0, g)?;
                } else if div {
                    send(grads, 0, zip(&g, &b, |g, b| g / b)?)?;
                } else {
                    send(grads, 0, zip(&g, &b, |g, b| g * b)?)?;
                }
            }
        }
        Op::Neg => unary(grads, g, &|_, _| -1.0)?,
        Op::Exp => unary(grads, g, &|_, y| y)?,
        Op::Log => unary(grads, g, &|x, _| 1.0 / x)?,
        Op::Log1p => unary(grads, g, &|x, _| 1.0 / (1.0 + x))?,
        Op::Expm1 => unary(grads, g, &|_, y| y + 1.0)?,
        Op::Square => unary(grads, g, &|x, _| 2.0 * x)?,
        Op::Sqrt => unary(grads, g, &|_, y| 0.5 / y)?,
        Op::Rsqrt => unary(grads, g, &|x, y| -0.5 * y / x)?,
        Op::Reciprocal => unary(grads, g, &|_, y| -y * y)?,
        Op::Sigmoid => unary(grads, g, &|_, y| y * (1.0 - y))?,
        Op::Logit => {
            let eps = if ins.len() > 1 {
                opt_float(v(1))?
            } else {
                None
            };
            unary(grads, g, &|x, _| match eps {
                Some(e) if x < e || x > 1.0 - e => 0.0,
                _ => 1.0 / (x * (1.0 - x)),
            })?
        }
        Op::Tanh => unary(grads, g, &|_, y| 1.0 - y * y)?,
        Op::LogSigmoid => unary(grads, g, &|x, _| sigmoid(-x))?,
        Op::Lgamma => unary(grads, g, &|x, _| digamma(x))?,
        Op::Digamma => unary(grads, g, &|x, _| trigamma(x))?,
        Op::Abs => unary(grads, g, &|x, _| x.signum() * f64::from(u8::from(x != 0.0)))?,
        Op::Atan => unary(grads, g, &|x, _| 1.0 / (1.0 + x * x))?,
        Op::Sin => unary(grads, g, &|x, _| x.cos())?,
        Op::Cos => unary(grads, g, &|x, _| -x.sin())?,
        Op::Sinh => unary(grads, g, &|x, _| x.cosh())?,
        Op::Cosh => unary(grads, g, &|x, _| x.sinh())?,
        Op::Erf => unary(grads, g, &|x, _| {
            std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp()
        })?,
        Op::Erfc => unary(grads, g, &|x, _| {
            -std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp()
        })?,
        Op::Relu => unary(grads, g, &|x, _| f64::from(u8::from(x > 0.0)))?,
        Op::Step(_) => {}
        Op::Xlogy => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            if wants(0) {
                let d = zip(&x, &y, |x, y| if x != 0.0 { y.ln() } else { 0.0 })?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = zip(&x, &y, |x, y| x / y)?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::Maximum | Op::Minimum if ins.len() == 1 => {
            let x = arr(v(0))?;
            let m = out()?.data[0];
            let hits = x.data.iter().filter(|&&y| y == m).count().max(1) as f64;
            let gx = x.map(|y| if y == m { g.data[0] / hits } else { 0.0 });
            accumulate(grads, ins[0], gx);
        }
        Op::Maximum | Op::Minimum => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            let max = node.op == Op::Maximum;
            // The winner takes the gradient; a tie splits it (as torch does).
            let share = |x: f64, y: f64| -> f64 {
                if x == y {
                    0.5
                } else if (x > y) == max {
                    1.0
                } else {
                    0.0
                }
            };
            if wants(0) {
                let d = zip(&a, &b, share)?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = zip(&b, &a, share)?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::LogSoftmax | Op::Softmax => {
            let x = arr(v(0))?;
            let y = out()?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (outer, n, inner) = split3(&x.shape, dim);
            let mut gx = Arr::full(&x.shape, 0.0);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * n + j) * inner + i;
                    if node.op == Op::LogSoftmax {
                        let gs: f64 = (0..n).map(|j| g.data[at(j)]).sum();
                        for j in 0..n {
                            gx.data[at(j)] = g.data[at(j)] - y.data[at(j)].exp() * gs;
                        }
                    } else {
                        let gy: f64 = (0..n).map(|j| g.data[at(j)] * y.data[at(j)]).sum();
                        for j in 0..n {
                            gx.data[at(j)] = y.data[at(j)] * (g.data[at(j)] - gy);
                        }
                    }
                }
            }
            accumulate(grads, ins[0], gx);
        }
        Op::Gather => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let mut gx = Arr::full(&x.shape, 0.0);
            for (o, gv) in gather_offsets(x, dim, arr(v(2))?)?.into_iter().zip(&g.data) {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        Op::IndexSelect => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            accumulate(grads, ins[0], scatter(&g, &x.shape, dim, idx.into_iter()));
        }
        Op::Cumsum => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            accumulate(grads, ins[0], cumsum(&g, dim, true));
        }
        Op::SolveTriangular => {
            // X = A⁻¹ B: dB = A⁻ᵀ G, dA = -dB Xᵀ (on A's triangle); both summed over the
            // batch dims they were broadcast along.
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            let upper = matches!(v(2), Val::Bool(true));
            let unit = ins.len() > 4 && matches!(v(4), Val::Bool(true));
            let db = solve_triangular(a, &g, upper, unit, true)?;
            if wants(0) {
                let x = out()?;
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
            if wants(1) {
                accumulate(grads, ins[1], db.sum_to(&b.shape));
            }
        }
        Op::Diagonal => {
            let x = arr(v(0))?;
            let (off, d1, d2) = diagonal_args(node, env, x)?;
            let (offsets, _) = diagonal_offsets(x, off, d1, d2);
            let mut gx = Arr::full(&x.shape, 0.0);
            for (&o, gv) in offsets.iter().zip(&g.data) {
                gx.data[o] += gv;
            }
            accumulate(grads, ins[0], gx);
        }
        Op::Tril | Op::Triu => {
            let d = if ins.len() > 1 { int(v(1))? } else { 0 };
            let gx = tri_mask(
                &g,
                d,
                node.op == Op::Tril,
                |g, keep| if keep { g } else { 0.0 },
            );
            accumulate(grads, ins[0], gx);
        }
        Op::DiagEmbed => {
            let x = arr(v(0))?;
            let off = if ins.len() > 1 { int(v(1))? } else { 0 };
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
        Op::IndexCopy => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let idx = indices(arr(v(2))?, x.shape[dim])?;
            if wants(0) {
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
            if wants(3) {
                accumulate(grads, ins[3], gather(&g, dim, idx.into_iter()));
            }
        }
        Op::Pad => {
            let x = arr(v(0))?;
            let pads = ints(v(1))?;
            let (_, starts) = pad(x, &pads, 0.0)?;
            // The gradient is the interior of g.
            let mut gx = g.clone();
            for (d, &st) in starts.iter().enumerate() {
                if st > 0 || gx.shape[d] != x.shape[d] {
                    gx = gather(&gx, d, st..st + x.shape[d]);
                }
            }
            accumulate(grads, ins[0], gx);
        }
        Op::NanToNum => unary(grads, g, &|x, _| f64::from(u8::from(x.is_finite())))?,
        Op::Mvlgamma => {
            let p = int(v(1))?;
            unary(grads, g, &|x, _| {
                (0..p).map(|i| digamma(x - i as f64 / 2.0)).sum()
            })?
        }
        Op::Cumprod => {
            // dx_i = Σ_{j ≥ i} g_j Π_{k ≤ j, k ≠ i} x_k, without dividing by x_i (which may be 0).
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (outer, n, inner) = split3(&x.shape, dim);
            let mut gx = Arr::full(&x.shape, 0.0);
            for o in 0..outer {
                for l in 0..inner {
                    let at = |j: usize| (o * n + j) * inner + l;
                    let mut before = 1.0;
                    for i in 0..n {
                        let mut q = before;
                        let mut acc = g.data[at(i)] * q;
                        for j in i + 1..n {
                            q *= x.data[at(j)];
                            acc += g.data[at(j)] * q;
                        }
                        gx.data[at(i)] = acc;
                        before *= x.data[at(i)];
                    }
                }
            }
            accumulate(grads, ins[0], gx);
        }
        Op::Softplus => {
            let beta = if ins.len() > 1 { float(v(1))? } else { 1.0 };
            let th = if ins.len() > 2 { float(v(2))? } else { 20.0 };
            unary(grads, g, &|x, _| {
                if x * beta > th {
                    1.0
                } else {
                    sigmoid(x * beta)
                }
            })?
        }
        Op::Pow => {
            let (a, b) = (num(v(0))?, num(v(1))?);
            if wants(0) {
                let d = zip(
                    &a,
                    &b,
                    |x, p| if p == 0.0 { 0.0 } else { p * x.powf(p - 1.0) },
                )?;
                send(grads, 0, zip(&g, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let y = out()?;
                let d = zip(y, &a, |y, x| if x == 0.0 { 0.0 } else { y * x.ln() })?;
                send(grads, 1, zip(&g, &d, |g, d| g * d)?)?;
            }
        }
        Op::Sum | Op::Mean => {
            let x = arr(v(0))?;
            let dims = if ins.len() >= 3 {
                reduce_dims(Some(v(1)), x.shape.len())?
            } else {
                reduce_dims(None, x.shape.len())?
            };
            let kept: Vec<usize> = x
                .shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
                .collect();
            let mut gk = Arr {
                shape: kept,
                data: g.data.clone(),
            };
            if node.op == Op::Mean {
                let n: usize = dims.iter().map(|&d| x.shape[d]).product();
                let n = n.max(1) as f64;
                gk.data.iter_mut().for_each(|y| *y /= n);
            }
            accumulate(grads, ins[0], gk.expand_to(&x.shape));
        }
        Op::Expand => send(grads, 0, g.clone())?,
        Op::BroadcastAll(i) => {
            if wants(i) {
                send(grads, i, g.clone())?;
            }
        }
        Op::Stack | Op::Cat => {
            let Val::List(items) = v(0) else {
                return Err(bad("expected a list"));
            };
            let xs = list_arrs(env, v(0))?;
            let rank = xs[0].shape.len() + usize::from(node.op == Op::Stack);
            let dim = norm_dim(if ins.len() > 1 { int(v(1))? } else { 0 }, rank)?;
            let mut start = 0;
            for (&slot, x) in items.iter().zip(&xs) {
                let n = if node.op == Op::Stack {
                    1
                } else {
                    x.shape[dim]
                };
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
        Op::Select => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let n = x.shape[dim] as i64;
            let i = int(v(2))?;
            let i = if i < 0 { i + n } else { i } as usize;
            let mut gs = g.clone();
            gs.shape.insert(dim, 1);
            accumulate(
                grads,
                ins[0],
                scatter(&gs, &x.shape, dim, std::iter::once(i)),
            );
        }
        Op::Slice => {
            let x = arr(v(0))?;
            let dim = norm_dim(int(v(1))?, x.shape.len())?;
            let (s, len, step) = if node.kind.ends_with("narrow") {
                let st = int(v(2))?;
                let st = if st < 0 { st + x.shape[dim] as i64 } else { st };
                (st as usize, int(v(3))? as usize, 1)
            } else {
                slice_range(x.shape[dim], v(2), v(3), int(v(4))?)?
            };
            accumulate(
                grads,
                ins[0],
                scatter(&g, &x.shape, dim, (0..len).map(move |j| s + j * step)),
            );
        }
        Op::Reshape | Op::Unsqueeze | Op::Squeeze | Op::Identity | Op::ToKind => {
            let x = arr(v(0))?;
            accumulate(
                grads,
                ins[0],
                Arr {
                    shape: x.shape.clone(),
                    data: g.data.clone(),
                },
            );
        }
        Op::Transpose => {
            let x = arr(v(0))?;
            let gt = if ins.len() == 1 {
                if x.shape.len() == 2 {
                    transpose2(&g)
                } else {
                    g.clone()
                }
            } else {
                let r = x.shape.len();
                transpose(&g, norm_dim(int(v(1))?, r)?, norm_dim(int(v(2))?, r)?)
            };
            accumulate(grads, ins[0], gt);
        }
        Op::Matmul => {
            let (a, b) = (arr(v(0))?, arr(v(1))?);
            let (n, k) = if a.shape.len() == 1 {
                (1, a.shape[0])
            } else {
                (a.shape[0], a.shape[1])
            };
            let m = if b.shape.len() == 1 { 1 } else { b.shape[1] };
            if wants(0) {
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
            if wants(1) {
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
        Op::Bcewl => {
            let (x, y) = (num(v(0))?, num(v(1))?);
            let reduction = if ins.len() > 4 { int(v(4))? } else { 1 };
            let shape = broadcast_shapes(&x.shape, &y.shape)
                .ok_or_else(|| bad("shapes do not broadcast"))?;
            let n = shape.iter().product::<usize>().max(1) as f64;
            let gfull = match reduction {
                1 => Arr::full(&shape, g.data[0] / n),
                2 => Arr::full(&shape, g.data[0]),
                _ => g.clone(),
            };
            if wants(0) {
                let d = zip(&x, &y, |x, y| sigmoid(x) - y)?;
                send(grads, 0, zip(&gfull, &d, |g, d| g * d)?)?;
            }
            if wants(1) {
                let d = x.expand_to(&shape).map(|x| -x);
                send(grads, 1, zip(&gfull, &d, |g, d| g * d)?)?;
            }
        }
        Op::Where => {
            let c = num(v(0))?;
            for (i, pick) in [(1usize, true), (2usize, false)] {
                if wants(i) {
                    let gi = zip(&g, &c, |g, c| if (c != 0.0) == pick { g } else { 0.0 })?;
                    send(grads, i, gi)?;
                }
            }
        }
        Op::MaskedFill => {
            if wants(0) {
                let m = num(v(1))?;
                send(
                    grads,
                    0,
                    zip(&g, &m, |g, m| if m != 0.0 { 0.0 } else { g })?,
                )?;
            }
        }
        Op::Clamp => {
            let (lo, hi) = clamp_bounds(node, env)?;
            unary(grads, g, &|x, _| f64::from(u8::from(x >= lo && x <= hi)))?
        }
        Op::Logsumexp => {
            let x = arr(v(0))?;
            let dims = reduce_dims(Some(v(1)), x.shape.len())?;
            let y = out()?;
            let kept: Vec<usize> = x
                .shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
                .collect();
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
        Op::Random(Rnd::StandardGamma) => {
            unary(grads, g, &|alpha, x| random::standard_gamma_grad(x, alpha))?
        }
        Op::Random(_) => {}
        Op::Detach
        | Op::TrilIndices
        | Op::Eye
        | Op::Size
        | Op::Arange
        | Op::Number
        | Op::ScalarTensor
        | Op::Fill
        | Op::LogicalAnd
        | Op::LogicalOr
        | Op::Compare(_)
        | Op::LogicalNot
        | Op::ListConstruct => {}
    }
    Ok(())
}
