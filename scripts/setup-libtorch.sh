#!/usr/bin/env bash
# Installs libtorch 2.11.0 (from PyPI's torch==2.11.0 wheel) into a cache outside the checkout and
# writes .cargo/config.toml so that plain `cargo build/test/run` find it and built binaries start
# without LD_LIBRARY_PATH. Idempotent: a second run only re-checks and rewrites the config.
#
#   scripts/setup-libtorch.sh              configure this checkout
#   scripts/setup-libtorch.sh --crate DIR  configure another crate (writes DIR/.cargo/config.toml)
#   LIBTORCH=/path/to/libtorch   use an existing libtorch 2.11 (a libtorch zip or <site-packages>/torch)
#   PPL_CACHE_DIR=/path          where the torch venv lives (default: ~/.cache/ppl)
set -euo pipefail

want=2.11.0
here=$(cd "$(dirname "$0")/.." && pwd)
root=$here
rerun="make setup"
cache=${PPL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ppl}
venv=$cache/torch-$want

die() { echo "ppl setup: error: $*" >&2; exit 1; }

if [ "${1:-}" = "--crate" ]; then
  [ -n "${2:-}" ] && [ -f "$2/Cargo.toml" ] || die "--crate needs the folder of a crate (with its Cargo.toml)."
  root=$(cd "$2" && pwd)
  rerun="$here/scripts/setup-libtorch.sh --crate ."
elif [ -n "${1:-}" ]; then
  die "unknown argument '$1' (usage: scripts/setup-libtorch.sh [--crate DIR])"
fi

command -v rustc >/dev/null || die "rustc was not found; install Rust (https://rustup.rs) and rerun."

if [ -n "${LIBTORCH:-}" ]; then
  libtorch=$LIBTORCH
  [ -d "$libtorch/lib" ] && [ -d "$libtorch/include" ] ||
    die "LIBTORCH=$libtorch has no lib/ and include/ folders; point it at a libtorch $want folder or <site-packages>/torch, or unset it to let setup install torch==$want from PyPI."
else
  libtorch=$(ls -d "$venv"/lib/python3*/site-packages/torch 2>/dev/null | head -n 1 || true)
  if [ -z "$libtorch" ] || [ ! -f "$libtorch/lib/libtorch_cpu.so" ]; then
    py=$(command -v python3 || true)
    [ -n "$py" ] || die "python3 was not found; install Python 3.10+ with venv and pip (Debian: apt-get install python3 python3-venv), or set LIBTORCH to an existing libtorch $want."
    echo "ppl setup: installing torch==$want from PyPI into $venv (about 4.6 GB, once)..." >&2
    mkdir -p "$cache"
    log=$cache/pip-install.log
    rm -rf "$venv"
    "$py" -m venv "$venv" >"$log" 2>&1 ||
      die "could not create a Python venv at $venv (see $log); install python3-venv, or set LIBTORCH to an existing libtorch $want."
    "$venv/bin/python" -m pip install --no-input --disable-pip-version-check --progress-bar off "torch==$want" >>"$log" 2>&1 ||
      { rm -rf "$venv"; die "pip could not install torch==$want (see $log): check that PyPI is reachable, or set LIBTORCH to an existing libtorch $want."; }
    libtorch=$(ls -d "$venv"/lib/python3*/site-packages/torch | head -n 1)
  fi
fi

# The version check: tch 0.24.0 works with exactly PyTorch 2.11.0.
hdr=$(grep -rhs -E "define TORCH_VERSION_(MAJOR|MINOR|PATCH) " "$libtorch/include/torch" | awk '{print $3}' | head -n 3 | paste -sd. -)
[ "$hdr" = "$want" ] ||
  die "libtorch at $libtorch is version '${hdr:-unknown}', but ppl (tch 0.24.0) needs exactly $want; set LIBTORCH to a libtorch $want or unset it to let setup install one."

lib=$libtorch/lib
command -v rustc >/dev/null || die "rustc was not found; install Rust (https://rustup.rs) and rerun."
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$host" ] || die "could not read the host triple from 'rustc -vV'."
flags="\"-C\", \"link-arg=-Wl,-rpath,$lib\""
if [ -f "$lib/libtorch_cuda.so" ]; then
  # Without --no-as-needed the linker drops torch_cuda (no symbol refers to it) and CUDA vanishes.
  flags="$flags, \"-C\", \"link-arg=-Wl,--no-as-needed\", \"-C\", \"link-arg=-ltorch_cuda\", \"-C\", \"link-arg=-Wl,--as-needed\""
fi
mkdir -p "$root/.cargo"
cat >"$root/.cargo/config.toml" <<TOML
# Written by ppl's scripts/setup-libtorch.sh; do not edit (rerun \`$rerun\` instead). Not committed.
[env]
LIBTORCH = "$libtorch"
# torch's random generator is process-global: seeded tests must not interleave their draws.
RUST_TEST_THREADS = "1"

# An explicit target keeps the link flags below off build scripts and proc macros (host artifacts).
[build]
target = "$host"
rustdocflags = [$flags]

[target.$host]
# rpath: binaries find libtorch without LD_LIBRARY_PATH.
rustflags = [$flags]
TOML
echo "ppl setup: libtorch $want at $libtorch; wrote $root/.cargo/config.toml" >&2

# Gloo's headers, for ppl::distributed: c10d's ProcessGroupGloo.hpp (in the wheel) includes them;
# nothing of Debian's gloo is linked (the implementation is the one inside libtorch). Without them
# ppl still builds, and ppl::distributed says how to get them.
if [ -z "${PPL_GLOO_INCLUDE:-}" ] && [ ! -f /usr/include/gloo/algorithm.h ]; then
  if command -v apt-get >/dev/null; then
    as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo -n"
    mkdir -p "$cache"
    log=$cache/apt-gloo.log
    echo "ppl setup: installing libgloo-dev (Gloo's headers, for ppl::distributed)..." >&2
    if ! $as_root apt-get install -y -q libgloo-dev >"$log" 2>&1; then
      $as_root apt-get update -q >>"$log" 2>&1 || true
      $as_root apt-get install -y -q libgloo-dev >>"$log" 2>&1 ||
        echo "ppl setup: warning: could not install libgloo-dev (see $log): ppl builds, but ppl::distributed reports that it is unavailable until Gloo's headers are there (apt-get install libgloo-dev, or PPL_GLOO_INCLUDE=DIR), then cargo clean -p ppl-runtime" >&2
    fi
  else
    echo "ppl setup: warning: no apt-get to install Gloo's headers (libgloo-dev); ppl::distributed needs them (or PPL_GLOO_INCLUDE=DIR holding gloo/)" >&2
  fi
fi
