//! Shared helpers of the examples: command-line flags.

use ppl::tch::Device;

/// `--device cpu|cuda|cuda:N` from the command line (default: cpu).
pub fn device_from_args() -> Device {
    let args: Vec<String> = std::env::args().collect();
    let pos = args.iter().position(|a| a == "--device");
    match pos.and_then(|i| args.get(i + 1)).map(String::as_str) {
        None | Some("cpu") => Device::Cpu,
        Some("cuda") => Device::cuda_if_available(),
        Some(s) if s.starts_with("cuda:") => {
            let n = s[5..].parse().unwrap_or(0);
            if ppl::tch::Cuda::is_available() {
                Device::Cuda(n)
            } else {
                Device::Cpu
            }
        }
        Some(other) => {
            eprintln!("unknown device {other:?}; using the CPU");
            Device::Cpu
        }
    }
}

/// The value of `--NAME VALUE`, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
pub mod air;
#[path = "eight_schools_models.rs"]
pub mod eight_schools;
#[path = "gmm_models.rs"]
pub mod gmm;
#[path = "hmm_models.rs"]
pub mod hmm;
#[path = "neutra_models.rs"]
pub mod neutra;
#[path = "vae_models.rs"]
pub mod vae;

/// Whether the bare flag `--jit` was given: examples then compile their inference
/// (`Svi::jit_compile`, `Nuts::jit_compile`).
pub fn jit_from_args() -> bool {
    std::env::args().any(|a| a == "--jit")
}

/// The repository's `data/` folder (copies of the shared benchmark data, with `SHA256SUMS`).
pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Reads `data/NAME`, a CSV with a header line: `(header, rows of trimmed fields)`; blank lines
/// are skipped. Panics with the path when the file cannot be read (examples and benchmarks only).
pub fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .collect();
    (header, rows)
}

/// [`read_csv`] of an all-numeric file: `(header, rows)`. Panics naming the file, line and field
/// that is not a number.
pub fn read_numeric_csv(name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let (header, rows) = read_csv(name);
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .map(|v| {
                    v.parse::<f64>().unwrap_or_else(|_| {
                        panic!("{name}: data row {}: `{v}` is not a number", i + 1)
                    })
                })
                .collect()
        })
        .collect();
    (header, rows)
}

/// Writes an 8-bit grayscale image of `w × h` pixels (row-major) as a PNG.
pub fn write_gray_png(path: &str, w: usize, h: usize, pixels: &[u8]) -> ppl::Result<()> {
    let err = |e: String| ppl::Error::Invalid(format!("writing {path}: {e}"));
    let file = std::fs::File::create(path).map_err(|source| ppl::Error::Io {
        path: path.into(),
        source,
    })?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| err(e.to_string()))
}
