//! Data-parallel SVI (Pyro's `HorovodOptimizer`, DDP): every rank runs the same model and guide
//! on its own shard of the data; before each optimizer step the gradients (and the loss) are
//! averaged over ranks in one flat buffer per dtype, so the optimizer takes the same step
//! everywhere and params stay bit-identical.
//!
//! A subsampling plate whose size is the *global* data size scales each rank's likelihood by
//! `N / n_rank`, so each rank's loss and gradient estimate the full-data ELBO; their average
//! does too. With equal shards and no other randomness, the average equals the single-process
//! loss over all the data (up to float summation order).

use std::path::Path;
use std::rc::Rc;

use tch::Tensor;

use super::{all_reduce_mean_flat, ProcessGroup};
use crate::error::{Error, Result};
use crate::infer::LossAndGrads;
use crate::optim::checkpoint::{load_params_and_optimizer, safetensors_checkpoint};
use crate::optim::Optimizer;
use crate::params::tensor_file::TensorFile;
use crate::params::{with_param_store, CHECKPOINT_FORMAT};

/// SVI over ranks: give it to [`Svi::data_parallel`](crate::infer::Svi::data_parallel).
pub struct DataParallel {
    pg: Rc<ProcessGroup>,
    /// The params checked and broadcast so far (sorted): a step that reads others checks again.
    synced: Vec<String>,
    reduce_seconds: f64,
    steps: usize,
}

impl DataParallel {
    /// Data-parallel steps over `pg`.
    pub fn new(pg: Rc<ProcessGroup>) -> DataParallel {
        DataParallel {
            pg,
            synced: Vec::new(),
            reduce_seconds: 0.0,
            steps: 0,
        }
    }

    /// The group.
    pub fn group(&self) -> &ProcessGroup {
        &self.pg
    }

    /// Seconds spent averaging gradients (packing, the all-reduce, unpacking) so far, and the
    /// number of steps they cover: the communication share of a step.
    pub fn all_reduce_seconds(&self) -> (f64, usize) {
        (self.reduce_seconds, self.steps)
    }

    /// At the first step, and at any step whose params are not those of the last check (a param
    /// created later): checks that every rank has the same params (names, shapes, dtypes; an
    /// error names the first that differs) and copies rank 0's values to all. Returns whether
    /// any value changed, in which case the step's gradient must be computed again. (Ranks whose
    /// param sets change at different steps fail here too: the check is a collective.)
    pub(crate) fn first_sync(&mut self, out: &LossAndGrads) -> Result<bool> {
        let mut names = out.params.clone();
        names.sort();
        if names == self.synced {
            return Ok(false);
        }
        let leaves = with_param_store(|ps| ps.leaves(&names));
        let describe = |(n, t): &(String, Tensor)| format!("{n}\t{:?}\t{:?}", t.size(), t.kind());
        let mine: Vec<String> = leaves.iter().map(describe).collect();
        let all = self.pg.exchange_text("params", &mine.join("\n"))?;
        for (r, text) in all.iter().enumerate() {
            let theirs: Vec<&str> = text.lines().collect();
            if theirs == mine.iter().map(String::as_str).collect::<Vec<_>>() {
                continue;
            }
            let line = |l: &str| {
                let mut it = l.split('\t');
                let name = it.next().unwrap_or("").to_string();
                (name, it.collect::<Vec<_>>().join(" "))
            };
            let theirs: Vec<(String, String)> = theirs.into_iter().map(line).collect();
            let mine: Vec<(String, String)> = mine.iter().map(|l| line(l)).collect();
            let me = self.pg.rank();
            let msg = match mine
                .iter()
                .find(|(n, d)| !theirs.iter().any(|(m, e)| m == n && e == d))
            {
                Some((n, d)) => match theirs.iter().find(|(m, _)| m == n) {
                    Some((_, e)) => format!("param `{n}` is {d} on rank {me} but {e} on rank {r}"),
                    None => format!("param `{n}` is on rank {me} but not on rank {r}"),
                },
                None => match theirs
                    .iter()
                    .find(|(m, _)| !mine.iter().any(|(n, _)| n == m))
                {
                    Some((n, _)) => format!("param `{n}` is on rank {r} but not on rank {me}"),
                    None => format!("ranks {me} and {r} list their params differently"),
                },
            };
            return Err(Error::Distributed(format!(
                "data-parallel SVI needs the same params on every rank: {msg}"
            )));
        }
        let mut changed = false;
        for (_, t) in &leaves {
            let before = t.f_detach()?.copy();
            let buf = t.f_detach()?.f_contiguous()?;
            self.pg.broadcast(&buf, 0)?;
            if !buf.equal(&before) {
                changed = true;
                let mut t = t.shallow_clone();
                tch::no_grad(|| t.f_copy_(&buf).map(|_| ()))?;
            }
        }
        self.synced = names;
        Ok(changed)
    }

    /// Averages the gradients of `out.params` and the loss over ranks, in one buffer per dtype.
    pub(crate) fn average(&mut self, out: &mut LossAndGrads) -> Result<()> {
        let t0 = std::time::Instant::now();
        let mut names = out.params.clone();
        names.sort();
        let leaves = with_param_store(|ps| ps.leaves(&names));
        let mut grads = Vec::with_capacity(leaves.len() + 1);
        for (_, t) in &leaves {
            let mut g = t.grad();
            if !g.defined() {
                // A param this rank's step did not reach (a branch, an empty shard) contributes
                // zero, as DDP's unused parameters do; the collective keeps every rank in step.
                t.f_mul_scalar(0.0)?.f_sum(None)?.f_backward()?;
                g = t.grad();
            }
            grads.push(g);
        }
        let loss = Tensor::f_from_slice(&[out.loss])?;
        grads.push(loss.shallow_clone());
        all_reduce_mean_flat(&self.pg, &grads)?;
        out.loss = loss.f_double_value(&[0])?;
        self.reduce_seconds += t0.elapsed().as_secs_f64();
        self.steps += 1;
        Ok(())
    }
}

/// Saves a data-parallel run's checkpoint (a safetensors file): every rank calls it; rank 0
/// writes the params and the optimizer's state (the same on every rank) with every rank's
/// random streams, through a temporary file and a rename; the call returns on all ranks once the
/// file is complete.
pub fn save_checkpoint(
    pg: &ProcessGroup,
    path: impl AsRef<Path>,
    optim: &dyn Optimizer,
) -> Result<()> {
    let rng = crate::primitives::get_rng_state()?.to_bytes();
    let all = pg.all_gather_bytes(&rng)?;
    // Rank 0's failure must not skip the collective below (the others would wait for it).
    let write = || -> Result<()> {
        let state = optim.state()?;
        let mut w = safetensors_checkpoint(&state)?;
        w.meta("world_size", pg.world_size().to_string());
        for (r, bytes) in all.iter().enumerate() {
            w.bytes(&format!("__rng_state__/rank{r}"), bytes)?;
        }
        w.write(path.as_ref())
    };
    let written = if pg.is_main() {
        write().map_err(|e| e.to_string())
    } else {
        Ok(())
    };
    // Everyone learns whether rank 0 managed, so no rank reads a file that is not there.
    let ok = Tensor::f_from_slice(&[i64::from(written.is_err())])?;
    pg.all_reduce_sum(&ok)?;
    match written {
        Err(e) => Err(Error::Checkpoint(e)),
        Ok(()) if ok.f_int64_value(&[0])? != 0 => Err(Error::Checkpoint(format!(
            "rank 0 could not write {}",
            path.as_ref().display()
        ))),
        Ok(()) => Ok(()),
    }
}

/// Loads a checkpoint [`save_checkpoint`] wrote, on every rank: the params and optimizer state,
/// and this rank's own random streams. The world size must be the one saved.
pub fn load_checkpoint(
    pg: &ProcessGroup,
    path: impl AsRef<Path>,
    optim: &mut dyn Optimizer,
) -> Result<()> {
    let f = TensorFile::read(path.as_ref(), &[CHECKPOINT_FORMAT])?;
    let saved: usize = f
        .meta("world_size")
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| {
            Error::Checkpoint(format!(
                "{}: not a data-parallel checkpoint (no world_size)",
                path.as_ref().display()
            ))
        })?;
    if saved != pg.world_size() {
        return Err(Error::Checkpoint(format!(
            "{}: saved by {saved} ranks, loaded by {}; resume with the same world size",
            path.as_ref().display(),
            pg.world_size()
        )));
    }
    load_params_and_optimizer(&f, optim, None)?;
    let rng = f.bytes(&format!("__rng_state__/rank{}", pg.rank()))?;
    crate::primitives::set_rng_state(&crate::primitives::RngState::from_bytes(&rng)?)
}
