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
