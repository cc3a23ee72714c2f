"""Seconds per training step of Pyro's own AIR example on the same data, batch size and network
sizes as `cargo run --release --example air` (for the comparison in README.md).

Pyro's code is not in this repository: point --pyro-air-dir at a checkout of Pyro's
`examples/air` (air.py and modules.py). Run with a Python that has pyro-ppl and torch:

    python examples/air/pyro_timing.py --pyro-air-dir PATH/TO/pyro/examples/air --steps 200
"""

import argparse
import gzip
import struct
import sys
import time

import numpy as np
import torch


def load(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"AIRD"
    n, h, w = struct.unpack("<III", b[4:16])
    x = np.frombuffer(b, dtype=np.uint8, count=n * h * w, offset=16).reshape(n, h, w)
    counts = np.frombuffer(b, dtype=np.uint8, count=n, offset=16 + n * h * w)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(counts.astype(np.float32))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pyro-air-dir", required=True)
    p.add_argument("--data", default="examples/air/data/multi_digits.bin")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--baseline-lr", type=float, default=1e-3)
    args = p.parse_args()
    sys.path.insert(0, args.pyro_air_dir)
    import pyro
    import pyro.optim as optim
    from air import AIR
    from pyro.infer import SVI, TraceGraph_ELBO

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    pyro.set_rng_seed(args.seed)
    X, counts = load(args.data)
    X_train, X_eval, c_eval = X[:-1000], X[-1000:], counts[-1000:]

    # The settings of `AirConfig::default()` (Pyro's tutorial command, with a 20x20 window).
    k = 0.01
    u = 1 / (1 + k + k**2 + k**3)
    p0 = 1 - u
    p1 = 1 - (k * u) / p0
    p2 = 1 - (k**2 * u) / (p0 * p1)
    probs = [p0, p1, p2]
    air = AIR(
        num_steps=3,
        x_size=50,
        window_size=20,
        z_what_size=50,
        rnn_hidden_size=256,
        encoder_net=[200],
        decoder_net=[200],
        predict_net=[200],
        bl_predict_net=[200],
        decoder_output_bias=-2.0,
        decoder_output_use_sigmoid=True,
        scale_prior_sd=0.2,
    )
    adam = optim.Adam(lambda name: {"lr": args.baseline_lr if "bl_" in name else args.lr})
    svi = SVI(air.model, air.guide, adam, loss=TraceGraph_ELBO())

    def accuracy():
        with torch.no_grad():
            correct = 0
            for i in range(0, 1000, 250):
                _, z_pres = air.guide(X_eval[i : i + 250], None)
                inferred = sum(z for z in z_pres).squeeze(-1)
                correct += (inferred == c_eval[i : i + 250]).sum().item()
        return correct / 1000

    prior = lambda t: probs[t]  # noqa: E731
    for _ in range(args.warmup):
        svi.step(X_train, batch_size=64, z_pres_prior_p=prior)
    t0 = time.time()
    train_secs = 0.0
    losses = []
    for i in range(1, args.steps + 1):
        s = time.time()
        losses.append(svi.step(X_train, batch_size=64, z_pres_prior_p=prior) / len(X_train))
        train_secs += time.time() - s
        if args.eval_every and i % args.eval_every == 0:
            print(
                f"step {i:6}  elbo/image {-np.mean(losses):9.2f}  count accuracy {accuracy():.3f}  "
                f"{train_secs / i:.3f} s/step (training)  elapsed {time.time() - t0:.0f} s",
                flush=True,
            )
            losses = []
    print(f"pyro {pyro.__version__} torch {torch.__version__} threads {torch.get_num_threads()}: "
          f"{train_secs / args.steps:.4f} s/step over {args.steps} steps (after {args.warmup} warm-up)")


if __name__ == "__main__":
    main()
