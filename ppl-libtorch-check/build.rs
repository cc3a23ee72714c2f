//! Stops the build at once, with the command to run, when libtorch cannot be found.
//!
//! tch's `torch-sys` looks for libtorch in its own build script and, when it finds none, fails
//! with a message about `LIBTORCH` that does not mention ppl's setup. This crate is a
//! build-dependency of `ppl-runtime`, so every ppl user's build runs this script; it has no
//! dependencies of its own and sits deeper in the build graph than torch-sys's script, which
//! cargo therefore schedules after it (checked from a clean target folder by
//! `tests/new_project.rs`): the first and only error is this one, naming ppl's setup command.
//! (As a build script of `ppl-macros` it lost the race: cargo ran torch-sys's first.) It looks where torch-sys looks: `LIBTORCH_USE_PYTORCH`,
//! `LIBTORCH_LIB` or `LIBTORCH` (set by the `.cargo/config.toml` that ppl's setup writes), then
//! `/usr/lib/libtorch.so`. `PPL_SKIP_LIBTORCH_CHECK=1` skips the check.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    for v in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_USE_PYTORCH",
        "PPL_SKIP_LIBTORCH_CHECK",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some()
        || env::var_os("PPL_SKIP_LIBTORCH_CHECK").is_some()
    {
        return;
    }
    let (found, looked) = match env::var_os("LIBTORCH_LIB").or_else(|| env::var_os("LIBTORCH")) {
        Some(dir) => {
            let lib = PathBuf::from(&dir).join("lib");
            (
                lib.is_dir(),
                format!(
                    "LIBTORCH is {}, which has no lib folder",
                    Path::new(&dir).display()
                ),
            )
        }
        None => (
            Path::new("/usr/lib/libtorch.so").exists(),
            "LIBTORCH is not set (ppl's setup sets it in .cargo/config.toml) and there is no \
             /usr/lib/libtorch.so"
                .to_string(),
        ),
    };
    if found {
        return;
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    eprintln!(
        "\nppl: libtorch was not found: {looked}.\n\
         \n\
         To install libtorch 2.11.0 (if missing) and configure your crate, run once from your \
         crate's folder:\n\
         \n    {}/scripts/setup-libtorch.sh --crate .\n\
         \n\
         It writes .cargo/config.toml (LIBTORCH, the rpath, CUDA link flags); plain `cargo` \
         works after it. Inside the ppl checkout itself, run `make setup`.\n",
        checkout.display()
    );
    std::process::exit(1);
}
