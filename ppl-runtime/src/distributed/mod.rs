//! Beyond one machine, on torch.distributed's engine (c10d): process groups, data-parallel SVI
//! and distributed MCMC (Pyro's `HorovodOptimizer` / DDP examples, NumPyro's consensus Monte
//! Carlo).
//!
//! Ranks meet through c10d's `TCPStore` and talk through its Gloo process group, both inside the
//! libtorch ppl links (`csrc/distributed.cpp` only adapts them); nothing here is a transport of
//! its own. Launch with the `torchrun` that ppl's setup installs:
//!
//! ```text
//! torchrun --nproc-per-node 2 --no-python target/release/examples/bayesian_regression --distributed
//! ```
//!
//! [`init`] reads what torchrun sets (`MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`;
//! `TORCHELASTIC_USE_AGENT_STORE` says that torchrun's agent serves the store). Tests and
//! examples can also start ranks themselves as local processes with those variables set
//! ([`init_with`] takes them directly).
//!
//! Faults: every rank writes a heartbeat to the store from a background thread. When a
//! collective fails (a peer's sockets closed, or Gloo's timeout passed), the error names the
//! ranks whose heartbeat stopped; a rank that never arrives is named by the rendezvous
//! ([`init`]), which waits at most the timeout. Nothing hangs past the timeout.
//!
//! What is built on the group: [`DataParallel`] (SVI whose gradients are averaged over ranks),
//! [`run_chains`] (MCMC chains spread over ranks, gathered everywhere), [`consensus`] and
//! [`parametric_draws`] (combining subposteriors of data shards), [`save_checkpoint`] /
//! [`load_checkpoint`] (rank 0 writes, every rank reads its own random streams back).

mod data_parallel;
mod ffi;
mod mcmc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

pub use data_parallel::{load_checkpoint, save_checkpoint, DataParallel};
pub use mcmc::{consensus, parametric_draws, run_chains};

/// How often each rank writes its heartbeat to the store.
const HEARTBEAT: Duration = Duration::from_millis(200);

/// Whether this build of ppl has the Gloo process group (it needs Gloo's headers at build time:
/// Debian's libgloo-dev, which `make setup` installs).
pub fn available() -> bool {
    ffi::have_gloo()
}

/// Where and how to meet the other ranks ([`init_with`]).
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The store's host (`MASTER_ADDR`).
    pub addr: String,
    /// The store's port (`MASTER_PORT`).
    pub port: u16,
    /// This process's rank, `0..world_size` (`RANK`).
    pub rank: usize,
    /// The number of ranks (`WORLD_SIZE`).
    pub world_size: usize,
    /// How long the rendezvous and each collective may wait (default 60 s; `PPL_DIST_TIMEOUT`
    /// in seconds for [`init`]).
    pub timeout: Duration,
    /// Whether rank 0 serves the store (true) or every rank connects to one that runs already
    /// (false: torchrun's agent, `TORCHELASTIC_USE_AGENT_STORE=True`).
    pub rank0_serves_store: bool,
    /// A prefix for every key this group (and Gloo through it) puts in the store, so that runs
    /// sharing a store (torchrun's restarts) do not read each other's keys. [`init`] uses
    /// `ppl/<TORCHELASTIC_RESTART_COUNT>`.
    pub store_prefix: String,
}

/// A group of ranks: this process's place in it and the collectives over it.
pub struct ProcessGroup {
    store: Arc<ffi::Store>,
    /// Dropped (in `Drop`) before the store it was built on.
    group: Option<ffi::Group>,
    rank: usize,
    world_size: usize,
    timeout: Duration,
    addr: String,
    port: u16,
    heartbeat: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Calls of `exchange_text` so far.
    exchanges: std::cell::Cell<usize>,
}

fn env_var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        Error::Distributed(format!(
            "{name} is not set: start the ranks with torchrun (torchrun --nproc-per-node N \
             --no-python BINARY ...), or set MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE"
        ))
    })
}

fn env_num<T: std::str::FromStr>(name: &str) -> Result<T> {
    let v = env_var(name)?;
    v.trim()
        .parse()
        .map_err(|_| Error::Distributed(format!("{name}={v:?} is not a number")))
}

/// Joins the group that torchrun (or whoever started the ranks) describes in the environment:
/// `MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`, and `TORCHELASTIC_USE_AGENT_STORE`. The
/// timeout is `PPL_DIST_TIMEOUT` seconds (default 60).
pub fn init() -> Result<ProcessGroup> {
    let timeout = match std::env::var("PPL_DIST_TIMEOUT") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                Error::Distributed(format!(
                    "PPL_DIST_TIMEOUT={v:?} is not a positive number of seconds"
                ))
            })?,
        Err(_) => Duration::from_secs(60),
    };
    // Keys of a restarted torchrun attempt must not meet the last attempt's in the agent's store.
    let restart = std::env::var("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|_| "0".into());
    let agent = std::env::var("TORCHELASTIC_USE_AGENT_STORE")
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    init_with(InitOptions {
        addr: env_var("MASTER_ADDR")?,
        port: env_num("MASTER_PORT")?,
        rank: env_num("RANK")?,
        world_size: env_num("WORLD_SIZE")?,
        timeout,
        rank0_serves_store: !agent,
        store_prefix: format!("ppl/{restart}"),
    })
}

/// Joins a group: connects to (or, on rank 0, serves) the store, waits until every rank has
/// arrived (an error naming the ranks that did not, after `timeout`), then builds the Gloo group.
pub fn init_with(opts: InitOptions) -> Result<ProcessGroup> {
    if !available() {
        return Err(Error::Distributed(
            "ppl was built without Gloo's headers: install them (Debian: apt-get install \
             libgloo-dev; `make setup` does it) and rebuild (cargo clean -p ppl-runtime)"
                .into(),
        ));
    }
    if opts.world_size == 0 || opts.rank >= opts.world_size {
        return Err(Error::Distributed(format!(
            "RANK is {} but WORLD_SIZE is {}: ranks run from 0 to WORLD_SIZE - 1",
            opts.rank, opts.world_size
        )));
    }
    let t = opts.timeout.as_secs_f64();
    let server = opts.rank0_serves_store && opts.rank == 0;
    let store = ffi::Store::new(
        &opts.addr,
        opts.port,
        server,
        opts.world_size,
        t,
        &opts.store_prefix,
    )
    .map_err(|e| {
        Error::Distributed(format!(
            "rank {}: cannot reach the rendezvous store at {}:{} within {t} s ({e})",
            opts.rank, opts.addr, opts.port
        ))
    })?;
    let store = Arc::new(store);
    let arrived = |r: usize| format!("ppl/arrived/{r}");
    store
        .set(&arrived(opts.rank), b"1")
        .map_err(|e| Error::Distributed(format!("rank {}: rendezvous: {e}", opts.rank)))?;
    // Poll rather than block, so that at the timeout this rank still knows who had arrived even
    // if the store's host (rank 0) has given up and gone meanwhile.
    let deadline = std::time::Instant::now() + opts.timeout;
    let mut seen = vec![false; opts.world_size];
    let mut store_error = None;
    loop {
        for (r, s) in seen.iter_mut().enumerate() {
            if !*s {
                match store.check(&arrived(r)) {
                    Ok(b) => *s = b,
                    Err(e) => store_error = Some(e),
                }
            }
        }
        if seen.iter().all(|&s| s) || store_error.is_some() || std::time::Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !seen.iter().all(|&s| s) {
        let missing: Vec<String> = (0..opts.world_size)
            .filter(|&r| !seen[r])
            .map(|r| r.to_string())
            .collect();
        let gone = store_error
            .map(|e| format!("; then the store went away ({e})"))
            .unwrap_or_default();
        return Err(Error::Distributed(format!(
            "rank {}: rank(s) {} never arrived within {t} s (WORLD_SIZE is {}: were that many \
             processes started?){gone}",
            opts.rank,
            missing.join(", "),
            opts.world_size
        )));
    }
    // Gloo's transport binds to the loopback address for a local group, and to this host's
    // address otherwise.
    let local = matches!(opts.addr.as_str(), "127.0.0.1" | "localhost" | "::1");
    let host = if local { "127.0.0.1" } else { "" };
    let group = ffi::Group::new(&store, opts.rank, opts.world_size, t, host)?.map_err(|e| {
        Error::Distributed(format!("rank {}: building the Gloo group: {e}", opts.rank))
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let beat = {
        let (store, stop) = (store.clone(), stop.clone());
        let key = format!("ppl/heartbeat/{}", opts.rank);
        std::thread::Builder::new()
            .name(format!("ppl-heartbeat-{}", opts.rank))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if store.add(&key, 1).is_err() {
                        break; // the store is gone (rank 0 finished): nothing left to tell
                    }
                    std::thread::sleep(HEARTBEAT);
                }
            })
            .map_err(|e| Error::Distributed(format!("cannot start the heartbeat thread: {e}")))?
    };
    Ok(ProcessGroup {
        store,
        group: Some(group),
        rank: opts.rank,
        world_size: opts.world_size,
        timeout: opts.timeout,
        addr: opts.addr,
        port: opts.port,
        heartbeat: Some((stop, beat)),
        exchanges: std::cell::Cell::new(0),
    })
}

impl ProcessGroup {
    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Whether this is rank 0 (the one that prints and writes files).
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// The timeout of the rendezvous and of each collective.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This rank's contiguous share of `n` items: ranks get `n / world` items each, the first
    /// `n % world` ranks one more.
    pub fn shard(&self, n: usize) -> std::ops::Range<usize> {
        let (q, r) = (n / self.world_size, n % self.world_size);
        let start = self.rank * q + self.rank.min(r);
        start..start + q + usize::from(self.rank < r)
    }

    fn group(&self) -> Result<&ffi::Group> {
        self.group
            .as_ref()
            .ok_or_else(|| Error::Internal("process group used after shutdown".into()))
    }

    /// Checks that `t` can take part in a Gloo collective.
    fn check_tensor(&self, op: &str, t: &Tensor) -> Result<()> {
        if t.device() != Device::Cpu {
            return Err(Error::Distributed(format!(
                "{op}: a tensor on {:?}; ppl's collectives run on Gloo, over CPU tensors (NCCL for \
                 CUDA tensors is not built yet)",
                t.device()
            )));
        }
        if !t.is_contiguous() {
            return Err(Error::Distributed(format!(
                "{op}: the tensor must be contiguous"
            )));
        }
        Ok(())
    }

    /// The error of a failed collective, naming the ranks whose heartbeat stopped.
    fn failed(&self, op: &str, why: String) -> Error {
        let read = |r: usize| self.store.add(&format!("ppl/heartbeat/{r}"), 0);
        let before: Vec<_> = (0..self.world_size).map(read).collect();
        std::thread::sleep(HEARTBEAT * 4);
        let after: Vec<_> = (0..self.world_size).map(read).collect();
        if before.iter().chain(&after).any(|v| v.is_err()) {
            return Error::Distributed(format!(
                "rank {}: {op} failed, and the rendezvous store at {}:{} is gone too (rank 0, \
                 which serves it, stopped?): {why}",
                self.rank, self.addr, self.port
            ));
        }
        let stopped: Vec<String> = (0..self.world_size)
            .filter(|&r| r != self.rank && before[r].as_ref().ok() == after[r].as_ref().ok())
            .map(|r| r.to_string())
            .collect();
        if stopped.is_empty() {
            Error::Distributed(format!(
                "rank {}: {op} failed while every rank is alive (all ranks must run the same \
                 collectives in the same order, on tensors of the same shapes): {why}",
                self.rank
            ))
        } else {
            Error::Distributed(format!(
                "rank {}: {op} failed: rank(s) {} stopped (no heartbeat): {why}",
                self.rank,
                stopped.join(", ")
            ))
        }
    }

    /// Sums `t` over all ranks, in place (every rank ends with the same sum).
    pub fn all_reduce_sum(&self, t: &Tensor) -> Result<()> {
        self.check_tensor("all_reduce", t)?;
        self.group()?
            .all_reduce_sum(t)
            .map_err(|e| self.failed("all_reduce", e))
    }

    /// Copies rank `root`'s `t` into every rank's `t`, in place.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<()> {
        self.check_tensor("broadcast", t)?;
        self.group()?
            .broadcast(t, root)
            .map_err(|e| self.failed("broadcast", e))
    }

    /// Every rank's `t`, stacked: shape `[world_size] + t.shape`, row `r` from rank `r`. The
    /// shapes must agree across ranks.
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let t = t.f_contiguous()?;
        self.check_tensor("all_gather", &t)?;
        let mut shape = vec![self.world_size as i64];
        shape.extend(t.size());
        let out = Tensor::f_empty(shape.as_slice(), (t.kind(), Device::Cpu))?;
        self.group()?
            .all_gather(&t, &out)
            .map_err(|e| self.failed("all_gather", e))?;
        Ok(out)
    }

    /// Every rank's bytes (of any lengths), in rank order.
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let len = Tensor::f_from_slice(&[bytes.len() as i64])?;
        let lens = Vec::<i64>::try_from(&self.all_gather(&len)?.f_reshape([-1])?)?;
        let max = lens.iter().copied().max().unwrap_or(0) as usize;
        let mut padded = bytes.to_vec();
        padded.resize(max, 0);
        let all = self.all_gather(&Tensor::f_from_slice(&padded)?)?;
        (0..self.world_size)
            .map(|r| {
                let row = Vec::<u8>::try_from(&all.f_get(r as i64)?)?;
                Ok(row[..lens[r] as usize].to_vec())
            })
            .collect()
    }

    /// Waits until every rank gets here.
    pub fn barrier(&self) -> Result<()> {
        self.group()?
            .barrier()
            .map_err(|e| self.failed("barrier", e))
    }

    /// Every rank's text under `key` in the store, in rank order (for checks that compare
    /// ranks: small values only).
    ///
    /// Every call has keys of its own (a count kept by the group, the same on every rank since
    /// all call in the same order), so no rank reads an earlier call's value; waiting polls, so
    /// the heartbeat thread keeps the store's connection between polls.
    pub(crate) fn exchange_text(&self, key: &str, text: &str) -> Result<Vec<String>> {
        let n = self.exchanges.get() + 1;
        self.exchanges.set(n);
        let k = |r: usize| format!("ppl/exchange/{n}/{key}/{r}");
        self.store
            .set(&k(self.rank), text.as_bytes())
            .map_err(|e| self.failed(key, e))?;
        let deadline = std::time::Instant::now() + self.timeout;
        let mut out = Vec::with_capacity(self.world_size);
        for r in 0..self.world_size {
            loop {
                match self.store.check(&k(r)) {
                    Ok(true) => break,
                    Ok(false) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Ok(false) => {
                        return Err(self.failed(
                            key,
                            format!(
                                "rank {r} did not send its `{key}` within {:?}",
                                self.timeout
                            ),
                        ))
                    }
                    Err(e) => return Err(self.failed(key, e)),
                }
            }
            let v = self.store.get(&k(r)).map_err(|e| self.failed(key, e))?;
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some((stop, beat)) = self.heartbeat.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = beat.join();
        }
        self.group = None;
    }
}

/// Sums float tensors over ranks in one buffer per dtype (one collective per dtype, not one per
/// tensor) and writes each back divided by the world size.
pub(crate) fn all_reduce_mean_flat(pg: &ProcessGroup, tensors: &[Tensor]) -> Result<()> {
    let mut kinds: Vec<Kind> = Vec::new();
    for t in tensors {
        if !kinds.contains(&t.kind()) {
            kinds.push(t.kind());
        }
    }
    let w = pg.world_size() as f64;
    for kind in kinds {
        let group: Vec<&Tensor> = tensors.iter().filter(|t| t.kind() == kind).collect();
        let flat: Vec<Tensor> = group
            .iter()
            .map(|t| t.f_reshape([-1]))
            .collect::<std::result::Result<_, _>>()?;
        let buf = Tensor::f_cat(&flat, 0)?.f_contiguous()?;
        pg.all_reduce_sum(&buf)?;
        let buf = buf.f_div_scalar(w)?;
        let mut at = 0i64;
        for t in group {
            let n = t.numel() as i64;
            let part = buf.f_narrow(0, at, n)?.f_view_as(t)?;
            let mut t = t.shallow_clone();
            tch::no_grad(|| t.f_copy_(&part).map(|_| ()))?;
            at += n;
        }
    }
    Ok(())
}
