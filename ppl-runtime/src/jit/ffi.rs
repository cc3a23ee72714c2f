//! The FFI to `csrc/trace.cpp`: libtorch's tracer records the aten ops run by a closure, and the
//! recorded graph comes back as text (format documented in the C++ file). The only `unsafe` code
//! in ppl.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::Tensor;

use crate::error::{Error, Result};

/// `torch::Tensor*`, what tch's `Tensor::as_ptr` points at.
type CTensor = *const c_void;

extern "C" {
    fn ppl_trace_free(s: *mut c_char);
    fn ppl_trace_begin(
        inputs: *const CTensor,
        ninputs: c_int,
        random_ops: *const c_char,
    ) -> *mut c_char;
    fn ppl_trace_abandon();
    fn ppl_trace_end(
        outputs: *const CTensor,
        noutputs: c_int,
        text: *mut *mut c_char,
    ) -> *mut c_char;
    fn ppl_read_f64(t: CTensor, out: *mut f64, n: usize) -> *mut c_char;
    fn ppl_write_f64(t: CTensor, values: *const f64, n: usize) -> *mut c_char;
    fn ppl_rng_state_size() -> usize;
    fn ppl_rng_get_state(out: *mut u8, n: usize) -> *mut c_char;
    fn ppl_rng_set_state(state: *const u8, n: usize) -> *mut c_char;
}

/// A copy of the state of torch's CPU generator (`torch.get_rng_state()`).
pub(crate) fn torch_rng_state() -> Result<Vec<u8>> {
    // SAFETY: no arguments; the shim reads the default CPU generator under its lock.
    let n = unsafe { ppl_rng_state_size() };
    let mut out = vec![0u8; n];
    // SAFETY: `out` holds exactly `n` bytes; the shim checks the size and writes `n` bytes.
    check(unsafe { ppl_rng_get_state(out.as_mut_ptr(), n) })?;
    Ok(out)
}

/// Restores torch's CPU generator to a state from [`torch_rng_state`].
pub(crate) fn set_torch_rng_state(state: &[u8]) -> Result<()> {
    // SAFETY: the shim copies `state.len()` bytes out of the slice; libtorch checks the layout.
    check(unsafe { ppl_rng_set_state(state.as_ptr(), state.len()) })
}

thread_local! {
    static TRACING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether libtorch's tracer is recording on this thread (for code that only needs to build a
/// tensor when it is, such as the ELBO's loss as a tensor).
pub fn is_tracing() -> bool {
    TRACING.with(|t| t.get())
}

/// Copies the values of a contiguous float32 or float64 CPU tensor into `out` as f64.
pub(crate) fn read_f64(t: &Tensor, out: &mut [f64]) -> Result<()> {
    // SAFETY: `t` is a live tensor; the shim checks that it is defined, on the CPU, contiguous,
    // float32 or float64 and of `out.len()` values, and writes exactly that many.
    check(unsafe { ppl_read_f64(t.as_ptr() as CTensor, out.as_mut_ptr(), out.len()) })
}

/// Overwrites the values of a contiguous float32 or float64 CPU tensor with `values` (no
/// autograd record, no version bump: for gradient buffers and the like).
pub(crate) fn write_f64(t: &Tensor, values: &[f64]) -> Result<()> {
    // SAFETY: as in `read_f64`; the shim writes exactly `values.len()` elements.
    check(unsafe { ppl_write_f64(t.as_ptr() as CTensor, values.as_ptr(), values.len()) })
}

/// Takes ownership of a C string from the shim.
fn take(s: *mut c_char) -> String {
    // SAFETY: the shim returns NUL-terminated strings from `malloc`, freed once here.
    unsafe {
        let out = CStr::from_ptr(s).to_string_lossy().into_owned();
        ppl_trace_free(s);
        out
    }
}

fn check(err: *mut c_char) -> Result<()> {
    if err.is_null() {
        Ok(())
    } else {
        Err(Error::Jit(format!("libtorch tracer: {}", take(err))))
    }
}

/// Ends tracing if the closure failed or panicked.
struct Abandon(bool);

impl Drop for Abandon {
    fn drop(&mut self) {
        TRACING.with(|t| t.set(false));
        if self.0 {
            // SAFETY: resetting the thread's tracing state is always allowed.
            unsafe { ppl_trace_abandon() }
        }
    }
}

/// Runs `f` on `inputs` with libtorch's tracer on and returns the recorded graph of the tensors
/// it returns, as text, with those tensors (still attached to autograd). Tensors other than
/// `inputs` that `f` reads become constants.
pub fn trace_text(
    inputs: &[Tensor],
    f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
) -> Result<(String, Vec<Tensor>)> {
    let ins: Vec<CTensor> = inputs.iter().map(|t| t.as_ptr() as CTensor).collect();
    let random: Vec<String> = super::random::RANDOM_OPS
        .iter()
        .map(|(n, _)| format!("aten::{n}"))
        .collect();
    let random = std::ffi::CString::new(random.join(" "))
        .map_err(|_| Error::Internal("a random op name holds a NUL byte".into()))?;
    // SAFETY: the pointers are live tensors and a NUL-terminated string for the duration of the
    // call; the shim copies the names.
    check(unsafe { ppl_trace_begin(ins.as_ptr(), ins.len() as c_int, random.as_ptr()) })?;
    let mut guard = Abandon(true);
    TRACING.with(|t| t.set(true));
    let outputs = f(inputs)?;
    let outs: Vec<CTensor> = outputs.iter().map(|t| t.as_ptr() as CTensor).collect();
    let mut text: *mut c_char = std::ptr::null_mut();
    // SAFETY: as above; on success the shim sets `text` to a string we own.
    let r = check(unsafe { ppl_trace_end(outs.as_ptr(), outs.len() as c_int, &mut text) });
    guard.0 = false;
    drop(guard);
    r?;
    Ok((take(text), outputs))
}
