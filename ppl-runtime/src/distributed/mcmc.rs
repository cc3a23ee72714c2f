//! Distributed MCMC: chains spread over ranks ([`run_chains`]), and embarrassingly parallel MCMC
//! over data shards combined by NumPyro's consensus Monte Carlo rules ([`consensus`],
//! [`parametric_draws`]).

use indexmap::IndexMap;
use tch::{Device, Kind, Tensor};

use super::ProcessGroup;
use crate::error::{Error, Result};
use crate::infer::mcmc::kernel::TransitionStats;
use crate::infer::mcmc::state::{rng_from_bytes, rng_to_bytes};
use crate::infer::mcmc::{ChainResult, ChainState, InverseMassMatrix, Mcmc};

/// Runs `mcmc`'s chains spread over the ranks of `pg`: rank `r` runs its contiguous share of
/// the chains (`pg.shard(num_chains)`), each on its own thread as [`Mcmc::run_parallel`] does,
/// with the seed and initial point of its global chain index. Then every rank's chains are
/// gathered on every rank, so `summary()`, R-hat, `last_state()` and the exports see all chains
/// (rank 0 prints and writes). Chain `c` makes the same draws as in a single-process run with
/// the same seed. Without a seed, rank 0 draws one and sends it to all.
///
/// A chain that fails on one rank fails the call on every rank, with that rank's message.
pub fn run_chains<M, R, F>(pg: &ProcessGroup, mcmc: &mut Mcmc, make_model: F) -> Result<()>
where
    F: Fn(usize) -> M + Sync,
    M: Fn() -> Result<R>,
{
    let seed = match mcmc.get_seed() {
        Some(s) => s,
        None => {
            let s = crate::primitives::with_rng(rand::Rng::random::<u32>) as i64;
            let t = Tensor::f_from_slice(&[s])?;
            pg.broadcast(&t, 0)?;
            t.f_int64_value(&[0])? as u64
        }
    };
    mcmc.set_seed(seed);
    mcmc.chain_subset = Some(pg.shard(mcmc.get_num_chains()));
    let ran = mcmc.run_parallel(make_model);
    mcmc.chain_subset = None;
    let mut payload = Vec::new();
    match &ran {
        Ok(()) => {
            payload.push(0u8);
            for c in mcmc.chains() {
                write_chain(&mut payload, c);
            }
        }
        Err(e) => {
            payload.push(1u8);
            payload.extend_from_slice(e.to_string().as_bytes());
        }
    }
    let all = pg.all_gather_bytes(&payload)?;
    let mut chains = Vec::with_capacity(mcmc.get_num_chains());
    for (r, bytes) in all.iter().enumerate() {
        match bytes.split_first() {
            Some((0, rest)) => {
                let mut rd = Reader { b: rest, at: 0 };
                while rd.at < rest.len() {
                    chains.push(read_chain(&mut rd).ok_or_else(|| {
                        Error::Distributed(format!("rank {r} sent a malformed chain"))
                    })?);
                }
            }
            Some((_, msg)) => {
                return Err(Error::Distributed(format!(
                    "rank {r} failed running its chains: {}",
                    String::from_utf8_lossy(msg)
                )))
            }
            None => return Err(Error::Distributed(format!("rank {r} sent nothing"))),
        }
    }
    mcmc.set_chains(chains);
    Ok(())
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_f64(b: &mut Vec<u8>, v: f64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_u64(b, v.len() as u64);
    b.extend_from_slice(v);
}
fn put_f64s(b: &mut Vec<u8>, v: &[f64]) {
    put_u64(b, v.len() as u64);
    for x in v {
        put_f64(b, *x);
    }
}
fn put_mass(b: &mut Vec<u8>, m: &InverseMassMatrix) {
    match m {
        InverseMassMatrix::Diagonal(d) => {
            b.push(0);
            put_f64s(b, d);
        }
        InverseMassMatrix::Dense { matrix, dim, .. } => {
            b.push(1);
            put_u64(b, *dim as u64);
            put_f64s(b, matrix);
        }
    }
}

/// One chain's results as bytes (what ranks send each other).
fn write_chain(b: &mut Vec<u8>, c: &ChainResult) {
    put_u64(b, c.samples.len() as u64);
    for (name, v) in &c.samples {
        put_bytes(b, name.as_bytes());
        put_f64s(b, v);
    }
    put_f64s(b, &c.unconstrained);
    put_u64(b, c.stats.len() as u64);
    for s in &c.stats {
        put_f64(b, s.accept_prob);
        b.push(u8::from(s.diverging));
        put_u64(b, s.num_steps as u64);
        put_u64(b, s.tree_depth as u64);
        put_f64(b, s.energy);
    }
    put_u64(b, c.warmup_divergences as u64);
    put_f64(b, c.warmup_mean_accept_prob);
    put_f64(b, c.step_size);
    put_mass(b, &c.inverse_mass_matrix);
    put_u64(b, c.warmup_grad_evals as u64);
    put_u64(b, c.sample_grad_evals as u64);
    put_f64(b, c.warmup_seconds);
    put_f64(b, c.sample_seconds);
    put_f64s(b, &c.last_state.z);
    put_f64(b, c.last_state.step_size);
    put_mass(b, &c.last_state.inverse_mass_matrix);
    put_bytes(b, &rng_to_bytes(&c.last_state.rng));
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take(8)
            .and_then(|s| s.try_into().ok())
            .map(f64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u64()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn f64s(&mut self) -> Option<Vec<f64>> {
        let n = self.u64()? as usize;
        (0..n).map(|_| self.f64()).collect()
    }
    fn mass(&mut self) -> Option<InverseMassMatrix> {
        match self.u8()? {
            0 => Some(InverseMassMatrix::Diagonal(self.f64s()?)),
            _ => {
                let dim = self.u64()? as usize;
                InverseMassMatrix::dense(self.f64s()?, dim).ok()
            }
        }
    }
}

fn read_chain(r: &mut Reader<'_>) -> Option<ChainResult> {
    let ns = r.u64()? as usize;
    // Counts come off the wire: never reserve more than the bytes left could hold.
    let mut samples = Vec::with_capacity(ns.min(r.b.len() - r.at));
    for _ in 0..ns {
        let name = String::from_utf8(r.bytes()?).ok()?;
        samples.push((name, r.f64s()?));
    }
    let unconstrained = r.f64s()?;
    let nstats = r.u64()? as usize;
    let mut stats = Vec::with_capacity(nstats.min(r.b.len() - r.at));
    for _ in 0..nstats {
        stats.push(TransitionStats {
            accept_prob: r.f64()?,
            diverging: r.u8()? != 0,
            num_steps: r.u64()? as usize,
            tree_depth: r.u64()? as usize,
            energy: r.f64()?,
        });
    }
    Some(ChainResult {
        samples,
        unconstrained,
        stats,
        warmup_divergences: r.u64()? as usize,
        warmup_mean_accept_prob: r.f64()?,
        step_size: r.f64()?,
        inverse_mass_matrix: r.mass()?,
        warmup_grad_evals: r.u64()? as usize,
        sample_grad_evals: r.u64()? as usize,
        warmup_seconds: r.f64()?,
        sample_seconds: r.f64()?,
        last_state: ChainState {
            z: r.f64s()?,
            step_size: r.f64()?,
            inverse_mass_matrix: r.mass()?,
            rng: rng_from_bytes(&r.bytes()?)?,
        },
    })
}

/// Site names with their event shapes, in the flattened columns' order.
type Sites = Vec<(String, Vec<i64>)>;

/// The draws of each subposterior flattened to `[n, D]` float64 matrices (sites in the first
/// subposterior's order), with the sites' shapes to undo it.
fn flatten(subposteriors: &[IndexMap<String, Tensor>]) -> Result<(Vec<Tensor>, Sites)> {
    let first = subposteriors
        .first()
        .ok_or_else(|| Error::Invalid("consensus: no subposteriors to combine".into()))?;
    let mut sites: Sites = Vec::new();
    for (k, t) in first {
        if t.dim() == 0 {
            return Err(Error::Shape(format!(
                "consensus: site `{k}` is a scalar; each site needs its draws in the first dim"
            )));
        }
        sites.push((k.clone(), t.size()[1..].to_vec()));
    }
    let n = subposteriors
        .iter()
        .filter_map(|s| s.values().next().map(|t| t.size()[0]))
        .min()
        .unwrap_or(0);
    let mut mats = Vec::with_capacity(subposteriors.len());
    for (k, sub) in subposteriors.iter().enumerate() {
        let mut cols = Vec::with_capacity(sites.len());
        for (name, shape) in &sites {
            let t = sub.get(name).ok_or_else(|| Error::MissingSite {
                site: name.clone(),
                message: format!("subposterior {k} has no draws of this site"),
            })?;
            if t.dim() == 0 || t.size()[1..] != shape[..] {
                return Err(Error::Shape(format!(
                    "consensus: site `{name}` has shape {:?} in subposterior {k} but {shape:?} in \
                     subposterior 0",
                    &t.size()[1..]
                )));
            }
            cols.push(
                t.f_narrow(0, 0, n)?
                    .f_to_kind(Kind::Double)?
                    .f_to_device(Device::Cpu)?
                    .f_reshape([n, -1])?,
            );
        }
        mats.push(Tensor::f_cat(&cols, 1)?);
    }
    Ok((mats, sites))
}

/// Splits `[n, D]` draws back into sites.
fn unflatten(x: &Tensor, sites: &[(String, Vec<i64>)]) -> Result<IndexMap<String, Tensor>> {
    let n = x.size()[0];
    let mut out = IndexMap::new();
    let mut at = 0;
    for (name, shape) in sites {
        let k: i64 = shape.iter().product();
        let mut full = vec![n];
        full.extend(shape);
        out.insert(
            name.clone(),
            x.f_narrow(1, at, k)?.f_reshape(full.as_slice())?,
        );
        at += k;
    }
    Ok(out)
}

/// The inverse of each subposterior's sample covariance (`diagonal`: of its variances only).
fn precisions(mats: &[Tensor], diagonal: bool) -> Result<Vec<Tensor>> {
    mats.iter()
        .map(|x| {
            let centered = x - x.f_mean_dim(0, true, Kind::Double)?;
            let n = x.size()[0] as f64;
            let cov = centered.f_transpose(0, 1)?.f_matmul(&centered)? / (n - 1.0);
            Ok(if diagonal {
                cov.f_diagonal(0, 0, 1)?
                    .f_reciprocal()?
                    .f_diag_embed(0, -2, -1)?
            } else {
                Tensor::f_linalg_inv(&cov)?
            })
        })
        .collect()
}

/// Consensus Monte Carlo (Scott et al. 2016; NumPyro's `consensus`): combines draws of
/// subposteriors, each made from one shard of the data (with the prior raised to `1/K`), into
/// draws of the full posterior: draw `i` is `(Σ W_k)⁻¹ Σ W_k x_k[i]`, `W_k` the inverse sample
/// covariance of subposterior `k` (`diagonal`: of its variances). Exact when the subposteriors
/// are Gaussian. Each subposterior maps sites to draws `[n, ...]`; the result has
/// `min n` draws per site.
pub fn consensus(
    subposteriors: &[IndexMap<String, Tensor>],
    diagonal: bool,
) -> Result<IndexMap<String, Tensor>> {
    let (mats, sites) = flatten(subposteriors)?;
    let w = precisions(&mats, diagonal)?;
    let total = w
        .iter()
        .skip(1)
        .try_fold(w[0].shallow_clone(), |a, b| a.f_add(b))?;
    let mut weighted = mats[0].f_matmul(&w[0])?;
    for (x, wk) in mats.iter().zip(&w).skip(1) {
        weighted = weighted.f_add(&x.f_matmul(wk)?)?;
    }
    // (Σ W)⁻¹ is symmetric: row i of the result is (Σ W)⁻¹ Σ W_k x_k[i].
    let combined = weighted.f_matmul(&Tensor::f_linalg_inv(&total)?)?;
    unflatten(&combined, &sites)
}

/// NumPyro's `parametric_draws`: fits a Gaussian to each subposterior, takes their product
/// (precision `Σ Σ_k⁻¹`, mean `(Σ Σ_k⁻¹)⁻¹ Σ Σ_k⁻¹ μ_k`) and draws `num_draws` from it (with
/// torch's generator).
pub fn parametric_draws(
    subposteriors: &[IndexMap<String, Tensor>],
    num_draws: i64,
    diagonal: bool,
) -> Result<IndexMap<String, Tensor>> {
    let (mats, sites) = flatten(subposteriors)?;
    let w = precisions(&mats, diagonal)?;
    let d = mats[0].size()[1];
    let mut precision = Tensor::f_zeros([d, d], (Kind::Double, Device::Cpu))?;
    let mut shift = Tensor::f_zeros([d], (Kind::Double, Device::Cpu))?;
    for (x, wk) in mats.iter().zip(&w) {
        precision = precision.f_add(wk)?;
        let mu = x.f_mean_dim(0, false, Kind::Double)?;
        shift = shift.f_add(&wk.f_mv(&mu)?)?;
    }
    let cov = Tensor::f_linalg_inv(&precision)?;
    let mean = cov.f_mv(&shift)?;
    let cov = (&cov + cov.f_transpose(0, 1)?) / 2.0;
    let chol = cov.f_linalg_cholesky(false)?;
    let eps = Tensor::f_randn([num_draws, d], (Kind::Double, Device::Cpu))?;
    let x = eps.f_matmul(&chol.f_transpose(0, 1)?)?.f_add(&mean)?;
    unflatten(&x, &sites)
}
