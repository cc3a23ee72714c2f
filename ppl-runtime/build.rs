//! Compiles `csrc/trace.cpp` (graph capture for `ppl::jit`) against the libtorch that tch links.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/trace.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let root = match std::env::var("LIBTORCH") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let ppl = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let ppl = ppl.parent().unwrap_or(&ppl).display().to_string();
            panic!(
                "LIBTORCH is not set, so ppl cannot find libtorch. In ppl's checkout run `make \
                 setup`; in your own crate run `{ppl}/scripts/setup-libtorch.sh --crate .` (or \
                 start one with `{ppl}/scripts/new-project.sh DIR`). Either installs libtorch \
                 2.11.0 if missing and writes .cargo/config.toml (LIBTORCH, rpath, CUDA link \
                 flags)."
            )
        }
    };
    let include = root.join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/trace.cpp")
        .compile("ppl_trace");
}
