//! A traced graph compiled into a host program: a straight-line list of ops on float64 arrays,
//! run forwards for values and backwards for gradients (reverse mode), with everything that does
//! not depend on the inputs folded into constants at compile time.
//!
//! Supported: the aten ops that ppl's continuous distributions, transforms and the usual model
//! arithmetic record (elementwise math, reductions, broadcasting, views, `matmul` of vectors and
//! matrices, `binary_cross_entropy_with_logits`, ...). Anything else makes `compile` fail with
//! an error naming the op, which `jit_compile` reports; the eager path is unaffected.
//!
//! The parts: `graph.rs` (values, ops and their decoded arguments, how ops read inputs),
//! `ops.rs` (the op families and the dispatch of both passes to them), one file per family
//! holding each op's value and vector-Jacobian product (`elementwise.rs`, `reduce.rs`,
//! `shape.rs`, `linalg.rs`, `random.rs`), `unary.rs` (the unary table), `kernels.rs` (array
//! kernels), this file (parsing, constant folding, the rewrite passes, running).

use std::collections::HashMap;

use rand::rngs::StdRng;

use super::array::Arr;
use super::graph::*;
use super::kernels::{is_integer_kind, transpose2};
use super::ops::{accumulate, backward, eval};
use super::plan::Plan;
use super::random::draw;
use crate::error::{Error, Result};

/// A compiled graph: inputs are arrays of fixed shapes, the outputs are scalars.
#[derive(Clone, Debug)]
pub struct Program {
    pub(super) inputs: Vec<usize>,
    pub(super) input_shapes: Vec<Vec<usize>>,
    pub(super) outputs: Vec<usize>,
    /// The ops that depend on an input, in order.
    pub(super) nodes: Vec<Node>,
    /// Values: constants (and folded ops) filled in at compile time, the rest per run.
    pub(super) init: Vec<Val>,
    /// Whether a slot depends on an input or a random draw (and so is computed per run).
    pub(super) live: Vec<bool>,
    /// What each random op drew in the traced run.
    pub(super) traced_draws: HashMap<usize, Arr>,
    /// For each constant matrix `X` (n x k) in a matrix-vector product, `Xᵀ` row-major: both
    /// `X w` (k scaled columns added up) and `Xᵀ g` (k dot products) then run over contiguous
    /// memory.
    pub(super) columns: HashMap<usize, Arr>,
    /// The nodes lowered onto planned buffers (`plan.rs`), which run instead of the array
    /// interpreter below when every live value is a tensor.
    pub(super) plan: Option<Plan>,
}

/// Where a program's random ops get their values.
pub enum Draws<'a> {
    /// Fresh draws from this generator.
    Fresh(&'a mut StdRng),
    /// The draws of the traced run (to check a program against libtorch's run).
    Traced,
}

fn parse<T: std::str::FromStr>(tok: Option<&str>, line: &str) -> Result<T> {
    tok.and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(format!("cannot read the traced graph at `{line}`")))
}

/// A tensor written as `<ndim> <dim>... <value>...`.
fn parse_tensor<'a>(t: &mut impl Iterator<Item = &'a str>, line: &str) -> Result<Arr> {
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
    Ok(Arr { shape, data })
}

/// The ops that are compositions of others, written as those: `linear(x, W, b) = x Wᵀ + b`
/// (`tch::nn::Linear`), `addmm(s, A, B, 1, α) = s + α A B`. New slots are appended to `init`.
fn composite(kind: &str, ins: &[usize], out: usize, init: &mut Vec<Val>) -> Option<Vec<Node>> {
    fn fresh(init: &mut Vec<Val>) -> usize {
        init.push(Val::Empty);
        init.len() - 1
    }
    let node = |op: Op, kind: &str, ins: Vec<usize>, out: usize| Node {
        op,
        kind: kind.into(),
        ins,
        out,
    };
    match kind {
        "aten::linear" if ins.len() >= 2 => {
            let wt = fresh(init);
            let mut parts = vec![node(
                Op::Shape(ShapeOp::Transpose { dims: None }),
                "aten::t",
                vec![ins[1]],
                wt,
            )];
            let bias = ins
                .get(2)
                .copied()
                .filter(|&b| !matches!(init[b], Val::None));
            match bias {
                None => parts.push(node(
                    Op::Linalg(LinalgOp::Matmul),
                    "aten::matmul",
                    vec![ins[0], wt],
                    out,
                )),
                Some(b) => {
                    let xw = fresh(init);
                    parts.push(node(
                        Op::Linalg(LinalgOp::Matmul),
                        "aten::matmul",
                        vec![ins[0], wt],
                        xw,
                    ));
                    parts.push(node(
                        Op::Elementwise(EwOp::Add { alpha: 1.0 }),
                        "aten::add",
                        vec![xw, b],
                        out,
                    ));
                }
            }
            Some(parts)
        }
        "aten::addmm" if ins.len() == 5 => {
            let ab = fresh(init);
            let mut parts = vec![node(
                Op::Linalg(LinalgOp::Matmul),
                "aten::mm",
                vec![ins[1], ins[2]],
                ab,
            )];
            let unit_beta = match init[ins[3]] {
                Val::Int(b) => b == 1,
                Val::Float(b) => b == 1.0,
                _ => false,
            };
            if !unit_beta {
                // Not recorded by ppl's own code; `UnsupportedOp` names it.
                return None;
            }
            let s = ins[0];
            // alpha (ins[4]) is decoded with the other ops' arguments.
            parts.push(node(
                Op::Elementwise(EwOp::Add { alpha: 1.0 }),
                "aten::add",
                vec![s, ab, ins[4]],
                out,
            ));
            Some(parts)
        }
        _ => None,
    }
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
                    traced_draws.insert(s, parse_tensor(&mut t, line)?);
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
                        Some("t") => Val::T(parse_tensor(&mut t, line)?),
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
                                    op: Op::Shape(ShapeOp::BroadcastAll(i)),
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
                                    op: Op::Shape(ShapeOp::Identity),
                                    kind: "prim::ListUnpack".into(),
                                    ins: vec![item],
                                    out,
                                });
                            }
                            continue;
                        }
                    }
                    if nout != 1 {
                        return Err(Error::UnsupportedOp {
                            op: kind,
                            detail: format!(" (it has {nout} outputs)"),
                        });
                    }
                    let out = outs[0];
                    if let Some(parts) = composite(&kind, &ins, out, &mut init) {
                        nodes.extend(parts);
                        continue;
                    }
                    if kind == "prim::ListConstruct" {
                        list_items.insert(out, ins.clone());
                    }
                    let Some(op) = op_of(&kind) else {
                        return Err(Error::UnsupportedOp {
                            op: kind,
                            detail: String::new(),
                        });
                    };
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
            plan: None,
        };
        let no_columns = HashMap::new();
        let no_live = vec![false; live.len()];
        for mut node in nodes {
            decode(&mut node, &program.init, &live)?;
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
        program.merge_common();
        for n in &program.nodes {
            if n.op != Op::Linalg(LinalgOp::Matmul) || program.live[n.ins[0]] {
                continue;
            }
            if let Val::T(x) = &program.init[n.ins[0]] {
                if x.shape.len() == 2 && x.numel() >= 256 {
                    program.columns.insert(n.ins[0], transpose2(x));
                }
            }
        }
        program.plan = program.lower();
        Ok(program)
    }

    /// Merges nodes that compute the same op of the same values (common subexpressions): the
    /// per-step work a traced loop repeats on loop-invariant values (an enumerated HMM
    /// normalizes the same emission rows at every step) then runs once. Constants count as the
    /// same value when they are equal and small; random ops are never merged.
    fn merge_common(&mut self) {
        const SMALL: usize = 64;
        let n = self.init.len();
        let mut canon: Vec<usize> = (0..n).collect();
        let mut constants: HashMap<String, usize> = HashMap::new();
        for (slot, c) in canon.iter_mut().enumerate() {
            if self.live[slot] {
                continue;
            }
            let key = match &self.init[slot] {
                Val::T(a) if a.numel() <= SMALL => format!("T{:?}{:?}", a.shape, a.data),
                v @ (Val::Int(_) | Val::Float(_) | Val::Bool(_) | Val::Ints(_) | Val::None) => {
                    format!("{v:?}")
                }
                _ => continue,
            };
            *c = *constants.entry(key).or_insert(slot);
        }
        let mut seen: HashMap<(String, Vec<usize>), usize> = HashMap::new();
        let mut merged = vec![false; self.nodes.len()];
        for (k, node) in self.nodes.iter_mut().enumerate() {
            for i in node.ins.iter_mut() {
                *i = canon[*i];
                if let Val::List(items) = &mut self.init[*i] {
                    items.iter_mut().for_each(|j| *j = canon[*j]);
                }
            }
            if matches!(node.op, Op::Random(_)) {
                continue;
            }
            let key = (format!("{}{:?}", node.kind, node.op), node.ins.clone());
            match seen.get(&key) {
                Some(&out) => {
                    canon[node.out] = out;
                    merged[k] = true;
                }
                None => {
                    seen.insert(key, node.out);
                }
            }
        }
        let mut k = 0;
        self.nodes.retain(|_| {
            k += 1;
            !merged[k - 1]
        });
        for o in self.outputs.iter_mut() {
            *o = canon[*o];
        }
    }

    /// The program on planned buffers, from one run of the array interpreter on the traced
    /// draws (which gives every slot its shape); `None` where that run fails or some live value
    /// is not a tensor, and when `PPL_JIT_PLAN=0` (to compare the two in benchmarks).
    fn lower(&self) -> Option<Plan> {
        if std::env::var("PPL_JIT_PLAN").is_ok_and(|v| v == "0") {
            return None;
        }
        let inputs: Vec<Vec<f64>> = self
            .input_shapes
            .iter()
            .map(|s| vec![0.5; s.iter().product()])
            .collect();
        let refs: Vec<&[f64]> = inputs.iter().map(|v| v.as_slice()).collect();
        let run = self.run(&refs, &mut Draws::Traced).ok()?;
        let plan = Plan::build(self, run);
        if let Some(p) = &plan {
            super::debug_print(&format!("planned: {p:?}"));
        }
        plan
    }

    /// The program without its planned buffers: every run goes through the array interpreter.
    pub fn interpreted(mut self) -> Program {
        self.plan = None;
        self
    }

    /// Whether runs go through planned buffers, and how many of the program's nodes still run
    /// on arrays there: `Some((instructions, generic))`.
    pub fn plan_summary(&self) -> Option<(usize, usize)> {
        self.plan.as_ref().map(|p| (p.len(), p.generic_count()))
    }

    /// A slot's value: a constant, or the value in `run`.
    pub(super) fn env_value<'a>(&'a self, slot: usize, run: &'a [Val]) -> &'a Val {
        if self.live[slot] {
            &run[slot]
        } else {
            &self.init[slot]
        }
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
        // Elementwise in their one tensor input (the others' extra arguments are numbers).
        let is_unary = |op: Op| {
            matches!(
                op,
                Op::Elementwise(EwOp::Unary(_))
                    | Op::Elementwise(EwOp::Logit { .. })
                    | Op::Elementwise(EwOp::Softplus { .. })
            )
        };
        let is_binary = |op: Op| {
            matches!(
                op,
                Op::Elementwise(EwOp::Add { .. })
                    | Op::Elementwise(EwOp::Sub { .. })
                    | Op::Elementwise(EwOp::Rsub { .. })
                    | Op::Elementwise(EwOp::Mul)
                    | Op::Elementwise(EwOp::Div)
                    | Op::Elementwise(EwOp::Pow)
                    | Op::Elementwise(EwOp::Xlogy)
                    | Op::Elementwise(EwOp::Maximum)
                    | Op::Elementwise(EwOp::Minimum)
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
                    Op::Shape(ShapeOp::Expand) => Some(n.ins[0]),
                    Op::Shape(ShapeOp::BroadcastAll(i)) => Some(n.ins[i]),
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
                                op: Op::Shape(ShapeOp::Expand),
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
        self.sink_sums(&mut shapes);
        self.drop_aliases(&shapes);
        self.drop_dead_nodes();
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
                Op::Shape(ShapeOp::Identity) => Some(n.ins[0]),
                Op::Shape(ShapeOp::Expand) | Op::Shape(ShapeOp::Reshape) => Some(n.ins[0]),
                Op::Shape(ShapeOp::BroadcastAll(i)) => Some(n.ins[i]),
                Op::Elementwise(EwOp::ToKind) => {
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

    /// Moves full sums past scalar shifts and factors: `sum(a ± s) = sum(a) ± n s` and
    /// `sum(a * s) = sum(a) * s` for a one-element `s`, when nothing else reads `a ± s`. The tail
    /// of a log-density (`... * -0.5 - log σ - log √2π`, summed) then costs one pass over the
    /// data instead of four, forwards and backwards.
    fn sink_sums(&mut self, shapes: &mut Vec<Option<Vec<usize>>>) {
        let numel = |init: &[Val], shapes: &[Option<Vec<usize>>], s: usize| -> Option<usize> {
            match init.get(s) {
                Some(Val::Float(_) | Val::Int(_)) => Some(1),
                _ => shapes
                    .get(s)
                    .cloned()
                    .flatten()
                    .map(|sh| sh.iter().product()),
            }
        };
        for _round in 0..64 {
            let mut uses = vec![0usize; self.init.len()];
            for n in &self.nodes {
                for &i in &n.ins {
                    uses[i] += 1;
                }
            }
            for &o in &self.outputs {
                uses[o] += 1;
            }
            let producer: HashMap<usize, usize> = self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.out, i))
                .collect();
            let mut rewrite = None;
            for (si, n) in self.nodes.iter().enumerate() {
                // A full reduction.
                if !matches!(
                    n.op,
                    Op::Reduce(ReduceOp::Sum {
                        dims: None,
                        keepdim: false
                    })
                ) {
                    continue;
                }
                let x = n.ins[0];
                let Some(&pi) = producer.get(&x) else {
                    continue;
                };
                let p = &self.nodes[pi];
                let alpha = match p.op {
                    Op::Elementwise(EwOp::Add { alpha }) | Op::Elementwise(EwOp::Sub { alpha }) => {
                        alpha
                    }
                    Op::Elementwise(EwOp::Mul) => 1.0,
                    _ => continue,
                };
                if uses[x] != 1 || p.ins.len() < 2 {
                    continue;
                }
                let one = |s: usize| numel(&self.init, shapes, s) == Some(1);
                // The one-element operand second (sub is not symmetric).
                let (a, sc) = if one(p.ins[1]) {
                    (p.ins[0], p.ins[1])
                } else if !matches!(p.op, Op::Elementwise(EwOp::Sub { .. }))
                    && one(p.ins[0])
                    && alpha == 1.0
                {
                    // `s + alpha a` only with alpha = 1.
                    (p.ins[1], p.ins[0])
                } else {
                    continue;
                };
                let (Some(na), Some(nx)) =
                    (numel(&self.init, shapes, a), numel(&self.init, shapes, x))
                else {
                    continue;
                };
                if na != nx || nx <= 1 {
                    continue;
                }
                rewrite = Some((si, pi, a, sc, nx));
                break;
            }
            let Some((si, pi, a, sc, nx)) = rewrite else {
                break;
            };
            let p = self.nodes[pi].clone();
            let sum = self.nodes[si].clone();
            // t = sum(a); out = t ∘ (factor · s).
            let t = self.new_slot(true);
            shapes.push(Some(Vec::new()));
            let mut inner = sum.clone();
            inner.ins[0] = a;
            inner.out = t;
            let op = match p.op {
                Op::Elementwise(EwOp::Add { alpha }) => Op::Elementwise(EwOp::Add {
                    alpha: alpha * nx as f64,
                }),
                Op::Elementwise(EwOp::Sub { alpha }) => Op::Elementwise(EwOp::Sub {
                    alpha: alpha * nx as f64,
                }),
                op => op,
            };
            let outer = Node {
                op,
                kind: p.kind.clone(),
                ins: vec![t, sc],
                out: sum.out,
            };
            // The product node goes away (its only reader was the sum).
            self.nodes[si] = outer;
            self.nodes.insert(si, inner);
            self.nodes.remove(pi);
        }
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
                if n.op == Op::Shape(ShapeOp::ListConstruct) && used[n.out] {
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
    pub(super) fn run(&self, inputs: &[&[f64]], draws: &mut Draws<'_>) -> Result<Vec<Val>> {
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
        if let Some(plan) = &self.plan {
            return Ok(plan.evaluate(self, inputs, None, &mut Draws::Traced)?.0);
        }
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
        if let Some(plan) = &self.plan {
            return plan.evaluate(self, inputs, Some(grad_of), &mut draws);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-input graph `sum(f(a))` written by hand, compiled with its rewrite passes, against
    /// the value and gradient worked out on paper.
    fn check(node: &str, consts: &str, value: f64, grad: [f64; 3], rewritten: bool) {
        let text = format!("I 0\n{consts}N {node} 1 3\nC 4 n\nN aten::sum 2 3 4 1 5\nO 5\n");
        let p = Program::compile(&text, &[vec![3]]).expect("compile");
        // Rewritten, the sum comes first and runs on the input itself.
        assert_eq!(
            matches!(p.nodes[0].op, Op::Reduce(ReduceOp::Sum { .. })),
            rewritten,
            "{node}: {:?}",
            p.nodes
        );
        let a = [1.0, 2.0, 4.0];
        let (v, g) = p.value_and_grad(&[&a]).expect("run");
        assert!((v - value).abs() < 1e-12, "{node}: {v} against {value}");
        assert_eq!(g[0], grad.to_vec(), "{node}");
    }

    /// The same op of the same values (equal constants included) runs once; random ops never
    /// merge.
    #[test]
    fn common_subexpressions_merge() {
        let text = "I 0\nC 1 f 2\nC 2 f 2\nN aten::mul 2 0 1 1 3\nN aten::mul 2 0 2 1 4\n\
                    N aten::exp 1 3 1 5\nN aten::exp 1 4 1 6\nC 9 n\nN aten::sum 2 5 9 1 7\n\
                    N aten::sum 2 6 9 1 8\nO 7\nO 8\n";
        let p = Program::compile(text, &[vec![3]]).expect("compile");
        // One mul, one exp, one sum.
        assert_eq!(p.nodes.len(), 3, "{:?}", p.nodes);
        let x = [0.1, -0.2, 0.3];
        let (v, g) = p.value_and_grad(&[&x]).expect("run");
        let e: Vec<f64> = x.iter().map(|t| (2.0 * t).exp()).collect();
        assert!((v - 2.0 * e.iter().sum::<f64>()).abs() < 1e-12);
        for (gi, ei) in g[0].iter().zip(&e) {
            assert!((gi - 4.0 * ei).abs() < 1e-12);
        }
        // Two draws of the same shape stay two draws.
        let text = "I 0\nC 1 l 1 3\nC 2 n\nN aten::randn 5 1 2 2 2 2 1 3\n\
                     N aten::randn 5 1 2 2 2 2 1 4\nC 8 i 1\nN aten::add 3 3 4 8 1 5\n\
                     N aten::mul 2 5 0 1 6\nC 9 n\nN aten::sum 2 6 9 1 7\nO 7\n\
                     R 3 1 3 0.1 0.2 0.3\nR 4 1 3 1 2 3\n";
        let p = Program::compile(text, &[vec![3]]).expect("compile");
        let randoms = p
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Random(_)))
            .count();
        assert_eq!(randoms, 2);
    }

    #[test]
    fn sums_move_past_scalar_shifts_and_factors() {
        // sum(2 + 3 a) = 6 + 3 Σa = 27 (the scalar first, alpha 3: not rewritten).
        check(
            "aten::add 3 1 0 2",
            "C 1 f 2\nC 2 i 3\n",
            27.0,
            [3.0; 3],
            false,
        );
        // sum(a - 2 * 0.5) = Σa - 3 = 4.
        check(
            "aten::sub 3 0 1 2",
            "C 1 f 0.5\nC 2 i 2\n",
            4.0,
            [1.0; 3],
            true,
        );
        // sum(-0.5 * a) = -3.5.
        check("aten::mul 2 1 0", "C 1 f -0.5\n", -3.5, [-0.5; 3], true);
        // sum(0.5 + a) = 8.5.
        check(
            "aten::add 3 1 0 2",
            "C 1 f 0.5\nC 2 i 1\n",
            8.5,
            [1.0; 3],
            true,
        );
    }
}
