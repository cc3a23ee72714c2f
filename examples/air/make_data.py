"""Writes examples/air/data/multi_digits.bin: the offline multi-digit data of the AIR example.

Pyro's `multi_mnist(max_digits=2, canvas_size=50, seed=42)` procedure with scikit-learn's
bundled 8x8 handwritten digits (no download) in place of MNIST:

- each 8x8 digit becomes an MNIST-like 28x28 image: scaled to 20x20 (cubic spline) and
  centred with a 4-pixel border, as MNIST centres its 20x20 digits in 28x28;
- each canvas holds 0, 1 or 2 digits (uniformly); each digit is resized by 1 / s with
  s ~ N(1.3, 0.1) (about 21 px, the digit itself about 15 px) and placed at a uniformly random
  position; canvases whose digits overlap (a summed pixel above 1) are drawn again.

Run with any Python that has numpy, scipy and scikit-learn:

    python3 -m venv /tmp/air-data && /tmp/air-data/bin/pip install scikit-learn numpy scipy
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
SEED = 42


def mnist_like(d):
    """An 8x8 digit in [0, 1] as a 28x28 image with the digit in the central 20x20."""
    out = np.zeros((28, 28))
    out[4:24, 4:24] = np.clip(zoom(d, 20 / 8.0, order=3), 0.0, 1.0)
    return out


def main():
    rng = np.random.RandomState(SEED)
    digits = [mnist_like(d) for d in load_digits().images / 16.0]

    def positioned():
        d = digits[rng.randint(len(digits))]
        size = int(28 / (0.1 * rng.randn() + 1.3))
        small = np.clip(zoom(d, size / 28.0, order=1), 0.0, 1.0)[:size, :size]
        w = small.shape[0]
        pad = CANVAS - w
        r, c = rng.randint(0, pad), rng.randint(0, pad)
        canvas = np.zeros((CANVAS, CANVAS))
        canvas[r : r + w, c : c + w] = small[:w, :w]
        return canvas

    images = np.zeros((N, CANVAS, CANVAS), dtype=np.uint8)
    counts = np.zeros(N, dtype=np.uint8)
    for i in range(N):
        k = rng.randint(0, MAX_DIGITS + 1)
        while True:
            canvas = sum((positioned() for _ in range(k)), np.zeros((CANVAS, CANVAS)))
            if canvas.max() <= 1.0:
                break
        counts[i] = k
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
