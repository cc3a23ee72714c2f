#!/usr/bin/env bash
# Runs on the device machine from the repo root (see scripts/prepare-gpu-run.sh): the GPU anchors
# for ppl, Pyro and NumPyro in one call. Needs the machine's Python with torch (and jax/numpyro,
# pyro for the peers, when present). Output: $OUT/gpu-bench.jsonl (one JSON line per run) and
# $OUT/gpu-bench.log.
set -uo pipefail
out=${OUT:-/tmp}
log=$out/gpu-bench.log
res=$out/gpu-bench.jsonl
# PY, PPL_BENCH_DEVICE (cuda) and PPL_BENCH_SMALL=1 (small data) let it be tried on a CPU first.
py=${PY:-$(command -v python3 || command -v python)}
dev=${PPL_BENCH_DEVICE:-cuda}
small=()
[ "${PPL_BENCH_SMALL:-0}" = 1 ] && small=(--covtype-n 2000 --linreg-n 3000)
torchlib=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$torchlib:${LD_LIBRARY_PATH:-}
data=/tmp/ppl-gpu-bench-data${PPL_BENCH_SMALL:+-small}
[ -f $data/linreg_y.npy ] || "$py" .gpu/make-gpu-bench-data.py $data "${small[@]}" >>"$log" 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >>"$log" 2>&1 || true
for w in covtype_hmc covtype_nuts big_linreg_svi; do
  for jit in "" --jit; do
    timeout 150 .gpu/gpu_bench --workload $w --data $data --device $dev $jit >>"$res" 2>>"$log" ||
      echo "{\"system\": \"ppl\", \"workload\": \"$w\", \"jit\": \"$jit\", \"failed\": true}" >>"$res"
  done
done
for sys in pyro numpyro; do
  timeout 120 "$py" .gpu/peers/covtype_hmc.py --system $sys --device $dev >>"$res" 2>>"$log" || true
  timeout 120 "$py" .gpu/peers/big_linreg_svi.py --system $sys >>"$res" 2>>"$log" || true
done
cat "$res"
