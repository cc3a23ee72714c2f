//! Compiles `csrc/trace.cpp` (graph capture for `ppl::jit`) and `csrc/distributed.cpp` (c10d's
//! TCPStore and Gloo process group for `ppl::distributed`) against the libtorch that tch links.
//! The second needs Gloo's headers (Debian's libgloo-dev, which `make setup` installs; or
//! `PPL_GLOO_INCLUDE=DIR` holding `gloo/`); without them it compiles to functions that say so.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/trace.cpp");
    println!("cargo:rerun-if-changed=csrc/distributed.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=PPL_GLOO_INCLUDE");
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

    let gloo = std::env::var("PPL_GLOO_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/include"));
    // (No rerun on the headers appearing: a missing path would make cargo rerun this script on
    // every build. The stub's message says to `cargo clean -p ppl-runtime` after installing them.)
    let mut dist = cc::Build::new();
    dist.cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT");
    if gloo.join("gloo/algorithm.h").is_file() {
        dist.include(&gloo)
            .define("USE_C10D_GLOO", None)
            .define("PPL_HAVE_GLOO", None);
    } else {
        println!(
            "cargo:warning=Gloo's headers are not in {}: ppl::distributed will report that it is \
             unavailable (install libgloo-dev, or set PPL_GLOO_INCLUDE)",
            gloo.display()
        );
    }
    dist.file("csrc/distributed.cpp").compile("ppl_distributed");
}
