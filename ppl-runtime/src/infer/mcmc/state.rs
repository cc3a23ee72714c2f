//! Where chains stopped (NumPyro's `MCMC.last_state` / `post_warmup_state`): each chain's
//! position, step size, inverse mass matrix and random stream. A run started from it
//! ([`Mcmc::resume`](super::Mcmc::resume)) skips warmup and continues every chain draw for draw as
//! if it had never stopped; [`McmcState::save`] and [`McmcState::load`] keep it in a safetensors
//! file between processes.

use std::path::Path;

use rand::SeedableRng;
use tch::Tensor;

use super::mass_matrix::InverseMassMatrix;
use super::model_spec::ModelSpec;
use super::ChainRng;
use crate::error::{Error, Result};
use crate::params::tensor_file::{TensorFile, TensorFileWriter};

/// The `format` of an MCMC state file.
const FORMAT: &str = "ppl-mcmc-state";

/// Where one chain stopped.
#[derive(Clone, Debug)]
pub struct ChainState {
    /// The unconstrained position.
    pub z: Vec<f64>,
    /// The step size (adapted in warmup).
    pub step_size: f64,
    /// The inverse mass matrix (adapted in warmup).
    pub inverse_mass_matrix: InverseMassMatrix,
    /// The chain's random stream where it stopped.
    pub(crate) rng: ChainRng,
}

/// Where every chain of a run stopped, with the latent sites' layout it applies to.
#[derive(Clone, Debug)]
pub struct McmcState {
    /// One state per chain.
    pub chains: Vec<ChainState>,
    /// The latent sites' names and unconstrained sizes, in the flat vector's order.
    pub sites: Vec<(String, usize)>,
}

impl McmcState {
    pub(crate) fn layout(spec: &ModelSpec) -> Vec<(String, usize)> {
        spec.sites
            .iter()
            .map(|s| (s.name.clone(), s.numel))
            .collect()
    }

    /// Errors unless this state fits `spec`'s latent sites and `num_chains` chains, naming what
    /// differs.
    pub(crate) fn check(&self, spec: &ModelSpec, num_chains: usize) -> Result<()> {
        let here = McmcState::layout(spec);
        if here != self.sites {
            let show = |v: &[(String, usize)]| {
                v.iter()
                    .map(|(n, k)| format!("{n} ({k})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::Invalid(format!(
                "the MCMC state to resume from has latent sites [{}] (unconstrained sizes), but \
                 the model has [{}]",
                show(&self.sites),
                show(&here)
            )));
        }
        if self.chains.len() != num_chains {
            return Err(Error::Invalid(format!(
                "the MCMC state to resume from has {} chains, but this run asks for {num_chains} \
                 (set num_chains to match)",
                self.chains.len()
            )));
        }
        Ok(())
    }

    /// Writes the state as safetensors (atomically: a temporary file renamed over `path`).
    /// Positions, step sizes and mass matrices are float64 tensors (`chain{c}/z`,
    /// `chain{c}/step_size`, `chain{c}/inverse_mass_matrix`), the random streams bytes
    /// (`chain{c}/rng`); the sites' layout is in the metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = TensorFileWriter::new(FORMAT);
        w.meta("num_chains", self.chains.len().to_string());
        w.meta(
            "sites",
            self.sites
                .iter()
                .map(|(n, k)| format!("{n}\t{k}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        for (c, ch) in self.chains.iter().enumerate() {
            w.tensor(&format!("chain{c}/z"), &Tensor::f_from_slice(&ch.z)?)?;
            w.tensor(
                &format!("chain{c}/step_size"),
                &Tensor::f_from_slice(&[ch.step_size])?,
            )?;
            let (dense, m) = match &ch.inverse_mass_matrix {
                InverseMassMatrix::Diagonal(d) => (false, d.clone()),
                InverseMassMatrix::Dense { matrix, .. } => (true, matrix.clone()),
            };
            w.meta(format!("chain{c}.dense"), dense.to_string());
            w.tensor(
                &format!("chain{c}/inverse_mass_matrix"),
                &Tensor::f_from_slice(&m)?,
            )?;
            w.bytes(&format!("chain{c}/rng"), &rng_to_bytes(&ch.rng))?;
        }
        w.write(path.as_ref())
    }

    /// Reads a state [`McmcState::save`] wrote.
    pub fn load(path: impl AsRef<Path>) -> Result<McmcState> {
        let path = path.as_ref();
        let f = TensorFile::read(path, &[FORMAT])?;
        let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
        let n: usize = f
            .meta_required("num_chains")?
            .parse()
            .map_err(|_| bad("bad `num_chains`".into()))?;
        let mut sites = Vec::new();
        for line in f.meta_required("sites")?.lines() {
            let (name, k) = line
                .split_once('\t')
                .ok_or_else(|| bad(format!("bad site entry {line:?}")))?;
            let k = k
                .parse()
                .map_err(|_| bad(format!("bad site size in {line:?}")))?;
            sites.push((name.to_string(), k));
        }
        let dim: usize = sites.iter().map(|(_, k)| k).sum();
        let f64s = |name: String| -> Result<Vec<f64>> {
            let t = f.tensor(&name)?;
            if t.kind() != tch::Kind::Double {
                return Err(bad(format!("`{name}` is {:?}, not float64", t.kind())));
            }
            Ok(Vec::<f64>::try_from(&t.f_reshape([-1])?)?)
        };
        let mut chains = Vec::with_capacity(n);
        for c in 0..n {
            let z = f64s(format!("chain{c}/z"))?;
            if z.len() != dim {
                return Err(bad(format!(
                    "chain {c}'s position has {} values; its sites have {dim}",
                    z.len()
                )));
            }
            let step_size = f64s(format!("chain{c}/step_size"))?
                .first()
                .copied()
                .ok_or_else(|| bad(format!("chain {c} has no step size")))?;
            let m = f64s(format!("chain{c}/inverse_mass_matrix"))?;
            let inverse_mass_matrix = match f.meta_required(&format!("chain{c}.dense"))? {
                "true" if m.len() == dim * dim => InverseMassMatrix::dense(m, dim)?,
                "false" if m.len() == dim => InverseMassMatrix::Diagonal(m),
                _ => {
                    return Err(bad(format!(
                        "chain {c}'s inverse mass matrix has {} values for dimension {dim}",
                        m.len()
                    )))
                }
            };
            let rng = rng_from_bytes(&f.bytes(&format!("chain{c}/rng"))?)
                .ok_or_else(|| bad(format!("chain {c}'s random stream is not 56 bytes")))?;
            chains.push(ChainState {
                z,
                step_size,
                inverse_mass_matrix,
                rng,
            });
        }
        Ok(McmcState { chains, sites })
    }
}

/// A chain's random stream as 56 bytes: its seed, stream and word position.
pub(crate) fn rng_to_bytes(rng: &ChainRng) -> Vec<u8> {
    let mut out = Vec::with_capacity(56);
    out.extend_from_slice(&rng.get_seed());
    out.extend_from_slice(&rng.get_stream().to_le_bytes());
    out.extend_from_slice(&rng.get_word_pos().to_le_bytes());
    out
}

/// The stream [`rng_to_bytes`] wrote (`None` unless 56 bytes).
pub(crate) fn rng_from_bytes(r: &[u8]) -> Option<ChainRng> {
    if r.len() != 56 {
        return None;
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&r[..32]);
    let mut rng = ChainRng::from_seed(seed);
    let mut stream = [0u8; 8];
    stream.copy_from_slice(&r[32..40]);
    rng.set_stream(u64::from_le_bytes(stream));
    let mut word = [0u8; 16];
    word.copy_from_slice(&r[40..56]);
    rng.set_word_pos(u128::from_le_bytes(word));
    Some(rng)
}
