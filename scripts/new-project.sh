#!/usr/bin/env bash
# Writes a new crate that uses ppl, ready for `cargo run`:
#   Cargo.toml           a path dependency on this checkout's ppl-runtime (`use ppl::prelude::*`)
#   .cargo/config.toml   libtorch's path, the rpath and CUDA link flags (scripts/setup-libtorch.sh
#                        --crate, which also installs libtorch 2.11.0 if it is missing)
#   src/main.rs          a model, a guide and SVI (the coin of the README)
#
#   scripts/new-project.sh DIR
#   cd DIR && cargo run
set -euo pipefail
die() { echo "ppl new-project: error: $*" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-}
[ -n "$dir" ] || die "usage: scripts/new-project.sh DIR"
[ ! -e "$dir/Cargo.toml" ] || die "$dir/Cargo.toml exists; to configure an existing crate, run scripts/setup-libtorch.sh --crate $dir and add ppl-runtime = { path = \"$repo/ppl-runtime\" } to its [dependencies]"
mkdir -p "$dir/src"
dir=$(cd "$dir" && pwd)
# A package name: lowercase letters, digits, '-' and '_', not starting with a digit.
name=$(basename "$dir" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_\n-' '_')
case $name in [0-9]*) name="ppl_$name" ;; esac

cat >"$dir/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.1.0"
edition = "2021"

[dependencies]
# The library is called \`ppl\` in code: \`use ppl::prelude::*\`. Renaming the dependency
# (\`pyro = { package = "ppl-runtime", ... }\`) works too; the macros follow the new name.
ppl-runtime = { path = "$repo/ppl-runtime" }

# A crate of its own, even when it sits inside another workspace's folder.
[workspace]
TOML

cat >"$dir/src/main.rs" <<'RUST'
//! The coin of ppl's README: is this coin fair? A Beta prior, ten flips, and a Beta guide fitted
//! by SVI; the exact posterior is Beta(16, 14), with mean 0.533.
use ppl::prelude::*;

#[model]
fn coin(flips: &Tensor) -> ppl::Result<()> {
    let fairness = sample!(Beta::new(10.0, 10.0)?);
    let _data = plate!("data", flips.size()[0]);
    sample!("obs", Bernoulli::new(&fairness)?, obs = flips);
    Ok(())
}

#[guide]
fn coin_guide(_flips: &Tensor) -> ppl::Result<()> {
    let alpha_q = param!(Tensor::from(15.0f32), constraint = positive);
    let beta_q = param!(Tensor::from(15.0f32), constraint = positive);
    let _fairness = sample!(Beta::new(&alpha_q, &beta_q)?);
    Ok(())
}

fn main() -> ppl::Result<()> {
    set_rng_seed(0);
    let flips = Tensor::from_slice(&[1.0f32, 1., 1., 1., 1., 1., 0., 0., 0., 0.]);
    let adam = Adam::new(AdamConfig {
        lr: 5e-4,
        betas: (0.90, 0.999),
        ..Default::default()
    });
    let mut svi = Svi::new(|| coin(&flips), || coin_guide(&flips), adam, TraceElbo::default());
    svi.run(2000)?;
    let a = get_param("alpha_q")?.double_value(&[]);
    let b = get_param("beta_q")?.double_value(&[]);
    println!("fairness ≈ {:.3} (exact posterior mean 0.533)", a / (a + b));
    Ok(())
}
RUST

# The versions this checkout builds and tests with.
cp "$repo/Cargo.lock" "$dir/Cargo.lock"

"$repo/scripts/setup-libtorch.sh" --crate "$dir"
echo "ppl new-project: wrote $dir; now: cd $dir && cargo run" >&2
