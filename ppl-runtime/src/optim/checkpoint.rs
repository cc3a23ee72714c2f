//! Checkpoints: the param store and an optimizer's state in one file.

use std::path::Path;

use indexmap::IndexMap;
use tch::{Device, Tensor};

use super::Optimizer;
use crate::error::{Error, Result};
use crate::params::tensor_file::{is_safetensors, TensorFile, TensorFileWriter};
use crate::params::{with_param_store, CHECKPOINT_FORMAT};

/// Name of the tensor listing the optimizer's state entries.
const META: &str = "optim_meta";

/// Name of the tensor holding the random streams' state ([`crate::RngState::to_bytes`]).
const RNG: &str = "rng_state";

/// In a safetensors checkpoint: the prefix of the optimizer's tensors, and the random streams.
const ST_OPTIM: &str = "__optim__/";
const ST_RNG: &str = "__rng_state__";

fn io_err(path: &Path) -> impl Fn(tch::TchError) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Saves this thread's param store and the state of `optim` to one file at `path`, so that
/// [`load_checkpoint`] resumes training exactly where it stopped (bit-identical tensors).
///
/// A path ending in `.safetensors` gets a safetensors file (readable outside ppl; its params load
/// with [`ParamStore::load_safetensors`](crate::params::ParamStore::load_safetensors) and
/// `scripts/pyro_param_store.py to-pyro`): each param under its name with its constraint in the
/// metadata, the optimizer's [`Optimizer::state`] as `__optim__/0`, `__optim__/1`, ... with their
/// names in the metadata (`optim.0`, ...), and the random streams as bytes in `__rng_state__`.
///
/// Any other path gets a libtorch archive (`Tensor::save_multi`): the param store's entries
/// exactly as [`ParamStore::save`](crate::params::ParamStore::save) writes them, so
/// `ParamStore::load` reads a checkpoint too, plus the optimizer's state as tensors `o0`, `o1`,
/// ... with their names in a text tensor `optim_meta`, plus the random streams in `rng_state`.
///
/// The random streams are torch's CPU generator and ppl's `rand` generator
/// ([`crate::get_rng_state`]): an SVI run resumed from a checkpoint makes the same draws as one
/// that never stopped (a compiled step, [`crate::infer::JitTraceElbo`], seeds its own generator
/// from ppl's at every step). CUDA generators are not saved. Either file is written to a
/// temporary name and renamed over `path`, so a crash never leaves half a checkpoint.
pub fn save_checkpoint(path: impl AsRef<Path>, optim: &dyn Optimizer) -> Result<()> {
    let path = path.as_ref();
    let state = optim.state()?;
    let rng = crate::primitives::get_rng_state()?.to_bytes();
    if path.extension().is_some_and(|e| e == "safetensors") {
        let mut w = safetensors_checkpoint(&state)?;
        w.bytes(ST_RNG, &rng)?;
        return w.write(path);
    }
    let mut meta = String::new();
    for (k, _) in &state {
        if k.contains('\n') {
            return Err(Error::Checkpoint(format!(
                "optimizer state entry {k:?} contains a newline and cannot be saved"
            )));
        }
        meta.push_str(k);
        meta.push('\n');
    }
    let mut tmp = path.to_path_buf();
    tmp.set_extension("ppl-tmp");
    with_param_store(|ps| ps.save(&tmp))?;
    let mut named = Tensor::load_multi(&tmp).map_err(io_err(&tmp))?;
    if named.iter().any(|(k, _)| k == META) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Checkpoint(format!(
            "{}: the param store file already has an entry `{META}`",
            path.display()
        )));
    }
    named.push((META.to_string(), Tensor::from_slice(meta.as_bytes())));
    named.push((RNG.to_string(), Tensor::from_slice(&rng)));
    for (i, (_, t)) in state.into_iter().enumerate() {
        named.push((format!("o{i}"), t));
    }
    Tensor::save_multi(&named, &tmp).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Loads a file written by [`save_checkpoint`]: its params replace those of the same name in this
/// thread's param store (others stay; clear the store first for an exact restore) and its
/// optimizer state replaces the state of `optim`, which must be an optimizer of the same type and
/// settings as the one saved. Tensors go back to the devices they were saved from.
pub fn load_checkpoint(path: impl AsRef<Path>, optim: &mut dyn Optimizer) -> Result<()> {
    load_checkpoint_to(path, optim, None)
}

/// [`load_checkpoint`] with every tensor moved to `device` when given (Pyro's `map_location`),
/// e.g. to resume on the CPU a run checkpointed on a GPU.
pub fn load_checkpoint_to(
    path: impl AsRef<Path>,
    optim: &mut dyn Optimizer,
    device: Option<Device>,
) -> Result<()> {
    let path = path.as_ref();
    if is_safetensors(path)? {
        return load_safetensors_checkpoint(path, optim, device);
    }
    let loaded = match device {
        Some(d) => Tensor::load_multi_with_device(path, d),
        None => Tensor::load_multi(path),
    };
    let mut tensors: IndexMap<String, Tensor> = loaded.map_err(io_err(path))?.into_iter().collect();
    let meta = tensors.shift_remove(META).ok_or_else(|| {
        Error::Checkpoint(format!(
            "{}: not a checkpoint (no optimizer state; a plain param store file?)",
            path.display()
        ))
    })?;
    let meta = String::from_utf8(Vec::<u8>::try_from(&meta)?).map_err(|_| {
        Error::Checkpoint(format!("{}: corrupt optimizer metadata", path.display()))
    })?;
    let mut state = Vec::new();
    for (i, name) in meta.lines().enumerate() {
        let t = tensors.shift_remove(&format!("o{i}")).ok_or_else(|| {
            Error::Checkpoint(format!(
                "{}: missing optimizer tensor for `{name}`",
                path.display()
            ))
        })?;
        state.push((name.to_string(), t));
    }
    optim.load_state(state)?;
    with_param_store(|ps| ps.load(path, device))?;
    // Checkpoints written before the random state was saved have none: the streams run on.
    if let Some(rng) = tensors.shift_remove(RNG) {
        let bytes = Vec::<u8>::try_from(&rng.f_to_device(Device::Cpu)?)?;
        crate::primitives::set_rng_state(&crate::primitives::RngState::from_bytes(&bytes)?)?;
    }
    Ok(())
}

/// A safetensors checkpoint being written, with this thread's params and the optimizer's
/// `state`, but no random streams yet.
pub(crate) fn safetensors_checkpoint(state: &[(String, Tensor)]) -> Result<TensorFileWriter> {
    let mut w = TensorFileWriter::new(CHECKPOINT_FORMAT);
    with_param_store(|ps| ps.write_entries(&mut w))?;
    for (i, (name, t)) in state.iter().enumerate() {
        w.meta(format!("optim.{i}"), name.clone());
        w.tensor(&format!("{ST_OPTIM}{i}"), t)?;
    }
    w.meta("optim.len", state.len().to_string());
    Ok(w)
}

/// [`load_checkpoint_to`] for a checkpoint written as safetensors.
fn load_safetensors_checkpoint(
    path: &Path,
    optim: &mut dyn Optimizer,
    device: Option<Device>,
) -> Result<()> {
    let f = TensorFile::read(path, &[CHECKPOINT_FORMAT])?;
    load_params_and_optimizer(&f, optim, device)?;
    let rng = f.bytes(ST_RNG)?;
    crate::primitives::set_rng_state(&crate::primitives::RngState::from_bytes(&rng)?)
}

/// The params and optimizer state of a safetensors checkpoint (not its random streams).
pub(crate) fn load_params_and_optimizer(
    f: &TensorFile,
    optim: &mut dyn Optimizer,
    device: Option<Device>,
) -> Result<()> {
    let path = f.path();
    let n: usize = f.meta_required("optim.len")?.parse().map_err(|_| {
        Error::Checkpoint(format!(
            "{}: bad `optim.len` in the metadata",
            path.display()
        ))
    })?;
    let mut state = Vec::with_capacity(n);
    for i in 0..n {
        let name = f.meta_required(&format!("optim.{i}"))?.to_string();
        let t = f.tensor(&format!("{ST_OPTIM}{i}"))?;
        let t = match device {
            Some(d) => t.f_to_device(d)?,
            None => t,
        };
        state.push((name, t));
    }
    optim.load_state(state)?;
    with_param_store(|ps| ps.read_entries(f, device))
}
