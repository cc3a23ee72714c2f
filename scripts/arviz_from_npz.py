"""Reads the InferenceData `.npz` files that ppl writes (`Mcmc::write_inference_data_npz`: arrays
named `group/variable`) into ArviZ, runs `az.loo` and `az.waic` on each and `az.compare` on all,
and checks ArviZ's numbers against ppl's own (the `.ppl.json` that the model_comparison example
writes beside each file) to 1e-6.

    cargo run --release --example model_comparison -- --npz out/model_comparison
    ~/.cache/ppl/peers/bin/python scripts/arviz_from_npz.py out/model_comparison_pooled.npz \
        out/model_comparison_hierarchical.npz

Needs ArviZ 0.23 (`pip install "arviz<1"` in the peers' venv). Exits non-zero on a mismatch.
"""
import json
import os
import sys
from collections import defaultdict

import arviz as az
import numpy as np


def load(path):
    groups = defaultdict(dict)
    with np.load(path) as f:
        for key in f.files:
            group, var = key.split("/", 1)
            groups[group][var] = f[key]
    return az.from_dict(**groups)


def main(paths):
    idatas = {}
    failures = 0
    for path in paths:
        name = os.path.basename(path).removesuffix(".npz")
        idata = load(path)
        print(f"{name}: groups {list(idata.groups())}")
        if "posterior_predictive" in idata.groups():
            # The replicated data have the observed data's shape per draw; ArviZ's Bayesian
            # p-value of the mean needs both groups, which is what plot_ppc uses.
            pp = idata.posterior_predictive["obs"].values
            obs = idata.observed_data["obs"].values
            assert pp.shape[2:] == obs.shape, (pp.shape, obs.shape)
            p = float((pp.mean(axis=-1) > obs.mean()).mean())
            print(f"{name}: posterior predictive {pp.shape}, P(mean(y_rep) > mean(y)) = {p:.3f}")
        loo = az.loo(idata, pointwise=True)
        waic = az.waic(idata, pointwise=True)
        print(loo)
        ours = path.removesuffix(".npz") + ".ppl.json"
        if os.path.exists(ours):
            with open(ours) as f:
                ppl = json.load(f)
            pairs = [
                ("elpd_loo", loo.elpd_loo, ppl["elpd_loo"]),
                ("p_loo", loo.p_loo, ppl["p_loo"]),
                ("se", loo.se, ppl["se"]),
                ("elpd_waic", waic.elpd_waic, ppl["elpd_waic"]),
                ("p_waic", waic.p_waic, ppl["p_waic"]),
            ]
            pk = np.asarray(loo.pareto_k).ravel()
            pairs += [(f"pareto_k[{i}]", a, b) for i, (a, b) in enumerate(zip(pk, ppl["pareto_k"]))]
            for what, a, b in pairs:
                if not abs(float(a) - float(b)) <= 1e-6 * (1 + abs(float(a))):
                    print(f"MISMATCH {name} {what}: ArviZ {a}, ppl {b}")
                    failures += 1
            print(f"{name}: ppl's loo and waic match ArviZ's ({len(pairs)} numbers)")
        idatas[name] = idata
    if len(idatas) > 1:
        print(az.compare(idatas, ic="loo"))
    return failures


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)
