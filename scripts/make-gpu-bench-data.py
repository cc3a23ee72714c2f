#!/usr/bin/env python3
"""Writes the data of the GPU anchors (../shared/bench/gpu/covtype_hmc.py, big_linreg_svi.py) as
.npy files, so that ppl's `gpu_bench` example reads exactly the numbers the peer scripts make:
the same numpy generators with the same seeds.

    python scripts/make-gpu-bench-data.py DIR [--covtype-n N] [--linreg-n N]

Writes DIR/covtype_X.npy (N x 55, float32, intercept last), covtype_y.npy, linreg_X.npy
(N x 100), linreg_y.npy. The defaults are the anchors' sizes (581 012 and 1 000 000 rows,
about 530 MB in all); smaller N makes the same kind of data for smoke tests (not a prefix of the
full data: the weights are drawn after X). Needs numpy only.
"""
import argparse
import os

import numpy as np


def covtype(n, d=54):
    rng = np.random.default_rng(20241124)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X = np.concatenate([X, np.ones((n, 1), np.float32)], 1)
    w = (rng.standard_normal(d + 1) * 0.5).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w)))).astype(np.float32)
    return X, y


def linreg(n, d=100):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = (X @ w + 0.3 + 0.5 * rng.standard_normal(n)).astype(np.float32)
    return X, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--covtype-n", type=int, default=581012)
    ap.add_argument("--linreg-n", type=int, default=1_000_000)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    for name, (X, y) in [("covtype", covtype(a.covtype_n)), ("linreg", linreg(a.linreg_n))]:
        np.save(os.path.join(a.dir, f"{name}_X.npy"), X)
        np.save(os.path.join(a.dir, f"{name}_y.npy"), y)
        print(f"{name}: X {X.shape}, y {y.shape} -> {a.dir}")


if __name__ == "__main__":
    main()
