#!/usr/bin/env bash
# Moves the coin example's param store from ppl to Pyro and back (scripts/pyro_param_store.py),
# printing the params at each stop. Needs the peers' Python (bench/run_all.sh installs it).
#
#   scripts/check-pyro-param-store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PPL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ppl}/peers/bin/python
tmp=$(mktemp -d)
cargo build --release -q -p ppl-examples --example coin_fairness
coin=$(ls target/*/release/examples/coin_fairness | head -1)
"$coin" --save-params "$tmp/coin.safetensors" --checkpoint "$tmp/ck.safetensors" | grep wrote
# A checkpoint written as safetensors carries the same params (its Adam state is left out).
"$py" scripts/pyro_param_store.py to-pyro "$tmp/ck.safetensors" "$tmp/ck.pt"
"$py" scripts/pyro_param_store.py to-pyro "$tmp/coin.safetensors" "$tmp/coin.pt"
"$py" - "$tmp" <<'PY'
import sys
import pyro
import torch
d = sys.argv[1]
ps = pyro.get_param_store()
ps.load(f"{d}/coin.pt")
print(f"in Pyro: alpha_q {pyro.param('alpha_q').item():.6f}  beta_q {pyro.param('beta_q').item():.6f}")
ck = torch.load(f"{d}/ck.pt", weights_only=False)["params"]
assert all(torch.equal(ck[k], ps._params[k]) for k in ("alpha_q", "beta_q")), "checkpoint params differ"
print("the checkpoint's params are the param store's, bit for bit")
with torch.no_grad():
    ps._params["alpha_q"].add_(0.1)  # an unconstrained step, as an optimizer would take
print(f"moved in Pyro: alpha_q {pyro.param('alpha_q').item():.6f}")
ps.save(f"{d}/moved.pt")
PY
"$py" scripts/pyro_param_store.py from-pyro "$tmp/moved.pt" "$tmp/back.safetensors"
"$coin" --load-params "$tmp/back.safetensors" --steps 0 | grep loaded
rm -rf "$tmp"
