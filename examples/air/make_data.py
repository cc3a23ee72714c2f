"""Writes examples/air/data/multi_digits.bin: the offline multi-digit data of the AIR example.

Like Pyro's `multi_mnist(max_digits=2, canvas_size=50, seed=42)`, but the digits are
scikit-learn's bundled 8x8 handwritten digits (no download), scaled up to 14-22 pixels and
placed at random positions on 50x50 canvases, 0, 1 or 2 digits per canvas (uniformly).

Run with any Python that has numpy, scipy and scikit-learn:

    python3 -m venv /tmp/air-data && /tmp/air-data/bin/pip install scikit-learn numpy
    /tmp/air-data/bin/python examples/air/make_data.py

File format (the whole file is gzip-compressed):
    b"AIRD", then little-endian u32 n, u32 height, u32 width,
    then n*height*width uint8 pixels (row-major), then n uint8 counts.
"""

import gzip
import os
import struct

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

N = 5000
CANVAS = 50
MAX_DIGITS = 2
MIN_SIZE, MAX_SIZE = 14, 22
SEED = 42


def main():
    rng = np.random.RandomState(SEED)
    digits = load_digits().images.astype(np.float64) / 16.0  # (1797, 8, 8) in [0, 1]
    images = np.zeros((N, CANVAS, CANVAS), dtype=np.uint8)
    counts = np.zeros(N, dtype=np.uint8)
    for i in range(N):
        k = rng.randint(0, MAX_DIGITS + 1)
        counts[i] = k
        canvas = np.zeros((CANVAS, CANVAS))
        for _ in range(k):
            d = digits[rng.randint(len(digits))]
            size = rng.randint(MIN_SIZE, MAX_SIZE + 1)
            big = np.clip(zoom(d, size / 8.0, order=1), 0.0, 1.0)[:size, :size]
            r = rng.randint(0, CANVAS - size + 1)
            c = rng.randint(0, CANVAS - size + 1)
            region = canvas[r : r + size, c : c + size]
            np.maximum(region, big, out=region)
        images[i] = np.round(canvas * 255.0).astype(np.uint8)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "multi_digits.bin")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as f:
        f.write(b"AIRD")
        f.write(struct.pack("<III", N, CANVAS, CANVAS))
        f.write(images.tobytes())
        f.write(counts.tobytes())
    print(f"wrote {out}: {N} images, counts {np.bincount(counts).tolist()}")


if __name__ == "__main__":
    main()
