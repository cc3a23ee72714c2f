"""Shared pieces of ppl's Pyro and NumPyro counterparts: the data (read from the repo's data/
folder, never regenerated), the workload settings, per-step timing statistics and JSON lines.

The settings match ppl's `bench/ppl_bench.rs` and the shared peer benchmarks' README.
"""
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data")

SEED = 0
WARMUP_STEPS = 50
COIN = dict(steps=2000, lr=0.0005, betas=(0.90, 0.999), init=15.0)
LINREG = dict(steps=1000, lr=0.01, subsample=100)
EIGHT = dict(warmup=1000, samples=1000)
LOGREG = dict(warmup=500, samples=500)
# The semi-supervised HMM (NumPyro's examples/hmm.py) and the K=3 mixture: enumeration workloads.
HMM = dict(warmup=1000, samples=1000)
# Pyro's Python loops are slow on 500 steps: fewer draws, reported per leapfrog step.
HMM_PYRO = dict(warmup=20, samples=20)
HMM_ENUM_PYRO = dict(trajectories=6)
GMM = dict(steps=500, lr=0.05, K=3)
# Pyro's VAE tutorial on the binarized 8x8 digits: minibatches of a fixed shuffle, cycled.
VAE = dict(steps=300, batch=128, lr=1e-3, z_dim=10, hidden=200)
# NeuTra HMC on Neal's funnel (y ~ N(0, 3), x ~ N(0, exp(y / 2)) of dim - 1 elements, one event):
# vanilla NUTS, an AutoIAFNormal guide fitted by SVI (Adam, Trace_ELBO), then NUTS on the model
# reparameterized by NeuTraReparam. ppl's examples/neutra_models.rs `Settings` match these.
# `particles`: ELBO particles per SVI step (vectorized where more than one).
NEUTRA = dict(dim=10, warmup=500, samples=1000, svi_steps=5000, lr=0.003, particles=16,
              num_flows=2, hidden=[20, 20])
# Pyro's overrides of NEUTRA: its full run (eager NUTS, ~15-50 ms per SVI step) takes 4-7 minutes
# on 2 cores, so fewer draws and SVI steps; the record's `config` says which were used.
NEUTRA_PYRO = dict(warmup=200, samples=200, svi_steps=2000)
WORKLOADS = ["coin_svi", "linreg_svi", "linreg_svi_subsample", "eight_schools_nuts", "logreg_nuts",
             "hmm_forward_nuts", "hmm_enum_nuts", "gmm_enum_svi", "vae_svi", "neutra_funnel"]


def csv(name):
    return np.loadtxt(os.path.join(DATA, name), delimiter=",", skiprows=1, ndmin=2)


def truth(name):
    rows = np.genfromtxt(os.path.join(DATA, name), delimiter=",", skip_header=1, dtype=None,
                         encoding="utf-8")
    return {str(k): float(v) for k, v in rows}


def coin():
    return csv("coin.csv")[:, 0]


def linreg():
    a = csv("linreg.csv")
    return a[:, :-1], a[:, -1]


def linreg_truth():
    t = truth("linreg_truth.csv")
    return np.array([t[f"w{j}"] for j in range(10)]), t["b"]


def logreg():
    a = csv("logreg.csv")
    return a[:, :-1], a[:, -1]


def eight_schools():
    a = csv("eight_schools.csv")
    return a[:, 1], a[:, 2]


def hmm():
    """(K, W, supervised categories, supervised words, unsupervised words) as int arrays."""
    sup = csv("hmm_supervised.csv").astype(np.int64)
    unsup = csv("hmm_unsupervised.csv")[:, 0].astype(np.int64)
    t = np.genfromtxt(os.path.join(DATA, "hmm_truth.csv"), delimiter=",", skip_header=1,
                      dtype=None, encoding="utf-8")
    k = 1 + max(int(row[1]) for row in t if row[0] == "transition")
    w = 1 + max(int(row[2]) for row in t if row[0] == "emission")
    return k, w, sup[:, 0], sup[:, 1], unsup


def gmm():
    return csv("gmm.csv")[:, 0]


def digits():
    """(x float32 [1797, 64] of 0/1 pixels, labels int64 [1797]) from digits.csv."""
    a = csv("digits.csv")
    return a[:, 1:].astype(np.float32), a[:, 0].astype(np.int64)


def vae_batches(x):
    """The minibatches of a VAE run: one shuffle with RandomState(SEED) cut into VAE["batch"]-sized
    batches, the last, incomplete one dropped. Step i uses batches[i % len(batches)]."""
    b = VAE["batch"]
    perm = np.random.RandomState(SEED).permutation(x.shape[0])
    return [x[perm[i * b:(i + 1) * b]] for i in range(x.shape[0] // b)]


def beta_mean_std(a, b):
    return a / (a + b), (a * b / ((a + b) ** 2 * (a + b + 1.0))) ** 0.5


def now():
    return time.perf_counter()


def step_stats(times):
    rest = times[WARMUP_STEPS:]
    return {
        "steps": len(times), "total_s": sum(times), "first_step_s": times[0],
        "sec_per_step_median": statistics.median(rest),
        "sec_per_step_mean_after_warmup": sum(rest) / len(rest),
        "sec_per_step_p10": float(np.percentile(rest, 10)),
        "sec_per_step_p90": float(np.percentile(rest, 90)),
        "timing_warmup_steps_excluded": WARMUP_STEPS,
    }


def r(x, nd=6):
    if isinstance(x, (list, tuple, np.ndarray)):
        return [r(float(v), nd) for v in np.ravel(x)]
    return round(float(x), nd)


def main(system, versions, threads, benches):
    args = sys.argv[1:]
    only = args[args.index("--only") + 1].split(",") if "--only" in args else WORKLOADS
    out = args[args.index("--out") + 1] if "--out" in args else None
    for name in only:
        if name not in benches:
            continue
        rec = {"system": system, "workload": name, "threads": threads, "versions": versions,
               "python": platform.python_version(), "cpu_count": os.cpu_count()}
        try:
            rec.update(benches[name]())
            rec["status"] = "ok"
        except Exception as e:  # report and go on with the next workload
            rec["status"] = f"error: {e!r}"
        line = json.dumps(rec)
        print(line, flush=True)
        if out:
            with open(out, "a") as f:
                f.write(line + "\n")
