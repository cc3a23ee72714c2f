//! The FFI to `csrc/distributed.cpp`: c10d's TCPStore and Gloo process group (libtorch's own
//! code). Each call returns NULL or an error message the shim allocated.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use tch::Tensor;

use crate::error::{Error, Result};

type CTensor = *const c_void;

extern "C" {
    fn ppl_dist_free(s: *mut c_char);
    fn ppl_dist_have_gloo() -> c_int;
    fn ppl_dist_store_new(
        host: *const c_char,
        port: c_int,
        is_server: c_int,
        world: c_int,
        timeout_s: f64,
        prefix: *const c_char,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn ppl_dist_store_free(s: *mut c_void);
    fn ppl_dist_store_set(
        s: *mut c_void,
        key: *const c_char,
        data: *const u8,
        n: usize,
    ) -> *mut c_char;
    fn ppl_dist_store_get(
        s: *mut c_void,
        key: *const c_char,
        out: *mut *mut u8,
        n: *mut usize,
    ) -> *mut c_char;
    fn ppl_dist_store_check(s: *mut c_void, key: *const c_char, exists: *mut c_int) -> *mut c_char;
    fn ppl_dist_store_add(
        s: *mut c_void,
        key: *const c_char,
        value: i64,
        out: *mut i64,
    ) -> *mut c_char;
    fn ppl_dist_group_new(
        s: *mut c_void,
        rank: c_int,
        world: c_int,
        timeout_s: f64,
        host: *const c_char,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn ppl_dist_group_free(g: *mut c_void);
    fn ppl_dist_allreduce_sum(g: *mut c_void, t: CTensor) -> *mut c_char;
    fn ppl_dist_broadcast(g: *mut c_void, t: CTensor, root: c_int) -> *mut c_char;
    fn ppl_dist_allgather(g: *mut c_void, input: CTensor, out: CTensor) -> *mut c_char;
    fn ppl_dist_barrier(g: *mut c_void) -> *mut c_char;
}

/// The shim's error, as text (owned here).
fn check(err: *mut c_char) -> std::result::Result<(), String> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string from `malloc` in the shim, freed once here.
    let msg = unsafe {
        let m = CStr::from_ptr(err).to_string_lossy().into_owned();
        ppl_dist_free(err);
        m
    };
    Err(msg)
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Distributed(format!("{s:?} holds a NUL byte")))
}

/// Whether ppl was built with Gloo's headers.
pub(crate) fn have_gloo() -> bool {
    // SAFETY: reads a constant.
    unsafe { ppl_dist_have_gloo() != 0 }
}

/// A c10d TCPStore (thread-safe: c10d serializes its operations).
pub(crate) struct Store(*mut c_void);

// SAFETY: c10d's TCPStore guards every operation with its own lock, and the handle is freed only
// when the last `Arc` drops.
unsafe impl Send for Store {}
// SAFETY: as above.
unsafe impl Sync for Store {}

impl Store {
    pub(crate) fn new(
        host: &str,
        port: u16,
        is_server: bool,
        world: usize,
        timeout_s: f64,
        prefix: &str,
    ) -> std::result::Result<Store, String> {
        let host = CString::new(host).map_err(|_| "a NUL byte in the host".to_string())?;
        let prefix = CString::new(prefix).map_err(|_| "a NUL byte in the prefix".to_string())?;
        let mut out = std::ptr::null_mut();
        // SAFETY: valid C string; `out` is written on success.
        check(unsafe {
            ppl_dist_store_new(
                host.as_ptr(),
                c_int::from(port),
                c_int::from(is_server),
                world as c_int,
                timeout_s,
                prefix.as_ptr(),
                &mut out,
            )
        })?;
        Ok(Store(out))
    }

    pub(crate) fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
        let k = CString::new(key).map_err(|_| "a NUL byte in a key".to_string())?;
        // SAFETY: live store, valid key and buffer for the call.
        check(unsafe { ppl_dist_store_set(self.0, k.as_ptr(), value.as_ptr(), value.len()) })
    }

    pub(crate) fn get(&self, key: &str) -> std::result::Result<Vec<u8>, String> {
        let k = CString::new(key).map_err(|_| "a NUL byte in a key".to_string())?;
        let mut out = std::ptr::null_mut();
        let mut n = 0usize;
        // SAFETY: live store; on success `out` holds `n` bytes from malloc, freed below.
        check(unsafe { ppl_dist_store_get(self.0, k.as_ptr(), &mut out, &mut n) })?;
        // SAFETY: as above.
        let v = unsafe {
            let v = std::slice::from_raw_parts(out, n).to_vec();
            ppl_dist_free(out as *mut c_char);
            v
        };
        Ok(v)
    }

    pub(crate) fn check(&self, key: &str) -> std::result::Result<bool, String> {
        let k = CString::new(key).map_err(|_| "a NUL byte in a key".to_string())?;
        let mut e: c_int = 0;
        // SAFETY: live store, valid key.
        check(unsafe { ppl_dist_store_check(self.0, k.as_ptr(), &mut e) })?;
        Ok(e != 0)
    }

    pub(crate) fn add(&self, key: &str, value: i64) -> std::result::Result<i64, String> {
        let k = CString::new(key).map_err(|_| "a NUL byte in a key".to_string())?;
        let mut out = 0i64;
        // SAFETY: live store, valid key.
        check(unsafe { ppl_dist_store_add(self.0, k.as_ptr(), value, &mut out) })?;
        Ok(out)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the handle came from `ppl_dist_store_new` and is freed once.
        unsafe { ppl_dist_store_free(self.0) }
    }
}

/// A Gloo process group (used from the thread that made it).
pub(crate) struct Group(*mut c_void);

impl Group {
    pub(crate) fn new(
        store: &Store,
        rank: usize,
        world: usize,
        timeout_s: f64,
        host: &str,
    ) -> Result<std::result::Result<Group, String>> {
        let h = cstr(host)?;
        let mut out = std::ptr::null_mut();
        // SAFETY: live store, valid string; `out` is written on success.
        let r = check(unsafe {
            ppl_dist_group_new(
                store.0,
                rank as c_int,
                world as c_int,
                timeout_s,
                h.as_ptr(),
                &mut out,
            )
        });
        Ok(r.map(|()| Group(out)))
    }

    /// In-place sum over ranks of a contiguous CPU tensor.
    pub(crate) fn all_reduce_sum(&self, t: &Tensor) -> std::result::Result<(), String> {
        // SAFETY: live group and tensor for the call.
        check(unsafe { ppl_dist_allreduce_sum(self.0, t.as_ptr() as CTensor) })
    }

    pub(crate) fn broadcast(&self, t: &Tensor, root: usize) -> std::result::Result<(), String> {
        // SAFETY: live group and tensor for the call.
        check(unsafe { ppl_dist_broadcast(self.0, t.as_ptr() as CTensor, root as c_int) })
    }

    pub(crate) fn all_gather(&self, t: &Tensor, out: &Tensor) -> std::result::Result<(), String> {
        // SAFETY: live group and tensors; `out` has `world` rows shaped like `t`.
        check(unsafe { ppl_dist_allgather(self.0, t.as_ptr() as CTensor, out.as_ptr() as CTensor) })
    }

    pub(crate) fn barrier(&self) -> std::result::Result<(), String> {
        // SAFETY: live group.
        check(unsafe { ppl_dist_barrier(self.0) })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the handle came from `ppl_dist_group_new` and is freed once.
        unsafe { ppl_dist_group_free(self.0) }
    }
}
