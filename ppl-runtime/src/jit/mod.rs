//! Compiled potentials (Pyro's `jit_compile=True`): libtorch's tracer records a function of
//! tensors once, and ppl compiles the recorded graph into a host [`Program`] on float64 arrays
//! with its own reverse-mode differentiation, so that evaluating it again costs no libtorch
//! dispatch at all.
//!
//! Like every tracing JIT (TorchScript's tracer, `jax.jit`), the program is only valid for the
//! path the function took when traced: control flow that depends on the values of the inputs is
//! baked in. Callers check the program against libtorch at a few points before trusting it
//! (see [`crate::infer::mcmc::Potential::compile`]).
mod array;
mod ffi;
mod program;
mod random;
mod special;

pub use array::Arr;
pub use ffi::{is_tracing, trace_text};
pub(crate) use ffi::{read_f64, write_f64};
pub use program::{Draws, Program};
pub use special::{digamma, lgamma, trigamma};
