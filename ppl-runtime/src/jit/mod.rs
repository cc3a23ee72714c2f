//! Compiled potentials (Pyro's `jit_compile=True`): libtorch's tracer records a function of
//! tensors once, and ppl compiles the recorded graph into a host [`Program`] on float64 arrays
//! with its own reverse-mode differentiation, so that evaluating it again costs no libtorch
//! dispatch at all.
//!
//! Like every tracing JIT (TorchScript's tracer, `jax.jit`), the program is only valid for the
//! path the function took when traced: control flow that depends on the values of the inputs is
//! baked in. Callers check the program against libtorch at a few points before trusting it
//! (see [`crate::infer::mcmc::CompiledPotential::new`] and [`verify`]).
//!
//! Debugging: with the environment variable `PPL_JIT_DEBUG` set, every traced graph is printed to
//! stderr (one op per line; format in `csrc/trace.cpp`), and the size of its plan. With
//! `PPL_JIT_PLAN=0`, programs run on the array interpreter instead of planned buffers (to compare
//! the two).
mod array;
mod elementwise;
mod ffi;
mod graph;
mod kernels;
mod linalg;
mod ops;
mod plan;
mod program;
mod random;
mod reduce;
mod shape;
mod special;
mod unary;
mod verify;

pub use array::Arr;
pub use ffi::{is_tracing, trace_text};
pub(crate) use ffi::{read_f64, set_torch_rng_state, torch_rng_state, write_f64};
pub use program::{Draws, Program};
pub use special::{digamma, gamma_p, i0e, i1e, lgamma, trigamma};
pub use verify::{compile_traced, verify, Evaluation};

/// Prints a traced graph to stderr when `PPL_JIT_DEBUG` is set.
pub(crate) fn debug_print(text: &str) {
    if std::env::var_os("PPL_JIT_DEBUG").is_some() {
        eprintln!("ppl jit: {text}");
    }
}
