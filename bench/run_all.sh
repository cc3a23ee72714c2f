#!/usr/bin/env bash
# Runs ppl, Pyro and NumPyro on the same workloads and data, alternating, ROUNDS times each, and
# prints the comparison table (bench/summarize.py). The peers are installed once into
# ~/.cache/ppl/peers (torch 2.11.0, pyro-ppl 1.9.2, numpyro 0.22.0, jax 0.10.2).
#
#   bench/run_all.sh [ROUNDS] [--only coin_svi,linreg_svi]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
only=("$@")
scripts/setup-libtorch.sh
(cd data && sha256sum -c --quiet SHA256SUMS)
peers=${PPL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ppl}/peers
if [ ! -x "$peers/bin/python" ] || ! "$peers/bin/python" -c "import pyro, numpyro, funsor" 2>/dev/null; then
  echo "installing the peers into $peers ..." >&2
  python3 -m venv "$peers"
  "$peers/bin/pip" install -q --disable-pip-version-check torch==2.11.0 pyro-ppl==1.9.2 \
    numpyro==0.22.0 jax==0.10.2 jaxlib==0.10.2 numpy==2.4.6 funsor==0.4.8
fi
cargo build --release -q -p ppl-bench
cargo build --release -q -p ppl-examples --example bench_mcmc
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
{ date -u; uname -a; nproc; grep -m1 "model name" /proc/cpuinfo || true; } > "$out/environment.txt"
for i in $(seq "$rounds"); do
  echo "round $i/$rounds" >&2
  # SVI: compiled steps (`ppl`, Svi::jit_compile) and libtorch eager (`ppl-eager`).
  target/*/release/ppl_bench "${only[@]}" --out "$out/ppl.jsonl" > /dev/null
  target/*/release/ppl_bench "${only[@]}" --jit off --out "$out/ppl.jsonl" > /dev/null
  # NUTS (examples/bench_mcmc.rs; one chain): compiled potential (`ppl`, Nuts::jit_compile)
  # and libtorch eager (`ppl-eager`).
  target/*/release/examples/bench_mcmc "${only[@]}" --jit both >> "$out/ppl.jsonl"
  (cd bench/peers && "$peers/bin/python" pyro_bench.py "${only[@]}" --out "../../$out/pyro.jsonl" > /dev/null)
  (cd bench/peers && "$peers/bin/python" numpyro_bench.py "${only[@]}" --out "../../$out/numpyro.jsonl" > /dev/null)
done
python3 bench/summarize.py "$out"/*.jsonl | tee "$out/summary.md"
