//! The data: the offline multi-digit set shipped with the example and real MNIST IDX files.

use std::io::Read;
use std::path::Path;

use ppl::tch::{Device, Kind, Tensor};
use rand::{Rng, SeedableRng};

/// Images (n, size, size) in [0, 1] as f32, and the number of digits on each (n) as f32.
pub struct MultiDigits {
    /// The images.
    pub images: Tensor,
    /// The true counts.
    pub counts: Tensor,
}

impl MultiDigits {
    /// The number of images.
    pub fn len(&self) -> i64 {
        self.images.size()[0]
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `start..start + n`.
    pub fn slice(&self, start: i64, n: i64) -> MultiDigits {
        MultiDigits {
            images: self.images.narrow(0, start, n),
            counts: self.counts.narrow(0, start, n),
        }
    }

    /// Both tensors moved to `device`.
    pub fn to_device(&self, device: Device) -> MultiDigits {
        MultiDigits {
            images: self.images.to_device(device),
            counts: self.counts.to_device(device),
        }
    }
}

fn read_maybe_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// The default data file, `examples/air/data/multi_digits.bin`.
pub fn default_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("air/data/multi_digits.bin")
}

/// Reads a file written by `make_data.py` (gzip of `b"AIRD"`, u32 n, height, width, pixels,
/// counts).
pub fn load_multi_digits(path: impl AsRef<Path>) -> std::io::Result<MultiDigits> {
    let b = read_maybe_gz(path.as_ref())?;
    if b.len() < 16 || &b[0..4] != b"AIRD" {
        return Err(bad(format!(
            "{}: not an AIRD file",
            path.as_ref().display()
        )));
    }
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let (n, h, w) = (u(4), u(8), u(12));
    if b.len() != 16 + n * h * w + n {
        return Err(bad(format!("{}: wrong length", path.as_ref().display())));
    }
    let images = Tensor::from_slice(&b[16..16 + n * h * w])
        .view([n as i64, h as i64, w as i64])
        .to_kind(Kind::Float)
        / 255.0;
    let counts = Tensor::from_slice(&b[16 + n * h * w..]).to_kind(Kind::Float);
    Ok(MultiDigits { images, counts })
}

/// Reads an IDX file of unsigned bytes (optionally gzip-compressed): its dims and its data.
pub fn read_idx_u8(path: impl AsRef<Path>) -> std::io::Result<(Vec<usize>, Vec<u8>)> {
    let b = read_maybe_gz(path.as_ref())?;
    if b.len() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08 {
        return Err(bad(format!(
            "{}: not a u8 IDX file",
            path.as_ref().display()
        )));
    }
    let nd = b[3] as usize;
    let mut dims = Vec::with_capacity(nd);
    for k in 0..nd {
        let i = 4 + 4 * k;
        let d = b
            .get(i..i + 4)
            .ok_or_else(|| bad("truncated IDX header".into()))?;
        dims.push(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize);
    }
    let start = 4 + 4 * nd;
    let len: usize = dims.iter().product();
    if b.len() != start + len {
        return Err(bad(format!("{}: wrong length", path.as_ref().display())));
    }
    Ok((dims, b[start..].to_vec()))
}

/// Composes `n` canvases of side `canvas` from digit images (m, h, h) in [0, 1] the way Pyro's
/// `multi_mnist` does (and `make_data.py` with scikit-learn's digits): each canvas holds
/// 0..=`max_digits` digits (uniformly); each digit is resized by `1 / s` with
/// `s ~ N(1.3, 0.1)` and placed uniformly at random; a canvas whose digits overlap (a summed
/// pixel above 1) is drawn again (up to 100 times, then kept, clamped).
pub fn compose(
    digits: &Tensor,
    n: usize,
    canvas: i64,
    max_digits: usize,
    seed: u64,
) -> MultiDigits {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let m = digits.size()[0];
    let side = digits.size()[1];
    let place = |rng: &mut rand::rngs::StdRng| {
        let d = digits.get(rng.random_range(0..m)).to_kind(Kind::Float);
        // A standard normal draw by Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let size = ((side as f64 / (1.3 + 0.1 * z)) as i64).clamp(1, canvas - 1);
        let small = d
            .view([1, 1, side, side])
            .upsample_bilinear2d([size, size], false, None, None)
            .view([size, size])
            .clamp(0.0, 1.0);
        let r = rng.random_range(0..canvas - size);
        let c = rng.random_range(0..canvas - size);
        let img = Tensor::zeros([canvas, canvas], (Kind::Float, Device::Cpu));
        img.narrow(0, r, size).narrow(1, c, size).copy_(&small);
        img
    };
    let mut images = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        let k = rng.random_range(0..=max_digits);
        let mut img = Tensor::zeros([canvas, canvas], (Kind::Float, Device::Cpu));
        for _attempt in 0..100 {
            img = Tensor::zeros([canvas, canvas], (Kind::Float, Device::Cpu));
            for _ in 0..k {
                img += place(&mut rng);
            }
            if img.max().double_value(&[]) <= 1.0 {
                break;
            }
        }
        images.push(img.clamp(0.0, 1.0));
        counts.push(k as f32);
    }
    MultiDigits {
        images: Tensor::stack(&images, 0),
        counts: Tensor::from_slice(&counts),
    }
}

/// Multi-digit canvases from the MNIST training images in `dir` (`train-images-idx3-ubyte`,
/// optionally with `.gz`): 50×50 canvases with 0–2 digits, composed as Pyro's
/// `multi_mnist(max_digits=2, canvas_size=50)` does (see [`compose`]).
pub fn load_mnist_multi(
    dir: impl AsRef<Path>,
    n: usize,
    seed: u64,
) -> std::io::Result<MultiDigits> {
    let dir = dir.as_ref();
    let name = "train-images-idx3-ubyte";
    let path = [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| bad(format!("{}: no {name}[.gz]", dir.display())))?;
    let (dims, data) = read_idx_u8(&path)?;
    if dims.len() != 3 {
        return Err(bad(format!(
            "{}: expected 3 dims, got {dims:?}",
            path.display()
        )));
    }
    let digits = Tensor::from_slice(&data)
        .view([dims[0] as i64, dims[1] as i64, dims[2] as i64])
        .to_kind(Kind::Float)
        / 255.0;
    Ok(compose(&digits, n, 50, 2, seed))
}
