#!/usr/bin/env python3
"""Moves a param store between ppl and Pyro.

    python scripts/pyro_param_store.py to-pyro   params.safetensors  params.pt
    python scripts/pyro_param_store.py from-pyro params.pt           params.safetensors

ppl writes its param store as safetensors (`ParamStore::save_safetensors`; a checkpoint saved to a
`.safetensors` path by `save_checkpoint` has the same params, plus optimizer state and random
streams that this script leaves out): one tensor per param,
the unconstrained value, with `constraint.NAME` and `event_dim.NAME` in the file's metadata and
`format: ppl-param-store`. Pyro's param store keeps the same unconstrained values, and
`ParamStoreDict.save`/`load` write and read `{"params": {name: tensor}, "constraints": {name:
constraint}}` with torch.save. So:

    # ppl -> Pyro
    pyro.get_param_store().load("params.pt")
    # Pyro -> ppl
    pyro.get_param_store().save("params.pt")   # then from-pyro, then ParamStore::load_safetensors

Needs torch (any recent version; Pyro only to use the result). The safetensors format is read and
written here directly (an 8-byte little-endian header length, a JSON header, the raw data), so the
`safetensors` Python package is not needed.
"""
import json
import struct
import sys

import torch
from torch.distributions import constraints

DTYPES = {"F32": torch.float32, "F64": torch.float64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        if f"constraint.{name}" not in meta:
            continue  # not a param: a checkpoint's optimizer state or random streams
        start, stop = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(data[start:stop]), dtype=dtype) if stop > start \
            else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in NAMES:
            raise SystemExit(f"param {name!r} is {t.dtype}; float32 or float64 expected")
        b = bytes(t.reshape(-1).view(torch.uint8).tolist())
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def split_args(s):
    """'a,(b,c)' -> ['a', '(b,c)'] at top-level commas."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def to_pyro_constraint(s):
    simple = {"real": constraints.real, "real_vector": constraints.real_vector,
              "positive": constraints.positive, "nonnegative": constraints.nonnegative,
              "unit_interval": constraints.unit_interval, "simplex": constraints.simplex,
              "lower_cholesky": constraints.lower_cholesky,
              "positive_definite": constraints.positive_definite,
              "corr_cholesky": constraints.corr_cholesky}
    if s in simple:
        return simple[s]
    name, _, rest = s.partition("(")
    args = split_args(rest[:-1])
    if name == "interval":
        return constraints.interval(float(args[0]), float(args[1]))
    if name == "greater_than":
        return constraints.greater_than(float(args[0]))
    if name == "greater_than_eq":
        return constraints.greater_than_eq(float(args[0]))
    if name == "less_than":
        return constraints.less_than(float(args[0]))
    if name == "independent":
        return constraints.independent(to_pyro_constraint(args[0]), int(args[1]))
    raise SystemExit(f"no Pyro constraint for ppl's {s!r}")


def from_pyro_constraint(c):
    for name in ["real", "real_vector", "positive", "nonnegative", "unit_interval", "simplex",
                 "lower_cholesky", "positive_definite", "corr_cholesky"]:
        if c is getattr(constraints, name):
            return name
    cls = type(c).__name__
    if cls == "_Interval":
        return f"interval({float(c.lower_bound)!r},{float(c.upper_bound)!r})"
    if cls == "_GreaterThan":
        return f"greater_than({float(c.lower_bound)!r})"
    if cls == "_GreaterThanEq":
        return f"greater_than_eq({float(c.lower_bound)!r})"
    if cls == "_LessThan":
        return f"less_than({float(c.upper_bound)!r})"
    if cls == "_IndependentConstraint":
        return f"independent({from_pyro_constraint(c.base_constraint)},{c.reinterpreted_batch_ndims})"
    raise SystemExit(f"no ppl constraint for Pyro's {c!r}")


def main(argv):
    if len(argv) != 4 or argv[1] not in ("to-pyro", "from-pyro"):
        raise SystemExit(__doc__)
    _, mode, src, dst = argv
    if mode == "to-pyro":
        tensors, meta = read_safetensors(src)
        if meta.get("format") not in ("ppl-param-store", "ppl-checkpoint"):
            raise SystemExit(f"{src}: not a ppl param store or checkpoint (metadata format)")
        state = {"params": {}, "constraints": {}}
        for name, t in tensors.items():
            state["params"][name] = t.requires_grad_()
            state["constraints"][name] = to_pyro_constraint(meta[f"constraint.{name}"])
        torch.save(state, dst)
        print(f"wrote {len(tensors)} params to {dst} (load with pyro.get_param_store().load)")
    else:
        state = torch.load(src, weights_only=False)
        meta = {"format": "ppl-param-store"}
        tensors = {}
        for name, t in state["params"].items():
            tensors[name] = t
            c = state["constraints"].get(name, constraints.real)
            meta[f"constraint.{name}"] = from_pyro_constraint(c)
        write_safetensors(dst, tensors, meta)
        print(f"wrote {len(tensors)} params to {dst} (load with ParamStore::load_safetensors)")


if __name__ == "__main__":
    main(sys.argv)
