//! Writing draws to disk: numpy's `.npy` format, `.npz` archives of them (uncompressed zip, as
//! `numpy.savez` writes) and CSV. Checked by hand: `cargo run --release --example eight_schools
//! -- --npz /tmp/es.npz` loads with numpy 2 (`mu` (4, 1000) float64, `theta_tilde` (4, 1000, 8):
//! chains, draws, event) and `arviz.from_dict(posterior=dict(numpy.load("/tmp/es.npz")))`
//! (ArviZ 0.23) summarizes it.

use std::io::Write;
use std::path::Path;

use indexmap::IndexMap;
use tch::{Device, Kind, Tensor};

use super::kernel::TransitionStats;
use super::results::unravel;
use crate::error::{Error, Result};

/// The values of an array to export.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// float64 (`<f8`).
    F64(Vec<f64>),
    /// int64 (`<i8`).
    I64(Vec<i64>),
    /// bool (`|b1`).
    Bool(Vec<bool>),
}

/// An n-dimensional array in row-major order, for `.npy`.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values.
    pub data: NpyData,
}

impl NpyArray {
    fn len(&self) -> usize {
        match &self.data {
            NpyData::F64(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::Bool(v) => v.len(),
        }
    }

    /// The bytes of the array as a `.npy` file (format version 1.0).
    pub fn to_npy(&self) -> Result<Vec<u8>> {
        let n: usize = self.shape.iter().product();
        if n != self.len() {
            return Err(Error::Shape(format!(
                "an array of shape {:?} with {} values",
                self.shape,
                self.len()
            )));
        }
        let descr = match self.data {
            NpyData::F64(_) => "<f8",
            NpyData::I64(_) => "<i8",
            NpyData::Bool(_) => "|b1",
        };
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // magic (6) + version (2) + header length (2) + header + '\n', a multiple of 64.
        let unpadded = 10 + header.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        header.extend(std::iter::repeat_n(' ', pad));
        header.push('\n');
        let hlen = u16::try_from(header.len())
            .map_err(|_| Error::Unsupported("the .npy header is too long".into()))?;
        let mut out = Vec::with_capacity(10 + header.len() + 8 * n);
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&hlen.to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        match &self.data {
            NpyData::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        }
        Ok(out)
    }
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// A zip archive with stored (uncompressed) entries.
fn zip_stored(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let too_big =
        || Error::Unsupported("the archive is over 4 GiB (zip64 is not supported)".into());
    let mut out = Vec::new();
    let mut central = Vec::new();
    // 1980-01-01 00:00 in DOS format.
    let (time, date) = (0u16, (1u16 << 5) | 1);
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).map_err(|_| too_big())?;
        let size = u32::try_from(data.len()).map_err(|_| too_big())?;
        let crc = crc32(data);
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::Unsupported(format!("archive entry name too long: {name}")))?;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            v.extend_from_slice(&time.to_le_bytes());
            v.extend_from_slice(&date.to_le_bytes());
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes()); // compressed
            v.extend_from_slice(&size.to_le_bytes()); // uncompressed
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&20u16.to_le_bytes()); // version needed
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    let cd_size = u32::try_from(central.len()).map_err(|_| too_big())?;
    let count = u16::try_from(entries.len())
        .map_err(|_| Error::Unsupported("more than 65535 archive entries".into()))?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk with the central directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    Ok(())
}

/// The bytes of an `.npz` archive holding the arrays under their names (`name.npy` inside).
pub fn npz_bytes(arrays: &[(String, NpyArray)]) -> Result<Vec<u8>> {
    let mut entries = Vec::with_capacity(arrays.len());
    for (name, a) in arrays {
        entries.push((format!("{name}.npy"), a.to_npy()?));
    }
    zip_stored(&entries)
}

/// Writes an `.npz` archive (as `numpy.savez`).
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(String, NpyArray)]) -> Result<()> {
    write_file(path.as_ref(), &npz_bytes(arrays)?)
}

/// The optional groups of [`super::Mcmc::write_inference_data_npz`], each a map from a site's
/// name to its array.
#[derive(Clone, Copy, Debug, Default)]
pub struct InferenceGroups<'a> {
    /// Pointwise log-likelihoods, `[chains, draws] + site batch shape`.
    pub log_likelihood: Option<&'a IndexMap<String, Tensor>>,
    /// Posterior predictive draws, `[chains, draws] + site shape`.
    pub posterior_predictive: Option<&'a IndexMap<String, Tensor>>,
    /// The observed data.
    pub observed_data: Option<&'a IndexMap<String, Tensor>>,
}

/// A tensor as a float64 `.npy` array.
fn tensor_array(t: &Tensor) -> Result<NpyArray> {
    let d = t
        .f_to_kind(Kind::Double)?
        .f_to_device(Device::Cpu)?
        .f_reshape([-1])?
        .f_contiguous()?;
    Ok(NpyArray {
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data: NpyData::F64(Vec::<f64>::try_from(&d)?),
    })
}

/// Writes a CSV file with a header row; numbers are written with full precision.
pub fn write_csv(path: impl AsRef<Path>, header: &[String], rows: &[Vec<f64>]) -> Result<()> {
    let mut s = String::new();
    s.push_str(&header.join(","));
    s.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    write_file(path.as_ref(), s.as_bytes())
}

impl super::Mcmc {
    /// Writes the draws to an `.npz` archive: one array per site, of shape
    /// `[num_chains, num_samples] + site shape`, float64 (`az.from_dict(posterior=dict(np.load(path)))`
    /// reads it in ArviZ).
    pub fn write_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        write_npz(path, &self.posterior_arrays()?)
    }

    fn posterior_arrays(&self) -> Result<Vec<(String, NpyArray)>> {
        let spec = self.spec_or_err()?;
        let mut arrays = Vec::new();
        for (k, s) in spec.sites.iter().enumerate() {
            let mut data = Vec::new();
            for ch in &self.chains {
                data.extend_from_slice(&ch.samples[k].1);
            }
            let mut shape = vec![self.chains.len(), self.num_samples];
            shape.extend(s.shape.iter().map(|&d| d as usize));
            arrays.push((
                s.name.clone(),
                NpyArray {
                    shape,
                    data: NpyData::F64(data),
                },
            ));
        }
        Ok(arrays)
    }

    /// Writes the sampler statistics to an `.npz` archive with ArviZ's names: `diverging`,
    /// `acceptance_rate`, `n_steps`, `tree_depth`, `energy` (each `[num_chains, num_samples]`)
    /// and `step_size` (`[num_chains]`).
    pub fn write_sample_stats_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        write_npz(path, &self.sample_stats_arrays())
    }

    fn sample_stats_arrays(&self) -> Vec<(String, NpyArray)> {
        let shape = vec![self.chains.len(), self.num_samples];
        let all = |f: &dyn Fn(&TransitionStats) -> f64| -> Vec<f64> {
            self.chains
                .iter()
                .flat_map(|c| c.stats.iter().map(f))
                .collect()
        };
        let arrays = vec![
            (
                "diverging".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::Bool(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.diverging))
                            .collect(),
                    ),
                },
            ),
            (
                "acceptance_rate".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::F64(all(&|s| s.accept_prob)),
                },
            ),
            (
                "n_steps".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::I64(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.num_steps as i64))
                            .collect(),
                    ),
                },
            ),
            (
                "tree_depth".to_string(),
                NpyArray {
                    shape: shape.clone(),
                    data: NpyData::I64(
                        self.chains
                            .iter()
                            .flat_map(|c| c.stats.iter().map(|s| s.tree_depth as i64))
                            .collect(),
                    ),
                },
            ),
            (
                "energy".to_string(),
                NpyArray {
                    shape,
                    data: NpyData::F64(all(&|s| s.energy)),
                },
            ),
            (
                "step_size".to_string(),
                NpyArray {
                    shape: vec![self.chains.len()],
                    data: NpyData::F64(self.chains.iter().map(|c| c.step_size).collect()),
                },
            ),
        ];
        arrays
    }

    /// Writes an ArviZ `InferenceData` as one `.npz`: arrays named `group/variable`, for the
    /// groups `posterior` (every latent site, `[chains, draws] + site shape`), `sample_stats`
    /// (ArviZ's names; `step_size` repeated per draw) and those of `groups` that are given:
    /// `log_likelihood` (from [`crate::infer::criticism::log_likelihood`]),
    /// `posterior_predictive` (`[chains, draws, ...]`) and `observed_data` (the data as is).
    /// `scripts/arviz_from_npz.py` reads it back with `az.from_dict(**groups)`, and then
    /// `az.loo` and `az.compare` accept it.
    pub fn write_inference_data_npz(
        &self,
        path: impl AsRef<Path>,
        groups: &InferenceGroups<'_>,
    ) -> Result<()> {
        let mut arrays: Vec<(String, NpyArray)> = Vec::new();
        for (k, a) in self.posterior_arrays()? {
            arrays.push((format!("posterior/{k}"), a));
        }
        let draws = self.num_samples;
        for (k, mut a) in self.sample_stats_arrays() {
            if k == "step_size" {
                if let NpyData::F64(v) = &a.data {
                    let per_draw: Vec<f64> = v
                        .iter()
                        .flat_map(|s| std::iter::repeat_n(*s, draws))
                        .collect();
                    a = NpyArray {
                        shape: vec![v.len(), draws],
                        data: NpyData::F64(per_draw),
                    };
                }
            }
            arrays.push((format!("sample_stats/{k}"), a));
        }
        for (group, sites, leading) in [
            ("log_likelihood", groups.log_likelihood, true),
            ("posterior_predictive", groups.posterior_predictive, true),
            ("observed_data", groups.observed_data, false),
        ] {
            let Some(sites) = sites else { continue };
            for (name, t) in sites {
                let a = tensor_array(t).map_err(|e| Error::AtSite {
                    site: name.clone(),
                    source: Box::new(e),
                })?;
                if leading && (a.shape.len() < 2 || a.shape[..2] != [self.chains.len(), draws]) {
                    return Err(Error::AtSite {
                        site: name.clone(),
                        source: Box::new(Error::Shape(format!(
                            "{group}: an array of shape {:?} where the posterior has [{}, {draws},                              ...] (chains, draws)",
                            a.shape,
                            self.chains.len()
                        ))),
                    });
                }
                arrays.push((format!("{group}/{name}"), a));
            }
        }
        write_npz(path, &arrays)
    }

    /// Writes the draws to a CSV file: columns `chain`, `draw`, one per element of every site
    /// (`theta[3]`), then `diverging` and `accept_prob`.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let spec = self.spec_or_err()?;
        let mut header = vec!["chain".to_string(), "draw".to_string()];
        for s in &spec.sites {
            let numel = Self::site_numel(&s.shape);
            if s.shape.is_empty() {
                header.push(s.name.clone());
            } else {
                for j in 0..numel {
                    header.push(format!("{}[{}]", s.name, unravel(j, &s.shape)));
                }
            }
        }
        header.push("diverging".into());
        header.push("accept_prob".into());
        let mut rows = Vec::new();
        for (c, ch) in self.chains.iter().enumerate() {
            for i in 0..self.num_samples {
                let mut r = vec![c as f64, i as f64];
                for (k, s) in spec.sites.iter().enumerate() {
                    let numel = Self::site_numel(&s.shape);
                    r.extend_from_slice(&ch.samples[k].1[i * numel..(i + 1) * numel]);
                }
                r.push(f64::from(u8::from(ch.stats[i].diverging)));
                r.push(ch.stats[i].accept_prob);
                rows.push(r);
            }
        }
        write_csv(path, &header, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn npy_header_is_aligned() {
        let a = NpyArray {
            shape: vec![2, 3],
            data: NpyData::F64(vec![0.0; 6]),
        };
        let b = a.to_npy().expect("npy");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(b.len(), 10 + hlen + 48);
        let h = std::str::from_utf8(&b[10..10 + hlen]).expect("ascii");
        assert!(h.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(h.ends_with('\n'));
    }
}
