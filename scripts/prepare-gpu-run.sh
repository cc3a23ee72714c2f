#!/usr/bin/env bash
# Prepares issue 18's GPU check for the device machine (which has torch 2.11.0 in its own Python
# but no Rust toolchain and no network): builds the release `gpu_bench` here and copies it, with
# the data generator and the peers' GPU scripts, into `.gpu/` (git-ignored), to be carried:
#
#   scripts/prepare-gpu-run.sh
#   then, with the device tool:  run(carry=[".gpu"], command="bash .gpu/gpu-bench.sh", timeout_s=540)
#
# `.gpu/gpu-bench.sh` writes the data once (numpy, the peers' seeds), then times ppl (eager and
# --jit), Pyro and NumPyro on the same card in the same call, one JSON line each, into
# $OUT/gpu-bench.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
cargo build --release -q -p ppl-examples --example gpu_bench
rm -rf .gpu && mkdir -p .gpu/peers
cp target/*/release/examples/gpu_bench .gpu/
cp scripts/make-gpu-bench-data.py scripts/gpu-bench.sh .gpu/
cp ../shared/bench/gpu/covtype_hmc.py ../shared/bench/gpu/big_linreg_svi.py .gpu/peers/
du -sh .gpu
