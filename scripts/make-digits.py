#!/usr/bin/env python3
"""Writes data/digits.csv: scikit-learn's 8x8 handwritten digits, binarized, for the VAE example.

Run with scikit-learn 1.9.1 (numpy 2.4.6, Python 3.11.7) in a throwaway venv:
    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn
    /tmp/skl/bin/python scripts/make-digits.py   (or `python3 scripts/make-digits.py` in that venv)
then, inside data/:  sha256sum digits.csv >> SHA256SUMS

`sklearn.datasets.load_digits()` ships with scikit-learn (no download): 1797 images of 8x8 pixels
with values 0..16 (the UCI optical recognition of handwritten digits test set). Each pixel is
binarized as 1 if value >= 8 else 0. The file has the header `label,p0,...,p63` and one row per
image in load_digits order; pixel j is row j // 8, column j % 8 (load_digits' row-major order).
"""
import os

import numpy as np
from sklearn.datasets import load_digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "digits.csv")


def main():
    d = load_digits()
    images = np.asarray(d.data).reshape(-1, 64)
    labels = np.asarray(d.target).astype(np.int64)
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() >= 0 and images.max() <= 16
    binary = (images >= 8).astype(np.int64)
    with open(OUT, "w", newline="\n") as f:
        f.write(",".join(["label"] + [f"p{j}" for j in range(64)]) + "\n")
        for label, row in zip(labels, binary):
            f.write(",".join(str(int(v)) for v in [label, *row]) + "\n")
    print(f"wrote {os.path.normpath(OUT)}: {len(labels)} images, "
          f"mean pixel {binary.mean():.4f}")


if __name__ == "__main__":
    main()
