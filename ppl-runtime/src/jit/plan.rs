//! A compiled program lowered onto planned buffers, so that a run allocates nothing and pays no
//! per-op set-up.
//!
//! Every tensor slot gets a fixed place in one arena of `f64` when the program is compiled, and
//! its gradient the same place in a second arena. Views and contiguous slices (`unsqueeze`,
//! `reshape`, `select` along the first dim, ...) get no place of their own: they share their
//! input's, and their gradients add up in place. Every other op becomes an [`Instr`] whose
//! offsets, sizes, broadcast patterns and index maps are resolved here:
//! - elementwise ops: one loop over the output, with the operands' broadcast index maps;
//! - reductions over a contiguous run of dims: one `(outer, n, inner)` loop (`logsumexp` keeps
//!   its softmax weights for the backward pass, which then needs no `exp`);
//! - every op that only moves values (`select`, `expand`, `permute`, `cat`, `index_select` with a
//!   constant index, ...): one gather with an index map. The map is found by running the op's own
//!   forward pass once on inputs whose values are their arena addresses, so each such op's
//!   semantics live in one place (`shape.rs`);
//! - a constant matrix times a vector: one blocked product ([`Instr::MatVec`]);
//! - anything else runs through the op family's own forward and backward pass on arrays
//!   ([`Instr::Generic`]), copying its operands out of the arena and its result in.
//!
//! Two passes then cut instructions: [`fuse`] folds a broadcast add into the `logsumexp` that
//! is its only reader ([`Instr::LseAdd`], the sum-product step of enumeration and of the forward
//! algorithm), and [`compose_gathers`] lets a binary op or a gather read through a gather's
//! index map instead of its copy. Common subexpressions were merged before lowering
//! (`Program::merge_common`).
//!
//! Buffers are not reused between slots: every value stays in place for the backward pass, and
//! the arena is reused between runs (one workspace per concurrent caller).

use std::collections::HashMap;
use std::sync::Mutex;

use super::array::{broadcast_index, broadcast_shapes, Arr};
use super::graph::*;
use super::kernels::{dot, transpose2};
use super::ops::{backward, eval};
use super::program::{Draws, Program};
use super::random::draw;
use crate::error::Result;

/// Element addresses while lowering: `buffer << SHIFT | element`, made absolute once every
/// buffer's size is known and constants are laid out first.
const SHIFT: u32 = 28;
const MASK: usize = (1 << SHIFT) - 1;

/// A function of one value, elementwise.
#[derive(Clone, Copy, Debug)]
enum MapFn {
    Unary(UnaryFn),
    Clamp(f64, f64),
}

impl MapFn {
    #[inline]
    fn value(self, x: f64) -> f64 {
        match self {
            MapFn::Unary(f) => f.value(x),
            MapFn::Clamp(lo, hi) => x.max(lo).min(hi),
        }
    }

    #[inline]
    fn derivative(self, x: f64, y: f64) -> f64 {
        match self {
            MapFn::Unary(f) => f.derivative(x, y),
            MapFn::Clamp(lo, hi) => f64::from(u8::from(x >= lo && x <= hi)),
        }
    }

    fn has_gradient(self) -> bool {
        !matches!(self, MapFn::Unary(f) if f.is_piecewise_constant())
    }
}

/// A binary elementwise op.
#[derive(Clone, Copy, Debug)]
enum BinOp {
    /// `ca a + cb b` (`add`, `sub`, `rsub` with their `alpha`).
    Lin(f64, f64),
    Mul,
    Div,
}

/// How an operand of a binary op maps onto the output.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// It has the output's shape.
    Same,
    /// It has one value.
    Scalar,
    /// Through its index map (broadcast along some dims).
    Idx,
}

impl Mode {
    #[inline(always)]
    fn at(self, idx: &[u32], i: usize) -> usize {
        match self {
            Mode::Same => i,
            Mode::Scalar => 0,
            Mode::Idx => idx[i] as usize,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RedOp {
    Sum,
    Mean,
    Lse,
    Max,
    Min,
}

/// The operands of a binary op: places, sizes, how each maps onto the output, and whether each
/// takes a gradient.
#[derive(Clone, Debug)]
struct Pair {
    a: usize,
    b: usize,
    na: usize,
    nb: usize,
    ma: Mode,
    mb: Mode,
    /// The index maps of `Idx` operands (empty otherwise).
    ia: Box<[u32]>,
    ib: Box<[u32]>,
    wa: bool,
    wb: bool,
}

/// An operand of a [`Pair`], mutably: place, size, mode, index map.
type OperandMut<'a> = (
    &'a mut usize,
    &'a mut usize,
    &'a mut Mode,
    &'a mut Box<[u32]>,
);

impl Pair {
    /// `out = op(a, b)`; `lo` is the arena below `out`.
    fn forward(&self, op: BinOp, lo: &[f64], out: &mut [f64]) {
        let (va, vb) = (&lo[self.a..self.a + self.na], &lo[self.b..self.b + self.nb]);
        let (a, b) = ((self.ma, &self.ia[..], va), (self.mb, &self.ib[..], vb));
        match op {
            BinOp::Lin(ca, cb) => bin_forward(out, a, b, |p, q| ca * p + cb * q),
            BinOp::Mul => bin_forward(out, a, b, |p, q| p * q),
            // By a one-value divisor: one reciprocal, then products.
            BinOp::Div if self.mb == Mode::Scalar => {
                let r = [1.0 / vb[0]];
                bin_forward(out, a, (Mode::Scalar, &[], &r), |p, q| p * q)
            }
            BinOp::Div => bin_forward(out, a, b, |p, q| p / q),
        }
    }

    /// Adds the operands' gradients given the output's, `gy`; `glo` is the gradient arena
    /// below the output.
    fn backward(&self, op: BinOp, v: &[f64], glo: &mut [f64], gy: &[f64]) {
        let (va, vb) = (&v[self.a..self.a + self.na], &v[self.b..self.b + self.nb]);
        let (ma, mb, ia, ib) = (self.ma, self.mb, &self.ia[..], &self.ib[..]);
        let n = gy.len();
        // One operand at a time: `x * x` has both in one place. The common shapes (a one-value
        // operand against a full one) are dot products and scalings.
        if self.wa {
            let ga = &mut glo[self.a..self.a + self.na];
            match (op, ma, mb) {
                (BinOp::Lin(ca, _), Mode::Scalar, _) => ga[0] += ca * sum4(gy),
                (BinOp::Lin(ca, _), _, _) => send(ma, ia, ga, n, |i| ca * gy[i]),
                (BinOp::Mul, Mode::Scalar, Mode::Same) => ga[0] += dot(gy, vb),
                (BinOp::Mul, _, Mode::Scalar) => {
                    let q = vb[0];
                    send(ma, ia, ga, n, |i| gy[i] * q);
                }
                (BinOp::Mul, _, _) => send(ma, ia, ga, n, |i| gy[i] * vb[mb.at(ib, i)]),
                (BinOp::Div, _, Mode::Scalar) => {
                    let r = 1.0 / vb[0];
                    send(ma, ia, ga, n, |i| gy[i] * r);
                }
                (BinOp::Div, _, _) => send(ma, ia, ga, n, |i| gy[i] / vb[mb.at(ib, i)]),
            }
        }
        if self.wb {
            let gb = &mut glo[self.b..self.b + self.nb];
            match (op, ma, mb) {
                (BinOp::Lin(_, cb), _, Mode::Scalar) => gb[0] += cb * sum4(gy),
                (BinOp::Lin(_, cb), _, _) => send(mb, ib, gb, n, |i| cb * gy[i]),
                (BinOp::Mul, Mode::Same, Mode::Scalar) => gb[0] += dot(gy, va),
                (BinOp::Mul, Mode::Scalar, _) => {
                    let p = va[0];
                    send(mb, ib, gb, n, |i| gy[i] * p);
                }
                (BinOp::Mul, _, _) => send(mb, ib, gb, n, |i| gy[i] * va[ma.at(ia, i)]),
                (BinOp::Div, Mode::Same, Mode::Scalar) => {
                    let q = vb[0];
                    gb[0] -= dot(gy, va) / (q * q);
                }
                (BinOp::Div, _, _) => send(mb, ib, gb, n, |i| {
                    let q = vb[mb.at(ib, i)];
                    -gy[i] * va[ma.at(ia, i)] / (q * q)
                }),
            }
        }
    }

    /// Each operand's place, size, mode and index map, to rewrite.
    fn operands(&mut self) -> [OperandMut<'_>; 2] {
        [
            (&mut self.a, &mut self.na, &mut self.ma, &mut self.ia),
            (&mut self.b, &mut self.nb, &mut self.mb, &mut self.ib),
        ]
    }

    /// Whether both operands lie below `y`.
    fn below(&self, y: usize) -> bool {
        self.a + self.na <= y && self.b + self.nb <= y
    }
}

/// One step of a planned program. Offsets are absolute in the arena.
#[derive(Clone, Debug)]
enum Instr {
    Map {
        f: MapFn,
        x: usize,
        y: usize,
        n: usize,
    },
    Bin {
        op: BinOp,
        p: Pair,
        y: usize,
        n: usize,
    },
    /// `y[o, i] = red_j x[o, j, i]`; `aux` holds `logsumexp`'s weights `exp(x - y)`.
    Reduce {
        op: RedOp,
        x: usize,
        y: usize,
        aux: usize,
        outer: usize,
        n: usize,
        inner: usize,
    },
    /// `logsumexp` over the middle dim of `ca a + cb b` (a broadcast add fused into the
    /// reduction that is its one reader): the sum is formed in `aux`, which then holds the
    /// weights; the backward pass forms `x`'s gradient in the gradient arena at `aux`.
    LseAdd {
        ca: f64,
        cb: f64,
        p: Pair,
        aux: usize,
        y: usize,
        outer: usize,
        n: usize,
        inner: usize,
    },
    /// `y = X w` for a constant `n x k` matrix `X`, held as `Xᵀ` at `xt` (`k` contiguous
    /// columns), and
    /// a vector `w`: blocks of rows, each the `k` scaled columns added up in cache; `w`'s
    /// gradient is `k` dot products.
    MatVec {
        xt: usize,
        w: usize,
        y: usize,
        n: usize,
        k: usize,
    },
    /// `y[i] = arena[s]` for all `i` (an expanded one-value tensor).
    Fill { y: usize, n: usize, s: usize },
    /// `y[i] = arena[idx[i]]`; the gradient scatters back unless `grad` is false (`detach`).
    Gather {
        y: usize,
        idx: Box<[usize]>,
        grad: bool,
    },
    /// The node run by its family's own passes on arrays; `reads` are the tensor slots it reads.
    Generic { node: usize, reads: Box<[usize]> },
}

/// What one run needs besides the plan: the arenas and the array side of generic nodes.
struct Workspace {
    vals: Vec<f64>,
    grads: Vec<f64>,
    run: Vec<Val>,
    scratch: Vec<Option<Arr>>,
}

/// A program on planned buffers (see the module docs).
pub(super) struct Plan {
    instrs: Vec<Instr>,
    /// The arena as a run starts: constants in place, the rest zero.
    template: Vec<f64>,
    /// Where the per-run part of the arena starts (constants come before it).
    live_from: usize,
    /// Each slot's place (absolute), for tensor slots that have one.
    at: Vec<usize>,
    shapes: Vec<Option<Vec<usize>>>,
    inputs: Vec<(usize, usize)>,
    outputs: Vec<usize>,
    /// Live list slots and their items (the array side of generic nodes reads them).
    lists: Vec<(usize, Vec<usize>)>,
    has_generic: bool,
    pool: Mutex<Vec<Workspace>>,
}

impl Clone for Plan {
    fn clone(&self) -> Plan {
        Plan {
            instrs: self.instrs.clone(),
            template: self.template.clone(),
            live_from: self.live_from,
            at: self.at.clone(),
            shapes: self.shapes.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            lists: self.lists.clone(),
            has_generic: self.has_generic,
            pool: Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan {{ {} instructions ({} generic), arena {} }}",
            self.instrs.len(),
            self.generic_count(),
            self.template.len()
        )
    }
}

/// The lowering of one program.
struct Lower<'a> {
    p: &'a Program,
    /// Values of the plan-time run (tensors give shapes; lists give items).
    run: Vec<Val>,
    /// `p.live`, with the slots being tagged set.
    live_t: Vec<bool>,
    /// Each tensor slot's address (virtual: buffer and element).
    loc: Vec<Option<usize>>,
    /// Buffer sizes, and the values of constant buffers.
    bufs: Vec<(usize, Option<Vec<f64>>)>,
    instrs: Vec<Instr>,
    no_columns: HashMap<usize, Arr>,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Lower<'_> {
    /// The addresses that generic nodes read.
    fn generic_reads(&self) -> Vec<usize> {
        self.instrs
            .iter()
            .filter_map(|i| match i {
                Instr::Generic { reads, .. } => Some(reads.iter().filter_map(|&s| self.loc[s])),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn buffer(&mut self, len: usize, data: Option<Vec<f64>>) -> Option<usize> {
        if len > MASK {
            return None;
        }
        self.bufs.push((len, data));
        Some((self.bufs.len() - 1) << SHIFT)
    }

    fn shape(&self, slot: usize) -> Option<Vec<usize>> {
        match self.p.env_value(slot, &self.run) {
            Val::T(a) => Some(a.shape.clone()),
            Val::Float(_) | Val::Int(_) | Val::Bool(_) => Some(Vec::new()),
            _ => None,
        }
    }

    /// A tensor or number operand: its address (constants get a buffer) and shape.
    fn operand(&mut self, slot: usize) -> Option<(usize, Vec<usize>)> {
        if let Some(a) = self.loc[slot] {
            return Some((a, self.shape(slot)?));
        }
        if self.p.live[slot] {
            return None;
        }
        let (data, shape) = match &self.p.init[slot] {
            Val::T(a) => (a.data.clone(), a.shape.clone()),
            v @ (Val::Float(_) | Val::Int(_) | Val::Bool(_)) => (vec![float(v).ok()?], Vec::new()),
            _ => return None,
        };
        let a = self.buffer(data.len(), Some(data))?;
        self.loc[slot] = Some(a);
        Some((a, shape))
    }

    /// A fresh buffer for `slot`'s value, of its plan-time shape.
    fn output(&mut self, slot: usize) -> Option<(usize, usize)> {
        let n = numel(&self.shape(slot)?);
        let a = self.buffer(n, None)?;
        self.loc[slot] = Some(a);
        Some((a, n))
    }

    fn lower(&mut self, k: usize) -> Option<()> {
        let node = &self.p.nodes[k];
        let lowered = match node.op {
            Op::Elementwise(op) => self.elementwise(op, node),
            Op::Reduce(op) => self.reduce(op, node),
            Op::Shape(ShapeOp::ListConstruct) => match &self.run[node.out] {
                Val::List(_) => Some(()),
                _ => None,
            },
            Op::Shape(op) => self.gather(op, node),
            Op::Linalg(LinalgOp::Matmul) => self.matvec(node),
            _ => None,
        };
        if lowered.is_some() {
            return Some(());
        }
        // Generic: its reads must have places, its output gets one.
        let mut reads = Vec::new();
        for &s in &node.ins {
            if !self.p.live[s] {
                continue;
            }
            match &self.run[s] {
                Val::T(_) => reads.push(s),
                Val::List(items) => reads.extend(items.iter().copied().filter(|&i| self.p.live[i])),
                _ => return None,
            }
        }
        if reads.iter().any(|&s| self.loc[s].is_none()) {
            return None;
        }
        if !matches!(self.run[node.out], Val::T(_)) {
            return None;
        }
        self.output(node.out)?;
        self.instrs.push(Instr::Generic {
            node: k,
            reads: reads.into(),
        });
        Some(())
    }

    /// `matmul` of a constant matrix and a vector (a regression's mean).
    fn matvec(&mut self, node: &Node) -> Option<()> {
        let (&xs, &ws) = (node.ins.first()?, node.ins.get(1)?);
        let Val::T(x) = &self.p.init[xs] else {
            return None;
        };
        let (n, k) = match x.shape[..] {
            [n, k] if !self.p.live[xs] => (n, k),
            _ => return None,
        };
        let w = self.loc[ws]?;
        if self.shape(ws)? != [k] || self.shape(node.out)? != [n] {
            return None;
        }
        let xt = transpose2(x);
        let xt = self.buffer(n * k, Some(xt.data))?;
        let (y, _) = self.output(node.out)?;
        self.instrs.push(Instr::MatVec { xt, w, y, n, k });
        Some(())
    }

    fn elementwise(&mut self, op: EwOp, node: &Node) -> Option<()> {
        let bin = match op {
            EwOp::Add { alpha } => BinOp::Lin(1.0, alpha),
            EwOp::Sub { alpha } => BinOp::Lin(1.0, -alpha),
            EwOp::Rsub { alpha } => BinOp::Lin(-alpha, 1.0),
            EwOp::Mul => BinOp::Mul,
            EwOp::Div if node.ins.len() <= 2 || matches!(self.p.init[node.ins[2]], Val::None) => {
                BinOp::Div
            }
            EwOp::Unary(f) => return self.map(MapFn::Unary(f), node),
            EwOp::Clamp { lo, hi } => return self.map(MapFn::Clamp(lo, hi), node),
            _ => return None,
        };
        if node.ins.len() < 2 {
            return None;
        }
        let (a, sa) = self.operand(node.ins[0])?;
        let (b, sb) = self.operand(node.ins[1])?;
        let so = broadcast_shapes(&sa, &sb)?;
        if Some(&so) != self.shape(node.out).as_ref() {
            return None;
        }
        let n = numel(&so);
        let mode = |s: &[usize]| -> (Mode, Box<[u32]>) {
            if s == so.as_slice() {
                (Mode::Same, Box::new([]))
            } else if numel(s) == 1 {
                (Mode::Scalar, Box::new([]))
            } else {
                let idx = broadcast_index(s, &so);
                (Mode::Idx, idx.into_iter().map(|i| i as u32).collect())
            }
        };
        let ((ma, ia), (mb, ib)) = (mode(&sa), mode(&sb));
        let (wa, wb) = (self.p.live[node.ins[0]], self.p.live[node.ins[1]]);
        let (y, _) = self.output(node.out)?;
        self.instrs.push(Instr::Bin {
            op: bin,
            p: Pair {
                a,
                b,
                na: numel(&sa),
                nb: numel(&sb),
                ma,
                mb,
                ia,
                ib,
                wa,
                wb,
            },
            y,
            n,
        });
        Some(())
    }

    fn map(&mut self, f: MapFn, node: &Node) -> Option<()> {
        let x = self.loc[*node.ins.first()?]?;
        let sx = self.shape(node.ins[0])?;
        if Some(&sx) != self.shape(node.out).as_ref() {
            return None;
        }
        let (y, n) = self.output(node.out)?;
        self.instrs.push(Instr::Map { f, x, y, n });
        Some(())
    }

    fn reduce(&mut self, op: ReduceOp, node: &Node) -> Option<()> {
        let (red, dims) = match op {
            ReduceOp::Sum { dims, .. } => (RedOp::Sum, dims),
            ReduceOp::Mean { dims, .. } => (RedOp::Mean, dims),
            ReduceOp::Logsumexp { dims, .. } => (RedOp::Lse, dims),
            ReduceOp::Extremum { max, dims, .. } => {
                (if max { RedOp::Max } else { RedOp::Min }, dims)
            }
            _ => return None,
        };
        let x = self.loc[*node.ins.first()?]?;
        let sx = self.shape(node.ins[0])?;
        let dims = reduced_dims(dims, sx.len()).ok()?;
        // A contiguous run of dims (size-1 dims inside it do not matter).
        let (outer, n, inner) = match (dims.iter().min(), dims.iter().max()) {
            (Some(&d0), Some(&d1)) => {
                if (d0..=d1).any(|d| !dims.contains(&d) && sx[d] != 1) {
                    return None;
                }
                (numel(&sx[..d0]), numel(&sx[d0..=d1]), numel(&sx[d1 + 1..]))
            }
            // Over no dims (a 0-d input).
            _ => (1, numel(&sx), 1),
        };
        // The weights' buffer comes before the output's (see `Instr::reads_below_output`).
        let aux = if red == RedOp::Lse {
            self.buffer(numel(&sx), None)?
        } else {
            0
        };
        let (y, ny) = self.output(node.out)?;
        if ny != outer * inner {
            return None;
        }
        self.instrs.push(Instr::Reduce {
            op: red,
            x,
            y,
            aux,
            outer,
            n,
            inner,
        });
        Some(())
    }

    /// Ops that only move values: one gather, or an alias when the values are a contiguous run.
    fn gather(&mut self, op: ShapeOp, node: &Node) -> Option<()> {
        let data: Vec<usize> = match op {
            ShapeOp::Select { .. }
            | ShapeOp::Slice { .. }
            | ShapeOp::Expand
            | ShapeOp::Transpose { .. }
            | ShapeOp::Permute { .. }
            | ShapeOp::Reshape
            | ShapeOp::Unsqueeze
            | ShapeOp::Squeeze
            | ShapeOp::Identity
            | ShapeOp::Detach
            | ShapeOp::Diagonal { .. }
            | ShapeOp::IndexSelect { .. }
            | ShapeOp::Gather { .. } => vec![*node.ins.first()?],
            ShapeOp::BroadcastAll(_) => node.ins.clone(),
            ShapeOp::Cat { .. } | ShapeOp::Stack { .. } => {
                match self.p.env_value(*node.ins.first()?, &self.run) {
                    Val::List(items) => items.clone(),
                    _ => return None,
                }
            }
            _ => return None,
        };
        // Every other argument is a constant.
        let list = matches!(op, ShapeOp::Cat { .. } | ShapeOp::Stack { .. });
        let others = if list { &node.ins[1..] } else { &node.ins[..] };
        if others.iter().any(|s| self.p.live[*s] && !data.contains(s)) {
            return None;
        }
        // Run the op on values that are their own addresses.
        let mut saved = Vec::with_capacity(data.len());
        for &d in &data {
            let (a, shape) = self.operand(d)?;
            let tags = Arr {
                data: (0..numel(&shape)).map(|j| (a + j) as f64).collect(),
                shape,
            };
            saved.push((
                d,
                std::mem::replace(&mut self.run[d], Val::T(tags)),
                self.live_t[d],
            ));
            self.live_t[d] = true;
        }
        let env = Env {
            init: &self.p.init,
            run: &self.run,
            live: &self.live_t,
            columns: &self.no_columns,
        };
        let out = eval(node, &env);
        for (d, v, l) in saved.into_iter().rev() {
            self.run[d] = v;
            self.live_t[d] = l;
        }
        let Ok(Val::T(out)) = out else {
            return None;
        };
        if Some(&out.shape) != self.shape(node.out).as_ref() {
            return None;
        }
        let idx: Vec<usize> = out.data.iter().map(|&t| t as usize).collect();
        let grad = op != ShapeOp::Detach;
        let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
        match idx.first() {
            Some(&first) if contiguous && grad => {
                self.loc[node.out] = Some(first);
            }
            Some(&first) if grad && idx.iter().all(|&i| i == first) => {
                let (y, n) = self.output(node.out)?;
                self.instrs.push(Instr::Fill { y, n, s: first });
            }
            _ => {
                let (y, _) = self.output(node.out)?;
                self.instrs.push(Instr::Gather {
                    y,
                    idx: idx.into(),
                    grad,
                });
            }
        }
        Some(())
    }
}

impl Plan {
    /// Lowers `p` given the values of one run of it (`run`, from the array interpreter), or
    /// `None` where some live value is not a tensor (the interpreter then runs it).
    pub(super) fn build(p: &Program, run: Vec<Val>) -> Option<Plan> {
        let nslots = p.init.len();
        let mut lower = Lower {
            p,
            live_t: p.live.clone(),
            run,
            loc: vec![None; nslots],
            bufs: Vec::new(),
            instrs: Vec::new(),
            no_columns: HashMap::new(),
        };
        let mut inputs = Vec::new();
        for (&s, shape) in p.inputs.iter().zip(&p.input_shapes) {
            let a = lower.buffer(numel(shape), None)?;
            if lower.loc[s].is_some() {
                return None;
            }
            lower.loc[s] = Some(a);
            inputs.push((a, numel(shape)));
        }
        for k in 0..p.nodes.len() {
            lower.lower(k)?;
        }
        let mut outputs = Vec::new();
        for &o in &p.outputs {
            let (a, shape) = lower.operand(o)?;
            if numel(&shape) != 1 {
                return None;
            }
            outputs.push(a);
        }
        let generic_reads = lower.generic_reads();
        fuse(&mut lower.instrs, &generic_reads, &outputs);
        // Lay out: constants first, then the per-run buffers.
        let mut base = vec![0; lower.bufs.len()];
        let mut template = Vec::new();
        for (i, (_, data)) in lower.bufs.iter().enumerate() {
            if let Some(d) = data {
                base[i] = template.len();
                template.extend_from_slice(d);
            }
        }
        let live_from = template.len();
        for (i, (len, data)) in lower.bufs.iter().enumerate() {
            if data.is_none() {
                base[i] = template.len();
                template.resize(template.len() + len, 0.0);
            }
        }
        if template.len() > u32::MAX as usize {
            return None;
        }
        let abs = |va: usize| base[va >> SHIFT] + (va & MASK);
        let mut instrs = std::mem::take(&mut lower.instrs);
        for ins in &mut instrs {
            match ins {
                Instr::Map { x, y, .. } => {
                    *x = abs(*x);
                    *y = abs(*y);
                }
                Instr::Bin { p, y, .. } => {
                    (p.a, p.b) = (abs(p.a), abs(p.b));
                    *y = abs(*y);
                }
                Instr::Reduce { op, x, y, aux, .. } => {
                    *x = abs(*x);
                    *y = abs(*y);
                    if *op == RedOp::Lse {
                        *aux = abs(*aux);
                    }
                }
                Instr::Fill { y, s, .. } => {
                    *y = abs(*y);
                    *s = abs(*s);
                }
                Instr::MatVec { xt, w, y, .. } => {
                    *xt = abs(*xt);
                    *w = abs(*w);
                    *y = abs(*y);
                }
                Instr::LseAdd { p, aux, y, .. } => {
                    (p.a, p.b) = (abs(p.a), abs(p.b));
                    *aux = abs(*aux);
                    *y = abs(*y);
                }
                Instr::Gather { y, idx, .. } => {
                    *y = abs(*y);
                    idx.iter_mut().for_each(|i| *i = abs(*i));
                }
                Instr::Generic { .. } => {}
            }
            // Every instruction reads only below its output (inputs, constants and earlier
            // values come first), which lets the kernels split the arena there.
            if !ins.reads_below_output() {
                return None;
            }
        }
        let at: Vec<usize> = lower
            .loc
            .iter()
            .map(|l| l.map_or(usize::MAX, abs))
            .collect();
        let pinned: Vec<usize> = generic_reads
            .iter()
            .chain(&outputs)
            .map(|&va| abs(va))
            .collect();
        compose_gathers(&mut instrs, &pinned);
        let shapes = (0..nslots).map(|s| lower.shape(s)).collect();
        let lists = (0..nslots)
            .filter(|&s| p.live[s])
            .filter_map(|s| match &lower.run[s] {
                Val::List(items) => Some((s, items.clone())),
                _ => None,
            })
            .collect();
        let has_generic = instrs.iter().any(|i| matches!(i, Instr::Generic { .. }));
        Some(Plan {
            instrs,
            template,
            live_from,
            at,
            shapes,
            inputs: inputs.into_iter().map(|(a, n)| (abs(a), n)).collect(),
            outputs: outputs.into_iter().map(abs).collect(),
            lists,
            has_generic,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// How many nodes run on arrays rather than on the arena.
    pub(super) fn generic_count(&self) -> usize {
        self.instrs
            .iter()
            .filter(|i| matches!(i, Instr::Generic { .. }))
            .count()
    }

    /// The number of instructions.
    pub(super) fn len(&self) -> usize {
        self.instrs.len()
    }

    fn workspace(&self) -> Workspace {
        let nslots = if self.has_generic { self.at.len() } else { 0 };
        let mut run = vec![Val::Empty; nslots];
        if self.has_generic {
            for (s, items) in &self.lists {
                run[*s] = Val::List(items.clone());
            }
        }
        Workspace {
            vals: self.template.clone(),
            grads: vec![0.0; self.template.len()],
            run,
            scratch: vec![None; nslots],
        }
    }

    /// The outputs at `inputs`, and when `grad_of` is given the gradient of the sum of those
    /// outputs with respect to each input.
    pub(super) fn evaluate(
        &self,
        p: &Program,
        inputs: &[&[f64]],
        grad_of: Option<&[usize]>,
        draws: &mut Draws<'_>,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        if inputs.len() != self.inputs.len() {
            return Err(bad("wrong number of inputs"));
        }
        let mut ws = self
            .pool
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| self.workspace());
        let result = self.run(p, &mut ws, inputs, grad_of, draws);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(ws);
        }
        result
    }

    fn run(
        &self,
        p: &Program,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        grad_of: Option<&[usize]>,
        draws: &mut Draws<'_>,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        for (&(a, n), x) in self.inputs.iter().zip(inputs) {
            if x.len() != n {
                return Err(bad(format!("an input of {} values for {n}", x.len())));
            }
            ws.vals[a..a + n].copy_from_slice(x);
        }
        for ins in &self.instrs {
            self.forward(p, ws, ins, draws)?;
        }
        let outs: Vec<f64> = self.outputs.iter().map(|&o| ws.vals[o]).collect();
        let Some(grad_of) = grad_of else {
            return Ok((outs, Vec::new()));
        };
        ws.grads[self.live_from..].fill(0.0);
        for &k in grad_of {
            let o = *p
                .outputs
                .get(k)
                .ok_or_else(|| bad(format!("no output {k}")))?;
            if p.live[o] {
                ws.grads[self.outputs[k]] += 1.0;
            }
        }
        for ins in self.instrs.iter().rev() {
            self.backward(p, ws, ins)?;
        }
        let grads = self
            .inputs
            .iter()
            .map(|&(a, n)| ws.grads[a..a + n].to_vec())
            .collect();
        Ok((outs, grads))
    }

    fn forward(
        &self,
        p: &Program,
        ws: &mut Workspace,
        ins: &Instr,
        draws: &mut Draws<'_>,
    ) -> Result<()> {
        let v = &mut ws.vals;
        match ins {
            &Instr::Map { f, x, y, n } => {
                let (lo, out) = split(v, y, n);
                map_forward(f, &lo[x..x + n], out);
            }
            Instr::Bin { op, p, y, n } => {
                let (lo, out) = split(v, *y, *n);
                p.forward(*op, lo, out);
            }
            &Instr::Reduce {
                op,
                x,
                y,
                aux,
                outer,
                n,
                inner,
            } => {
                let nx = outer * n * inner;
                let (lo, out) = split(v, y, outer * inner);
                if op == RedOp::Lse {
                    let (lo, w) = lo.split_at_mut(aux);
                    let w = &mut w[..nx];
                    w.copy_from_slice(&lo[x..x + nx]);
                    lse_forward(w, out, outer, n, inner);
                } else {
                    reduce_forward(op, &lo[x..x + nx], out, outer, n, inner);
                }
            }
            Instr::LseAdd {
                ca,
                cb,
                p,
                aux,
                y,
                outer,
                n,
                inner,
            } => {
                let (lo, out) = split(v, *y, outer * inner);
                let (lo, w) = lo.split_at_mut(*aux);
                let w = &mut w[..outer * n * inner];
                p.forward(BinOp::Lin(*ca, *cb), lo, w);
                lse_forward(w, out, *outer, *n, *inner);
            }
            &Instr::MatVec { xt, w, y, n, k } => {
                let (lo, out) = split(v, y, n);
                let (xt, w) = (&lo[xt..xt + n * k], &lo[w..w + k]);
                // Blocks of rows stay in cache while the k columns are added in.
                const BLOCK: usize = 512;
                for (b, ob) in out.chunks_mut(BLOCK).enumerate() {
                    ob.fill(0.0);
                    let start = b * BLOCK;
                    for (j, &wj) in w.iter().enumerate() {
                        let col = &xt[j * n + start..j * n + start + ob.len()];
                        ob.iter_mut().zip(col).for_each(|(o, &x)| *o += wj * x);
                    }
                }
            }
            &Instr::Fill { y, n, s } => {
                let (lo, out) = split(v, y, n);
                out.fill(lo[s]);
            }
            Instr::Gather { y, idx, .. } => {
                let (lo, out) = split(v, *y, idx.len());
                for (o, &s) in out.iter_mut().zip(idx.iter()) {
                    *o = lo[s];
                }
            }
            Instr::Generic { node, reads } => {
                let node = &p.nodes[*node];
                for &s in reads.iter() {
                    let shape = self.shapes[s].as_deref().unwrap_or(&[]);
                    let (a, n) = (self.at[s], numel(shape));
                    match &mut ws.run[s] {
                        Val::T(arr) if arr.data.len() == n => {
                            arr.data.copy_from_slice(&v[a..a + n]);
                        }
                        slot => {
                            *slot = Val::T(Arr {
                                shape: shape.to_vec(),
                                data: v[a..a + n].to_vec(),
                            });
                        }
                    }
                }
                let env = Env {
                    init: &p.init,
                    run: &ws.run,
                    live: &p.live,
                    columns: &p.columns,
                };
                let out = match (node.op, &mut *draws) {
                    (Op::Random(r), Draws::Fresh(rng)) => draw(r, node, &env, rng),
                    (Op::Random(_), Draws::Traced) => p
                        .traced_draws
                        .get(&node.out)
                        .cloned()
                        .map(Val::T)
                        .ok_or_else(|| bad(format!("no traced draw of `{}` to replay", node.kind))),
                    _ => eval(node, &env),
                }
                .map_err(|e| bad(format!("`{}`: {e}", node.kind)))?;
                let Val::T(arr) = &out else {
                    return Err(bad(format!("`{}` gave no tensor", node.kind)));
                };
                let a = self.at[node.out];
                if Some(&arr.shape) != self.shapes[node.out].as_ref() {
                    return Err(bad(format!(
                        "`{}` gave shape {:?}, planned {:?}",
                        node.kind, arr.shape, self.shapes[node.out]
                    )));
                }
                v[a..a + arr.data.len()].copy_from_slice(&arr.data);
                ws.run[node.out] = out;
            }
        }
        Ok(())
    }

    fn backward(&self, p: &Program, ws: &mut Workspace, ins: &Instr) -> Result<()> {
        let (v, g) = (&ws.vals, &mut ws.grads);
        match ins {
            &Instr::Map { f, x, y, n } => {
                if f.has_gradient() {
                    let (glo, gy) = split(g, y, n);
                    map_backward(f, &v[x..x + n], &v[y..y + n], gy, &mut glo[x..x + n]);
                }
            }
            Instr::Bin { op, p, y, n } => {
                let (glo, gy) = split(g, *y, *n);
                p.backward(*op, v, glo, gy);
            }
            &Instr::Reduce {
                op,
                x,
                y,
                aux,
                outer,
                n,
                inner,
            } => {
                let nx = outer * n * inner;
                let ny = outer * inner;
                let (glo, gy) = split(g, y, ny);
                let gx = &mut glo[x..x + nx];
                let xs = &v[x..x + nx];
                let ys = &v[y..y + ny];
                let w = if op == RedOp::Lse {
                    &v[aux..aux + nx]
                } else {
                    &[][..]
                };
                reduce_backward(op, xs, ys, w, gy, gx, outer, n, inner);
            }
            Instr::LseAdd {
                ca,
                cb,
                p,
                aux,
                y,
                outer,
                n,
                inner,
            } => {
                let nx = outer * n * inner;
                let (glo, gy) = split(g, *y, outer * inner);
                let (glo, gx) = glo.split_at_mut(*aux);
                let gx = &mut gx[..nx];
                let w = &v[*aux..*aux + nx];
                reduce_backward(RedOp::Lse, &[], &[], w, gy, gx, *outer, *n, *inner);
                p.backward(BinOp::Lin(*ca, *cb), v, glo, gx);
            }
            &Instr::MatVec { xt, w, y, n, k } => {
                let (glo, gy) = split(g, y, n);
                let cols = v[xt..xt + n * k].chunks_exact(n.max(1));
                for (gw, col) in glo[w..w + k].iter_mut().zip(cols) {
                    *gw += dot(col, gy);
                }
            }
            &Instr::Fill { y, n, s } => {
                let (glo, gy) = split(g, y, n);
                glo[s] += gy.iter().sum::<f64>();
            }
            Instr::Gather { y, idx, grad } => {
                if *grad {
                    let (glo, gy) = split(g, *y, idx.len());
                    for (&d, &s) in gy.iter().zip(idx.iter()) {
                        glo[s] += d;
                    }
                }
            }
            Instr::Generic { node, reads } => {
                let node = &p.nodes[*node];
                let shape = self.shapes[node.out].clone().unwrap_or_default();
                let a = self.at[node.out];
                let n = numel(&shape);
                if g[a..a + n].iter().all(|&x| x == 0.0) {
                    return Ok(());
                }
                let gy = Arr {
                    shape,
                    data: g[a..a + n].to_vec(),
                };
                let env = Env {
                    init: &p.init,
                    run: &ws.run,
                    live: &p.live,
                    columns: &p.columns,
                };
                backward(node, &env, gy, &mut ws.scratch)
                    .map_err(|e| bad(format!("gradient of `{}`: {e}", node.kind)))?;
                for &s in reads.iter() {
                    if let Some(gs) = ws.scratch[s].take() {
                        let a = self.at[s];
                        for (t, d) in g[a..a + gs.data.len()].iter_mut().zip(&gs.data) {
                            *t += d;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Instr {
    /// Calls `f` with the start of each operand the instruction reads from the arena (each
    /// entry of a gather; nothing for a generic node, whose reads are its `reads`).
    fn for_each_read(&self, mut f: impl FnMut(usize)) {
        match self {
            Instr::Map { x, .. } | Instr::Reduce { x, .. } => f(*x),
            Instr::Bin { p, .. } | Instr::LseAdd { p, .. } => {
                f(p.a);
                f(p.b);
            }
            Instr::Fill { s, .. } => f(*s),
            Instr::MatVec { w, .. } => f(*w),
            Instr::Gather { idx, .. } => idx.iter().for_each(|&i| f(i)),
            Instr::Generic { .. } => {}
        }
    }

    /// Whether everything the instruction reads (and its weights) lies below its output.
    fn reads_below_output(&self) -> bool {
        match self {
            Instr::Map { x, y, n, .. } => x + n <= *y,
            Instr::Bin { p, y, .. } => p.below(*y),
            Instr::Reduce {
                op,
                x,
                y,
                aux,
                outer,
                n,
                inner,
            } => {
                let nx = outer * n * inner;
                if *op == RedOp::Lse {
                    x + nx <= *aux && aux + nx <= *y
                } else {
                    x + nx <= *y
                }
            }
            Instr::LseAdd {
                p,
                aux,
                y,
                outer,
                n,
                inner,
                ..
            } => p.below(*aux) && aux + outer * n * inner <= *y,
            Instr::MatVec { xt, w, y, n, k } => xt + n * k <= *y && w + k <= *y,
            Instr::Fill { y, s, .. } => s < y,
            Instr::Gather { y, idx, .. } => idx.iter().all(|s| s < y),
            Instr::Generic { .. } => true,
        }
    }
}

/// Fuses a broadcast add or subtraction into the `logsumexp` that follows it when that is its
/// only reader (the sum-product contractions of enumeration and the forward algorithm).
/// Addresses are still virtual: a buffer is `address >> SHIFT`.
fn fuse(instrs: &mut Vec<Instr>, generic_reads: &[usize], outputs: &[usize]) {
    let mut readers = HashMap::<usize, usize>::new();
    let mut count = |va: usize| *readers.entry(va >> SHIFT).or_insert(0) += 1;
    for ins in instrs.iter() {
        // A gather's entries count once per buffer.
        let mut bufs = Vec::new();
        ins.for_each_read(|va| bufs.push(va >> SHIFT));
        if matches!(ins, Instr::Gather { .. }) {
            bufs.sort_unstable();
            bufs.dedup();
        }
        bufs.into_iter().for_each(|b| count(b << SHIFT));
    }
    generic_reads
        .iter()
        .chain(outputs)
        .for_each(|&va| count(va));
    let old = std::mem::take(instrs);
    let mut it = old.into_iter().peekable();
    while let Some(ins) = it.next() {
        let fusable = match (&ins, it.peek()) {
            (
                Instr::Bin {
                    op: BinOp::Lin(..),
                    y: by,
                    n: bn,
                    ..
                },
                Some(&Instr::Reduce {
                    op: RedOp::Lse,
                    x,
                    outer,
                    n,
                    inner,
                    ..
                }),
            ) => x == *by && *bn == outer * n * inner && readers.get(&(x >> SHIFT)) == Some(&1),
            _ => false,
        };
        let next = if fusable { it.next() } else { None };
        match (ins, next) {
            (
                Instr::Bin {
                    op: BinOp::Lin(ca, cb),
                    p,
                    ..
                },
                Some(Instr::Reduce {
                    aux,
                    y,
                    outer,
                    n,
                    inner,
                    ..
                }),
            ) => instrs.push(Instr::LseAdd {
                ca,
                cb,
                p,
                aux,
                y,
                outer,
                n,
                inner,
            }),
            (ins, next) => {
                instrs.push(ins);
                instrs.extend(next);
            }
        }
    }
}

/// Gathers whose one reader is a binary op (or a fused `logsumexp` of a sum) reading all of
/// it, or another gather, are not materialized: the reader reads through the gather's index map
/// (a binary op's operand then indexes the whole arena below its output), and the gradient
/// scatters straight back to the sources. `select`, `expand` and `vindex` feeding arithmetic
/// cost no copy. Addresses are absolute; `pinned` are read by generic nodes or are outputs.
fn compose_gathers(instrs: &mut Vec<Instr>, pinned: &[usize]) {
    use std::collections::{BTreeMap, HashSet};
    // Each gradient-passing gather's output: start -> (length, index map).
    let mut gathers: BTreeMap<usize, Box<[usize]>> = instrs
        .iter()
        .filter_map(|i| match i {
            Instr::Gather { y, idx, grad: true } => Some((*y, idx.clone())),
            _ => None,
        })
        .collect();
    if gathers.is_empty() {
        return;
    }
    let find = |g: &BTreeMap<usize, Box<[usize]>>, addr: usize| -> Option<usize> {
        g.range(..=addr)
            .next_back()
            .filter(|(s, idx)| addr < *s + idx.len())
            .map(|(s, _)| *s)
    };
    // How many operands read each gather's output (pinned ones count twice: never composed).
    let mut refs: HashMap<usize, usize> = HashMap::new();
    let mut count = |g: &BTreeMap<usize, Box<[usize]>>, addr: usize, k: usize| {
        if let Some(s) = find(g, addr) {
            *refs.entry(s).or_insert(0) += k;
        }
    };
    for &a in pinned {
        count(&gathers, a, 2);
    }
    for ins in instrs.iter() {
        if let Instr::Gather { idx, .. } = ins {
            // A gather's entries count once per gather they read.
            let bufs: HashSet<usize> = idx.iter().filter_map(|&i| find(&gathers, i)).collect();
            bufs.into_iter().for_each(|s| count(&gathers, s, 1));
        } else {
            // Every other operand counts, even two of one op in one place.
            ins.for_each_read(|a| count(&gathers, a, 1));
        }
    }
    let refs = refs;
    let mut dead = HashSet::new();
    let mut composed = Vec::new();
    // An operand `(at, len, mode, idx)` of an op with `n` outputs that may read below `split`.
    let mut through = |gathers: &BTreeMap<usize, Box<[usize]>>,
                       (at, len, mode, idx): OperandMut<'_>,
                       n: usize,
                       split: usize| {
        let Some(s) = find(gathers, *at) else {
            return;
        };
        let g = &gathers[&s];
        if *at != s || *len != g.len() || refs.get(&s) != Some(&1) {
            return;
        }
        *idx = (0..n).map(|i| g[mode.at(idx, i)] as u32).collect();
        *at = 0;
        *len = split;
        *mode = Mode::Idx;
        dead.insert(s);
    };

    for ins in instrs.iter_mut() {
        match ins {
            Instr::Bin { p, y, n, .. } => {
                for o in p.operands() {
                    through(&gathers, o, *n, *y);
                }
            }
            Instr::LseAdd {
                p,
                aux,
                outer,
                n,
                inner,
                ..
            } => {
                for o in p.operands() {
                    through(&gathers, o, *outer * *n * *inner, *aux);
                }
            }
            Instr::Gather { y, idx, grad } => {
                for i in idx.iter_mut() {
                    if let Some(s) = find(&gathers, *i) {
                        if s != *y && refs.get(&s) == Some(&1) {
                            *i = gathers[&s][*i - s];
                            composed.push(s);
                        }
                    }
                }
                if *grad {
                    gathers.insert(*y, idx.clone());
                }
            }
            _ => {}
        }
    }
    dead.extend(composed);
    instrs.retain(|i| !matches!(i, Instr::Gather { y, .. } if dead.contains(y)));
}

/// The arena split at `y`: everything below it, and the `n` values from `y`.
#[inline(always)]
fn split(v: &mut [f64], y: usize, n: usize) -> (&mut [f64], &mut [f64]) {
    let (lo, hi) = v.split_at_mut(y);
    (lo, &mut hi[..n])
}

#[inline(always)]
fn zip_map(out: &mut [f64], xs: &[f64], f: impl Fn(f64) -> f64) {
    for (o, &t) in out.iter_mut().zip(xs) {
        *o = f(t);
    }
}

#[inline]
fn map_forward(f: MapFn, xs: &[f64], out: &mut [f64]) {
    match f {
        MapFn::Unary(UnaryFn::Exp) => zip_map(out, xs, f64::exp),
        MapFn::Unary(UnaryFn::Log) => zip_map(out, xs, f64::ln),
        MapFn::Unary(UnaryFn::Square) => zip_map(out, xs, |t| t * t),
        MapFn::Unary(UnaryFn::Neg) => zip_map(out, xs, |t| -t),
        MapFn::Clamp(lo, hi) => zip_map(out, xs, |t| t.max(lo).min(hi)),
        _ => zip_map(out, xs, |t| f.value(t)),
    }
}

#[inline]
fn map_backward(f: MapFn, xs: &[f64], ys: &[f64], gy: &[f64], gx: &mut [f64]) {
    let pairs = xs.iter().zip(ys).zip(gy);
    match f {
        MapFn::Unary(UnaryFn::Exp) => {
            gx.iter_mut()
                .zip(ys.iter().zip(gy))
                .for_each(|(d, (&y, &g))| *d += g * y);
        }
        MapFn::Unary(UnaryFn::Log) => {
            gx.iter_mut()
                .zip(xs.iter().zip(gy))
                .for_each(|(d, (&x, &g))| *d += g / x);
        }
        MapFn::Unary(UnaryFn::Square) => {
            gx.iter_mut()
                .zip(xs.iter().zip(gy))
                .for_each(|(d, (&x, &g))| *d += 2.0 * g * x);
        }
        MapFn::Unary(UnaryFn::Neg) => gx.iter_mut().zip(gy).for_each(|(d, &g)| *d -= g),
        _ => gx
            .iter_mut()
            .zip(pairs)
            .for_each(|(d, ((&x, &y), &g))| *d += g * f.derivative(x, y)),
    }
}

/// Adds `d(i)` for each output index `i` into the operand's gradient `g`: a sum for a
/// one-value operand, and runs of one index added up before they are stored for a broadcast one
/// (consecutive outputs often read the same value).
#[inline(always)]
fn send(mode: Mode, idx: &[u32], g: &mut [f64], n: usize, d: impl Fn(usize) -> f64) {
    match mode {
        Mode::Same => g
            .iter_mut()
            .take(n)
            .enumerate()
            .for_each(|(i, t)| *t += d(i)),
        Mode::Scalar => {
            // Four running sums: no serial chain of additions.
            let mut acc = [0.0f64; 4];
            let full = n - n % 4;
            let mut i = 0;
            while i < full {
                acc[0] += d(i);
                acc[1] += d(i + 1);
                acc[2] += d(i + 2);
                acc[3] += d(i + 3);
                i += 4;
            }
            let tail: f64 = (full..n).map(d).sum();
            g[0] += (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
        }
        Mode::Idx => {
            let mut cur = match idx.first() {
                Some(&j) => j as usize,
                None => return,
            };
            let mut acc = 0.0;
            for (i, &j) in idx.iter().enumerate() {
                let j = j as usize;
                if j != cur {
                    g[cur] += acc;
                    cur = j;
                    acc = 0.0;
                }
                acc += d(i);
            }
            g[cur] += acc;
        }
    }
}

/// `out[i] = f(a[j], b[k])` over the operands' maps.
#[inline(always)]
fn bin_forward(
    out: &mut [f64],
    (ma, ia, va): (Mode, &[u32], &[f64]),
    (mb, ib, vb): (Mode, &[u32], &[f64]),
    f: impl Fn(f64, f64) -> f64,
) {
    match (ma, mb) {
        (Mode::Same, Mode::Same) => {
            for (o, (&p, &q)) in out.iter_mut().zip(va.iter().zip(vb)) {
                *o = f(p, q);
            }
        }
        (Mode::Scalar, Mode::Same) => {
            let p = va[0];
            zip_map(out, vb, |q| f(p, q));
        }
        (Mode::Same, Mode::Scalar) => {
            let q = vb[0];
            zip_map(out, va, |p| f(p, q));
        }
        (Mode::Idx, Mode::Same) => {
            for (o, (&j, &q)) in out.iter_mut().zip(ia.iter().zip(vb)) {
                *o = f(va[j as usize], q);
            }
        }
        (Mode::Same, Mode::Idx) => {
            for (o, (&p, &k)) in out.iter_mut().zip(va.iter().zip(ib)) {
                *o = f(p, vb[k as usize]);
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f(va[ma.at(ia, i)], vb[mb.at(ib, i)]);
            }
        }
    }
}

#[inline]
fn reduce_forward(op: RedOp, xs: &[f64], out: &mut [f64], outer: usize, n: usize, inner: usize) {
    for o in 0..outer {
        let block = &xs[o * n * inner..(o + 1) * n * inner];
        for i in 0..inner {
            let col = block.iter().skip(i).step_by(inner.max(1));
            let sum = |col: std::iter::StepBy<std::iter::Skip<std::slice::Iter<'_, f64>>>| {
                if inner == 1 {
                    sum4(block)
                } else {
                    col.sum::<f64>()
                }
            };
            out[o * inner + i] = match op {
                RedOp::Sum => sum(col),
                RedOp::Mean => sum(col) / n.max(1) as f64,
                RedOp::Max => col.fold(f64::NEG_INFINITY, |m, &t| m.max(t)),
                RedOp::Min => col.fold(f64::INFINITY, |m, &t| m.min(t)),
                RedOp::Lse => f64::NAN,
            };
        }
    }
}

/// `logsumexp` along the middle dim, keeping the weights `exp(x - y)` in `w`.
/// A sum in four running parts (no serial chain of additions).
fn sum4(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = x.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for j in 0..4 {
            acc[j] += c[j];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `logsumexp` along the middle dim of `w`, replacing `w` by the weights `exp(x - y)`.
#[inline]
fn lse_forward(w: &mut [f64], out: &mut [f64], outer: usize, n: usize, inner: usize) {
    for o in 0..outer {
        let base = o * n * inner;
        for i in 0..inner {
            let at = |j: usize| base + j * inner + i;
            let mut m = f64::NEG_INFINITY;
            for j in 0..n {
                m = m.max(w[at(j)]);
            }
            if m.is_finite() {
                let mut s = 0.0;
                for j in 0..n {
                    let e = (w[at(j)] - m).exp();
                    w[at(j)] = e;
                    s += e;
                }
                let r = 1.0 / s;
                for j in 0..n {
                    w[at(j)] *= r;
                }
                out[o * inner + i] = m + s.ln();
            } else {
                // As the array pass: the weights exp(x - y) of an infinite y.
                for j in 0..n {
                    w[at(j)] = (w[at(j)] - m).exp();
                }
                out[o * inner + i] = m;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn reduce_backward(
    op: RedOp,
    xs: &[f64],
    ys: &[f64],
    w: &[f64],
    gy: &[f64],
    gx: &mut [f64],
    outer: usize,
    n: usize,
    inner: usize,
) {
    for o in 0..outer {
        let base = o * n * inner;
        for i in 0..inner {
            let at = |j: usize| base + j * inner + i;
            let d = gy[o * inner + i];
            match op {
                RedOp::Sum => (0..n).for_each(|j| gx[at(j)] += d),
                RedOp::Mean => {
                    let d = d / n.max(1) as f64;
                    (0..n).for_each(|j| gx[at(j)] += d);
                }
                RedOp::Lse => (0..n).for_each(|j| gx[at(j)] += d * w[at(j)]),
                RedOp::Max | RedOp::Min => {
                    // Split evenly between ties, as torch's amax/amin.
                    let m = ys[o * inner + i];
                    let hits = (0..n).filter(|&j| xs[at(j)] == m).count();
                    if hits > 0 {
                        let d = d / hits as f64;
                        (0..n)
                            .filter(|&j| xs[at(j)] == m)
                            .for_each(|j| gx[at(j)] += d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of the plan's instructions satisfy `is`.
    fn count(p: &Program, is: fn(&Instr) -> bool) -> usize {
        p.plan
            .as_ref()
            .map_or(0, |pl| pl.instrs.iter().filter(|i| is(i)).count())
    }

    /// The planned program against the array interpreter at a few points: values and gradients.
    pub(crate) fn agrees(text: &str, shapes: &[Vec<usize>]) {
        let p = Program::compile(text, shapes).expect("compile");
        assert!(p.plan_summary().is_some(), "no plan");
        let q = p.clone().interpreted();
        for k in 0..3 {
            let xs: Vec<Vec<f64>> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (0..numel(s))
                        .map(|j| (0.7 * (i * 31 + j * 7 + k * 13) as f64).sin())
                        .collect()
                })
                .collect();
            let refs: Vec<&[f64]> = xs.iter().map(|x| x.as_slice()).collect();
            let (va, ga) = p.value_and_grad(&refs).expect("planned");
            let (vb, gb) = q.value_and_grad(&refs).expect("interpreted");
            assert!(
                (va - vb).abs() <= 1e-12 * (1.0 + vb.abs()),
                "value {va} vs {vb}"
            );
            for (a, b) in ga.iter().flatten().zip(gb.iter().flatten()) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "grad {ga:?} vs {gb:?}"
                );
            }
        }
    }

    /// One step of the forward algorithm: views alias, the broadcast add and `logsumexp` run
    /// on the arena, `select` is a gather.
    #[test]
    fn forward_algorithm_step() {
        let text = "I 0\nI 1\nI 2\nC 3 i 1\nN aten::unsqueeze 2 0 3 1 4\n\
                    N aten::add 3 4 1 3 1 6\nC 7 l 1 0\nC 8 b 0\n\
                    N aten::logsumexp 3 6 7 8 1 9\nC 11 i 2\nN aten::select 3 2 3 11 1 12\n\
                    N aten::add 3 9 12 3 1 13\nN aten::logsumexp 3 13 7 8 1 15\nO 15\n";
        let shapes = [vec![3], vec![3, 3], vec![3, 4]];
        agrees(text, &shapes);
        let p = Program::compile(text, &shapes).expect("compile");
        // unsqueeze is an alias; each add is fused into the logsumexp that reads it; the add
        // reads the selected column through its index map (no copy).
        assert_eq!(p.plan_summary(), Some((2, 0)));
    }

    /// `logsumexp(x - alpha y)` over the last dim with both operands live (fused), and a sum
    /// read twice (not fused: the sum must stay in the arena).
    #[test]
    fn fused_and_unfused_logsumexp() {
        let text = "I 0\nI 1\nC 2 i 1\nN aten::unsqueeze 2 1 2 1 3\nC 4 f 0.5\n\
                    N aten::sub 3 0 3 4 1 5\nC 6 l 1 -1\nC 7 b 0\n\
                    N aten::logsumexp 3 5 6 7 1 8\nC 9 n\nN aten::sum 2 8 9 1 10\n\
                    N aten::add 3 0 3 2 1 11\nN aten::logsumexp 3 11 6 7 1 12\n\
                    N aten::sum 2 12 9 1 13\nN aten::sum 2 11 9 1 14\nO 10\nO 13\nO 14\n";
        let shapes = [vec![2, 3], vec![2]];
        agrees(text, &shapes);
        let p = Program::compile(text, &shapes).expect("compile");
        let fused = count(&p, |i| matches!(i, Instr::LseAdd { .. }));
        assert_eq!(fused, 1);
    }

    /// One program evaluated from several threads at once: each run takes its own workspace
    /// from the pool, so the results are those of one thread alone.
    #[test]
    fn concurrent_runs_use_their_own_workspaces() {
        let text = "I 0\nC 1 i 1\nN aten::exp 1 0 1 2\nN aten::mul 2 2 0 1 3\nC 4 n\n\
                    N aten::sum 2 3 4 1 5\nO 5\n";
        let p = Program::compile(text, &[vec![64]]).expect("compile");
        let point =
            |k: usize| -> Vec<f64> { (0..64).map(|j| ((j * k) as f64 * 0.01).sin()).collect() };
        let alone: Vec<(f64, Vec<Vec<f64>>)> = (0..4)
            .map(|k| p.value_and_grad(&[&point(k)]).expect("run"))
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|k| {
                    let (p, x) = (&p, point(k));
                    s.spawn(move || {
                        (0..200)
                            .map(|_| p.value_and_grad(&[&x]).expect("run"))
                            .last()
                    })
                })
                .collect();
            for (k, h) in handles.into_iter().enumerate() {
                assert_eq!(h.join().expect("thread"), Some(alone[k].clone()));
            }
        });
    }

    /// A constant matrix times a vector, then a scaled residual: the regression mean.
    #[test]
    fn matrix_vector_product() {
        let text = "I 0\nI 1\nC 2 t 2 4 3 0.125 0.25 0.375 -1 0.5 2 0.75 -0.5 1.5 0 0.25 -2\n\
                    N aten::matmul 2 2 0 1 3\nC 4 i 1\nN aten::add 3 3 1 4 1 5\n\
                    C 6 t 1 4 1 2 3 4\nN aten::sub 3 6 5 4 1 7\nN aten::square 1 7 1 8\n\
                    C 9 n\nN aten::sum 2 8 9 1 10\nO 10\n";
        let shapes = [vec![3], vec![]];
        agrees(text, &shapes);
        let p = Program::compile(text, &shapes).expect("compile");
        let matvec = count(&p, |i| matches!(i, Instr::MatVec { .. }));
        assert_eq!(matvec, 1);
    }

    /// `cat` and `stack` with a constant, `detach`, `cumsum` (run on arrays), a transpose, a
    /// broadcast division, `clamp` then `amax` (ties at the clamp bounds), `mean`, `expand` and
    /// `permute`.
    #[test]
    fn moves_reductions_and_generic_nodes() {
        let text = "I 0\nI 1\nC 2 t 1 3 1 2 3\nN prim::ListConstruct 2 1 2 1 3\nC 4 i 0\n\
                    N aten::cat 2 3 4 1 5\nN aten::detach 1 1 1 6\nN aten::mul 2 5 5 1 7\n\
                    C 9 n\nN aten::cumsum 3 7 4 9 1 10\nN aten::t 1 0 1 11\nC 12 i 1\n\
                    N aten::unsqueeze 2 1 12 1 13\nN aten::div 2 11 13 1 14\nC 15 f -0.5\n\
                    C 16 f 0.8\nN aten::clamp 3 14 15 16 1 17\nC 18 l 1 1\nC 19 b 0\n\
                    N aten::amax 3 17 18 19 1 20\nC 21 l 1 0\n\
                    N aten::mean 4 20 21 19 9 1 22\nN aten::sum 2 10 9 1 23\n\
                    N aten::mul 2 6 1 1 24\nN aten::sum 2 24 9 1 25\nC 26 l 2 3 4\n\
                    N aten::expand 3 13 26 19 1 28\nC 29 l 2 1 0\n\
                    N aten::permute 2 28 29 1 30\nN aten::exp 1 30 1 31\n\
                    N aten::sum 2 31 9 1 32\nN aten::stack 2 3 4 1 33\n\
                    N aten::square 1 33 1 34\nN aten::sum 2 34 9 1 35\n\
                    O 22\nO 23\nO 25\nO 32\nO 35\n";
        let shapes = [vec![2, 3], vec![3]];
        agrees(text, &shapes);
        let p = Program::compile(text, &shapes).expect("compile");
        let (_, generic) = p.plan_summary().expect("planned");
        assert_eq!(generic, 1, "cumsum runs on arrays");
    }
}
