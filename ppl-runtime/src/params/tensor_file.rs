//! Safetensors files with a `format` tag in their metadata: what the param store, checkpoints and
//! MCMC states are written as, so that anything that reads safetensors (Python's `safetensors`,
//! `scripts/pyro_param_store.py`) reads them too.
//!
//! Files are written whole to a temporary file beside the target and renamed over it, so a crash
//! mid-write never leaves half a file where a good one was.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tmp.set_file_name(format!(".{name}.tmp{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        // On disk before the rename, so a crash leaves the old file or the new, never an empty one.
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
}

/// A safetensors file being assembled.
pub(crate) struct TensorFileWriter {
    meta: HashMap<String, String>,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl TensorFileWriter {
    /// An empty file whose metadata says `format: <format>`.
    pub(crate) fn new(format: &str) -> TensorFileWriter {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), format.to_string());
        TensorFileWriter {
            meta,
            tensors: Vec::new(),
        }
    }

    /// A metadata entry.
    pub(crate) fn meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.meta.insert(key.into(), value.into());
    }

    /// Whether a tensor of this name was added.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.tensors.iter().any(|(n, ..)| n == name)
    }

    /// Adds `t` (detached, copied to the CPU) under `name`. Float32, float64, int64, int32,
    /// uint8 and bool tensors are written bit for bit; others are an error naming the tensor.
    pub(crate) fn tensor(&mut self, name: &str, t: &Tensor) -> Result<()> {
        if self.has(name) {
            return Err(Error::Checkpoint(format!("two tensors named `{name}`")));
        }
        let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let flat = t.f_reshape([-1])?;
        let (dtype, data): (Dtype, Vec<u8>) = match t.kind() {
            Kind::Float => (
                Dtype::F32,
                le_bytes(Vec::<f32>::try_from(&flat)?, f32::to_le_bytes),
            ),
            Kind::Double => (
                Dtype::F64,
                le_bytes(Vec::<f64>::try_from(&flat)?, f64::to_le_bytes),
            ),
            Kind::Int64 => (
                Dtype::I64,
                le_bytes(Vec::<i64>::try_from(&flat)?, i64::to_le_bytes),
            ),
            Kind::Int => (
                Dtype::I32,
                le_bytes(Vec::<i32>::try_from(&flat)?, i32::to_le_bytes),
            ),
            Kind::Uint8 => (Dtype::U8, Vec::<u8>::try_from(&flat)?),
            Kind::Bool => (
                Dtype::BOOL,
                Vec::<u8>::try_from(&flat.f_to_kind(Kind::Uint8)?)?,
            ),
            other => {
                return Err(Error::Checkpoint(format!(
                    "tensor `{name}` is {other:?}; safetensors files here take float32, float64, \
                     int64, int32, uint8 and bool tensors"
                )))
            }
        };
        let shape = t.size().iter().map(|&d| d as usize).collect();
        self.tensors.push((name.to_string(), dtype, shape, data));
        Ok(())
    }

    /// Adds raw bytes as a uint8 vector.
    pub(crate) fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.tensor(name, &Tensor::f_from_slice(bytes)?)
    }

    /// Writes the file (atomically: a temporary file renamed over `path`).
    pub(crate) fn write(self, path: &Path) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(n, dt, shape, data)| {
                TensorView::new(*dt, shape.clone(), data)
                    .map(|v| (n.as_str(), v))
                    .map_err(|e| Error::Checkpoint(format!("tensor `{n}`: {e:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::tensor::serialize(views, &Some(self.meta))
            .map_err(|e| Error::Checkpoint(format!("{}: {e:?}", path.display())))?;
        write_atomic(path, &bytes)
    }
}

fn le_bytes<T: Copy, const N: usize>(v: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.into_iter().flat_map(f).collect()
}

/// A safetensors file read whole.
pub(crate) struct TensorFile {
    path: PathBuf,
    buffer: Vec<u8>,
    meta: HashMap<String, String>,
    names: Vec<String>,
}

impl TensorFile {
    /// Reads `path`; errors unless its metadata's `format` is one of `formats`.
    pub(crate) fn read(path: &Path, formats: &[&str]) -> Result<TensorFile> {
        let buffer = std::fs::read(path).map_err(io(path))?;
        let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
        let (_, header) = SafeTensors::read_metadata(&buffer)
            .map_err(|e| bad(format!("not a safetensors file ({e:?})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let format = meta.get("format").cloned().unwrap_or_default();
        if !formats.contains(&format.as_str()) {
            return Err(bad(format!(
                "metadata `format` is {format:?}; expected {}",
                formats
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let names = SafeTensors::deserialize(&buffer)
            .map_err(|e| bad(format!("{e:?}")))?
            .names()
            .into_iter()
            .cloned()
            .collect();
        Ok(TensorFile {
            path: path.to_path_buf(),
            buffer,
            meta,
            names,
        })
    }

    fn bad(&self, what: String) -> Error {
        Error::Checkpoint(format!("{}: {what}", self.path.display()))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata's `format`.
    pub(crate) fn format(&self) -> &str {
        self.meta.get("format").map(String::as_str).unwrap_or("")
    }

    /// A metadata entry.
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// A metadata entry that must be there.
    pub(crate) fn meta_required(&self, key: &str) -> Result<&str> {
        self.meta(key)
            .ok_or_else(|| self.bad(format!("no `{key}` in the metadata")))
    }

    /// The tensors' names, in the file's order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensor `name` (on the CPU), or `None` when the file has none of that name.
    pub(crate) fn get(&self, name: &str) -> Result<Option<Tensor>> {
        let st = SafeTensors::deserialize(&self.buffer).map_err(|e| self.bad(format!("{e:?}")))?;
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => Tensor::f_from_slice(&from_le(data, f32::from_le_bytes))?,
            Dtype::F64 => Tensor::f_from_slice(&from_le(data, f64::from_le_bytes))?,
            Dtype::I64 => Tensor::f_from_slice(&from_le(data, i64::from_le_bytes))?,
            Dtype::I32 => Tensor::f_from_slice(&from_le(data, i32::from_le_bytes))?,
            Dtype::U8 => Tensor::f_from_slice(data)?,
            Dtype::BOOL => Tensor::f_from_slice(data)?.f_to_kind(Kind::Bool)?,
            other => {
                return Err(self.bad(format!(
                    "tensor `{name}` has dtype {other:?}, which ppl does not read"
                )))
            }
        };
        Ok(Some(t.f_reshape(shape.as_slice())?))
    }

    /// The tensor `name`, which must be there.
    pub(crate) fn tensor(&self, name: &str) -> Result<Tensor> {
        self.get(name)?
            .ok_or_else(|| self.bad(format!("no tensor `{name}`")))
    }

    /// The uint8 tensor `name` as bytes.
    pub(crate) fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        Ok(Vec::<u8>::try_from(&self.tensor(name)?)?)
    }
}

fn from_le<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// Whether the file at `path` starts like a safetensors file (an 8-byte header length, then
/// `{`), rather than a libtorch archive (a zip file).
pub(crate) fn is_safetensors(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let n = f.read(&mut head).map_err(io(path))?;
    Ok(n == 9 && head[8] == b'{')
}
