//! Tracing a function into a [`Program`], and the one check of a program against libtorch.
//!
//! Compiled SVI ([`crate::infer::JitTraceElbo`]) and compiled potentials
//! ([`crate::infer::mcmc::CompiledPotential`]) both build their program with [`compile_traced`]
//! and trust it only after [`verify`] found it equal to libtorch's evaluation at the same point.

use tch::Tensor;

use super::ffi::trace_text;
use super::program::Program;
use crate::error::{Error, Result};

/// Traces `f` on `inputs` with libtorch's tracer and compiles the recorded graph; returns the
/// program with the tensors `f` returned on the first run (still attached to autograd). The
/// program's random ops replay that run's draws under [`super::Draws::Traced`].
///
/// With `twice`, `f` is traced a second time and the two recordings must have the same ops
/// (their random draws aside): a function whose control flow depends on sampled values, or that
/// makes different tensors from host data, is refused.
pub fn compile_traced(
    inputs: &[Tensor],
    twice: bool,
    mut f: impl FnMut(&[Tensor]) -> Result<Vec<Tensor>>,
) -> Result<(Program, Vec<Tensor>)> {
    let t0 = std::time::Instant::now();
    let (text, outputs) = trace_text(inputs, &mut f)?;
    let traced = t0.elapsed();
    super::debug_print(&format!("traced graph\n{text}"));
    if twice {
        let (again, _) = trace_text(inputs, &mut f)?;
        // `R` lines hold a run's random draws; everything else is the graph.
        let structure = |t: &str| -> String {
            t.lines()
                .filter(|l| !l.starts_with("R "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if structure(&text) != structure(&again) {
            return Err(Error::JitRefused {
                reason: "two traced runs ran different ops (or made different tensors from \
                         host data): the control flow depends on sampled values, or data changes \
                         between runs; run without jit_compile"
                    .into(),
            });
        }
    }
    let shapes: Vec<Vec<usize>> = inputs
        .iter()
        .map(|t| t.size().iter().map(|&d| d as usize).collect())
        .collect();
    let t1 = std::time::Instant::now();
    let program = Program::compile(&text, &shapes)?;
    super::debug_print(&format!(
        "traced in {:.1} ms, compiled in {:.1} ms ({} ops)",
        traced.as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3,
        text.lines().filter(|l| l.starts_with("N ")).count()
    ));
    Ok((program, outputs))
}

/// One evaluation: output values and the gradient (flattened over all inputs).
#[derive(Clone, Copy, Debug)]
pub struct Evaluation<'a> {
    /// The outputs.
    pub values: &'a [f64],
    /// The gradient, all inputs one after another.
    pub grad: &'a [f64],
}

/// Checks a program's evaluation against libtorch's at the same point and draws.
///
/// Values agree within `tol · (1 + |v|)` and gradients within `tol · max(1, max |g|)`, with
/// `tol` = 2e-3 when the traced tensors were float32 (`single`) and 1e-7 in float64: the
/// program computes in float64, so the difference is libtorch's rounding. Entries that are not
/// finite in libtorch's evaluation are not compared. On disagreement the error says what
/// differed and ends with `hint` (what the user can do about it).
pub fn verify(eager: Evaluation, compiled: Evaluation, single: bool, hint: &str) -> Result<()> {
    let tol = if single { 2e-3 } else { 1e-7 };
    let values_ok = eager.values.len() == compiled.values.len()
        && eager
            .values
            .iter()
            .zip(compiled.values)
            .all(|(a, b)| !a.is_finite() || (a - b).abs() <= tol * (1.0 + a.abs()));
    let scale = eager
        .grad
        .iter()
        .filter(|g| g.is_finite())
        .fold(1.0f64, |m, g| m.max(g.abs()));
    let grad_ok = eager.grad.len() == compiled.grad.len()
        && eager
            .grad
            .iter()
            .zip(compiled.grad)
            .all(|(a, b)| !a.is_finite() || (a - b).abs() <= tol * scale);
    if values_ok && grad_ok {
        return Ok(());
    }
    let show = |v: &[f64]| -> String {
        let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.6e}")).collect();
        let more = if v.len() > 8 { ", ..." } else { "" };
        format!("[{}{more}]", head.join(", "))
    };
    Err(Error::JitRefused {
        reason: format!(
            "the compiled program disagrees with libtorch at the traced point (values {} \
             against {}, gradient {} against {}); {hint}",
            show(compiled.values),
            show(eager.values),
            show(compiled.grad),
            show(eager.grad),
        ),
    })
}
