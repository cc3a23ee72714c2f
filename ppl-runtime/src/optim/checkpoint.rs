//! Checkpoints: the param store and an optimizer's state in one file.

use std::path::Path;

use indexmap::IndexMap;
use tch::{Device, Tensor};

use super::Optimizer;
use crate::error::{Error, Result};
use crate::params::with_param_store;

/// Name of the tensor listing the optimizer's state entries.
const META: &str = "optim_meta";

/// Name of the tensor holding the random streams' state ([`crate::RngState::to_bytes`]).
const RNG: &str = "rng_state";

fn io_err(path: &Path) -> impl Fn(tch::TchError) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Saves this thread's param store and the state of `optim` to one file at `path`, so that
/// [`load_checkpoint`] resumes training exactly where it stopped (bit-identical tensors).
///
/// The file is a libtorch archive (`Tensor::save_multi`): the param store's entries exactly as
/// [`ParamStore::save`](crate::params::ParamStore::save) writes them, so `ParamStore::load` reads
/// a checkpoint too, plus the optimizer's [`Optimizer::state`] as tensors `o0`, `o1`, ... with
/// their names in a text tensor `optim_meta`, plus the random streams (torch's CPU generator and
/// ppl's `rand` generator, [`crate::get_rng_state`]) as bytes in `rng_state`: an eager SVI run
/// resumed from a checkpoint makes the same draws as one that never stopped. (The generator of a
/// compiled step, [`crate::infer::JitTraceElbo`], and CUDA generators are not saved.)
pub fn save_checkpoint(path: impl AsRef<Path>, optim: &dyn Optimizer) -> Result<()> {
    let path = path.as_ref();
    let state = optim.state()?;
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
    with_param_store(|ps| ps.save(path))?;
    let mut named = Tensor::load_multi(path).map_err(io_err(path))?;
    if named.iter().any(|(k, _)| k == META) {
        return Err(Error::Checkpoint(format!(
            "{}: the param store file already has an entry `{META}`",
            path.display()
        )));
    }
    named.push((META.to_string(), Tensor::from_slice(meta.as_bytes())));
    let rng = crate::primitives::get_rng_state()?.to_bytes();
    named.push((RNG.to_string(), Tensor::from_slice(&rng)));
    for (i, (_, t)) in state.into_iter().enumerate() {
        named.push((format!("o{i}"), t));
    }
    Tensor::save_multi(&named, path).map_err(io_err(path))
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
