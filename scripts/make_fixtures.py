#!/usr/bin/env python3
"""Writes ppl-runtime/tests/fixtures/distributions.json: reference values from torch.distributions.

Run with the torch 2.11.0 venv:  /root/.cache/ppl/torch-2.11.0/bin/python scripts/make_fixtures.py

Each case names a family and its parameters, a batch of values, and torch's log_prob, mean,
variance, entropy and cdf (where torch has them), computed in float64 and again in float32.
Tensors are {"shape": [...], "data": [...]} with non-finite numbers written as strings
("inf", "-inf", "nan") since JSON has no literal for them. Families Pyro has but torch lacks
(BetaBinomial, GammaPoisson, ZeroInflatedPoisson) are computed from torch building blocks.
"""
import json
import math
import os

import torch
import torch.distributions as D
from torch.distributions.transforms import AffineTransform, ExpTransform

torch.manual_seed(0)
F64 = torch.float64
OUT = os.path.join(os.path.dirname(__file__), "..", "ppl-runtime", "tests", "fixtures",
                   "distributions.json")


def enc(t):
    t = torch.as_tensor(t).detach().to(F64)
    data = []
    for v in t.reshape(-1).tolist():
        data.append(v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")))
    return {"shape": list(t.shape), "data": data}


def t(x):
    return x.detach().clone().to(F64) if torch.is_tensor(x) else torch.tensor(x, dtype=F64)


class BetaBinomial:
    """Pyro's BetaBinomial, written from lgamma (torch has none)."""

    def __init__(self, concentration1, concentration0, total_count):
        self.c1, self.c0, self.n = torch.broadcast_tensors(concentration1, concentration0, total_count)

    def log_prob(self, k):
        lb = lambda a, b: torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
        n = self.n
        return (torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
                + lb(k + self.c1, n - k + self.c0) - lb(self.c1, self.c0))

    @property
    def mean(self):
        return self.n * self.c1 / (self.c1 + self.c0)

    @property
    def variance(self):
        a, b, n = self.c1, self.c0, self.n
        return n * a * b * (a + b + n) / ((a + b) ** 2 * (a + b + 1))


class GammaPoisson:
    """Pyro's GammaPoisson = NegativeBinomial(concentration, probs = 1 / (1 + rate))."""

    def __init__(self, concentration, rate):
        self.nb = D.NegativeBinomial(concentration, probs=1 / (1 + rate))
        self.log_prob = self.nb.log_prob
        self.mean = self.nb.mean
        self.variance = self.nb.variance


class ZeroInflatedPoisson:
    """Pyro's ZeroInflatedPoisson: gate mixed with Poisson(rate)."""

    def __init__(self, gate, rate):
        self.gate, self.rate = torch.broadcast_tensors(gate, rate)

    def log_prob(self, x):
        pois = D.Poisson(self.rate).log_prob(x)
        zero = torch.logaddexp(self.gate.log(), (-self.gate).log1p() + pois)
        return torch.where(x == 0, zero, (-self.gate).log1p() + pois)

    @property
    def mean(self):
        return (1 - self.gate) * self.rate

    @property
    def variance(self):
        return (1 - self.gate) * self.rate * (1 + self.rate * self.gate)


def build(family, p):
    """The torch (or reference) distribution for a case."""
    if family == "MultivariateNormal":
        kw = {k: v for k, v in p.items() if k != "loc"}
        return D.MultivariateNormal(p["loc"], **kw)
    if family == "LowRankMultivariateNormal":
        return D.LowRankMultivariateNormal(p["loc"], p["cov_factor"], p["cov_diag"])
    if family == "LKJCholesky":
        return D.LKJCholesky(int(p["dim"].item()), p["concentration"])
    if family == "Multinomial":
        kw = {k: v for k, v in p.items() if k != "total_count"}
        return D.Multinomial(int(p["total_count"].item()), **kw)
    if family == "MixtureSameFamily":
        return D.MixtureSameFamily(D.Categorical(logits=p["mixture_logits"]),
                                   D.Normal(p["loc"], p["scale"]))
    if family == "TransformedDistribution":
        # Normal base, then exp, then y = 1 + 2 x.
        return D.TransformedDistribution(D.Normal(p["loc"], p["scale"]),
                                         [ExpTransform(), AffineTransform(1.0, 2.0)])
    if family == "BetaBinomial":
        return BetaBinomial(p["concentration1"], p["concentration0"], p["total_count"])
    if family == "GammaPoisson":
        return GammaPoisson(p["concentration"], p["rate"])
    if family == "ZeroInflatedPoisson":
        return ZeroInflatedPoisson(p["gate"], p["rate"])
    return getattr(D, family)(**p)


def stats(d, value):
    out = {"log_prob": d.log_prob(value)}
    for name in ["mean", "variance", "entropy"]:
        try:
            v = getattr(d, name)
            out[name] = v() if callable(v) else v
        except (NotImplementedError, AttributeError):
            pass
    try:
        out["cdf"] = d.cdf(value)
    except (NotImplementedError, AttributeError, ValueError):
        pass
    try:
        out["icdf"] = d.icdf(icdf_at(d, value.dtype))
    except (NotImplementedError, AttributeError, ValueError):
        pass
    return out


def icdf_at(d, dtype):
    """Probabilities for icdf, shaped (n,) + ones for the batch dims so they broadcast. Tails
    only in float64: float32 cannot hold 1 - 1e-6 to better than 6%, so its quantiles there
    depend on each library's order of operations rather than on the formula."""
    batch = list(getattr(d, "batch_shape", ()))
    ps = [1e-6, 0.05, 0.5, 0.95, 1 - 1e-6] if dtype == F64 else [0.05, 0.5, 0.95]
    return torch.tensor(ps, dtype=dtype).reshape(-1, *[1] * len(batch))


def case(family, params, value):
    params = {k: t(v) if not torch.is_tensor(v) else v.to(F64) for k, v in params.items()}
    value = t(value) if not torch.is_tensor(value) else value.to(F64)
    d = build(family, params)
    batch = list(getattr(d, "batch_shape", value.shape[1:]))
    if value.dim() == 1 and batch and value.shape[0] != batch[-1]:
        # Edge values for a scalar-event family: one per leading row, broadcast over the batch.
        value = value.reshape(-1, *[1] * len(batch))
    s64 = stats(d, value)
    p32 = {k: v.float() if k not in ("dim", "total_count") or family not in
           ("LKJCholesky", "Multinomial") else v for k, v in params.items()}
    s32 = stats(build(family, p32), value.float())
    c = {"family": family, "params": {k: enc(v) for k, v in params.items()}, "value": enc(value)}
    c.update({k: enc(v) for k, v in s64.items()})
    c["f32"] = {k: enc(v) for k, v in s32.items()}
    if "icdf" in s64:
        c["icdf_at"] = enc(icdf_at(d, F64))
        c["f32"]["icdf_at"] = enc(icdf_at(d, torch.float32))
    return c


def draw(family, params, n=3):
    """Values drawn from the distribution itself, shape (n,) + batch + event."""
    with torch.no_grad():
        p = {k: t(v) for k, v in params.items()}
        return build(family, p).sample((n,))


CASES = []


def add(family, params, value=None, n=3):
    CASES.append(case(family, params, draw(family, params, n) if value is None else value))


def rand_pd(k, batch=()):
    a = torch.randn(*batch, k, k, dtype=F64)
    return a @ a.transpose(-1, -2) + k * torch.eye(k, dtype=F64)


def main():
    # Continuous scalar families: batched, broadcast (3,1) x (4,), and edge values.
    add("Normal", {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.1, 10.0]})
    add("Normal", {"loc": [[0.0], [1.0], [-3.0]], "scale": [0.5, 1.0, 2.0, 4.0]})
    add("Normal", {"loc": 0.0, "scale": 1.0}, [-30.0, -5.0, 0.0, 1e-8, 5.0, 30.0])
    add("LogNormal", {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.1, 3.0]})
    add("LogNormal", {"loc": [[0.0], [1.0]], "scale": [0.5, 2.0]}, [1e-10, 1.0, 1e10])
    add("HalfNormal", {"scale": [1.0, 0.1, 10.0]})
    add("HalfNormal", {"scale": [[1.0], [3.0]]}, [0.0, 1e-8, 2.0, 50.0])
    add("HalfCauchy", {"scale": [1.0, 0.1, 10.0]})
    add("HalfCauchy", {"scale": [[1.0], [3.0]]}, [0.0, 1e-8, 2.0, 1e8])
    add("Cauchy", {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.1, 10.0]})
    add("Cauchy", {"loc": [[0.0], [5.0]], "scale": [1.0, 2.0]}, [-1e8, 0.0, 1e8])
    add("StudentT", {"df": [0.5, 1.5, 3.0, 30.0], "loc": [0.0, 1.0, -1.0, 2.0],
                     "scale": [1.0, 2.0, 0.5, 1.0]})
    add("StudentT", {"df": [[1.0], [4.0]], "loc": 0.0, "scale": [1.0, 3.0]}, [-1e6, 0.0, 2.0])
    add("Laplace", {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.1, 10.0]})
    add("Laplace", {"loc": [[0.0], [2.0]], "scale": [0.5, 2.0]}, [-40.0, 0.0, 2.0, 40.0])
    add("Gumbel", {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.1, 10.0]})
    add("Gumbel", {"loc": [[0.0], [2.0]], "scale": [0.5, 2.0]}, [-3.0, 0.0, 2.0, 30.0])
    add("Uniform", {"low": [0.0, -1.0, 2.0], "high": [1.0, 1.0, 2.5]})
    add("Uniform", {"low": [[0.0], [-1.0]], "high": [1.0, 3.0]}, [0.0, 0.5, 0.999])
    add("Exponential", {"rate": [1.0, 0.1, 10.0]})
    add("Exponential", {"rate": [[1.0], [3.0]]}, [0.0, 1e-8, 2.0, 60.0])
    add("Gamma", {"concentration": [0.1, 1.0, 5.0, 100.0], "rate": [1.0, 2.0, 0.5, 10.0]})
    add("Gamma", {"concentration": [[0.5], [3.0]], "rate": [1.0, 4.0]}, [1e-8, 0.5, 3.0, 80.0])
    add("InverseGamma", {"concentration": [0.5, 1.5, 2.5, 10.0], "rate": [1.0, 2.0, 0.5, 3.0]})
    add("InverseGamma", {"concentration": [[0.5], [3.0]], "rate": [1.0, 4.0]}, [1e-3, 0.5, 3.0, 1e4])
    add("Beta", {"concentration1": [0.5, 1.0, 2.0, 50.0], "concentration0": [0.5, 3.0, 2.0, 20.0]})
    add("Beta", {"concentration1": [[0.5], [4.0]], "concentration0": [1.0, 3.0]},
        [1e-6, 0.5, 1 - 1e-6])
    add("Chi2", {"df": [0.5, 1.0, 3.0, 40.0]})
    add("Chi2", {"df": [[1.0], [5.0]]}, [1e-6, 1.0, 100.0])
    add("Weibull", {"scale": [1.0, 0.5, 3.0], "concentration": [0.5, 1.0, 4.0]})
    add("Weibull", {"scale": [[1.0], [2.0]], "concentration": [0.7, 3.0]}, [1e-6, 1.0, 10.0])
    add("VonMises", {"loc": [0.0, 1.0, -2.0], "concentration": [0.01, 1.0, 50.0]})
    add("VonMises", {"loc": [[0.0], [1.0]], "concentration": [0.5, 5.0]}, [-3.14, 0.0, 3.14])

    # Discrete scalar families.
    add("Bernoulli", {"probs": [0.0, 0.3, 1.0]}, [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    add("Bernoulli", {"logits": [[-20.0], [0.5]]}, [0.0, 1.0])
    add("Binomial", {"total_count": [10.0, 5.0, 1.0], "probs": [0.2, 0.5, 0.9]})
    add("Binomial", {"total_count": [[10.0], [20.0]], "logits": [-3.0, 2.0]}, [0.0, 3.0, 10.0])
    add("Binomial", {"total_count": 4.0, "probs": [0.0, 1.0]}, [[0.0, 4.0]])
    add("Poisson", {"rate": [0.1, 1.0, 50.0]})
    add("Poisson", {"rate": [[0.5], [4.0]]}, [0.0, 1.0, 30.0])
    add("Geometric", {"probs": [0.1, 0.5, 0.9]})
    add("Geometric", {"logits": [[-2.0], [1.0]]}, [0.0, 1.0, 40.0])
    add("NegativeBinomial", {"total_count": [1.0, 5.5, 20.0], "probs": [0.2, 0.5, 0.9]})
    add("NegativeBinomial", {"total_count": [[2.0], [10.0]], "logits": [-1.0, 1.0]}, [0.0, 4.0, 50.0])
    add("BetaBinomial", {"concentration1": [0.5, 2.0, 5.0], "concentration0": [0.5, 3.0, 1.0],
                         "total_count": [10.0, 5.0, 20.0]}, [[0.0, 2.0, 20.0], [10.0, 5.0, 0.0]])
    add("GammaPoisson", {"concentration": [0.5, 2.0, 10.0], "rate": [1.0, 0.2, 3.0]},
        [[0.0, 2.0, 20.0], [10.0, 5.0, 0.0]])
    add("ZeroInflatedPoisson", {"gate": [0.1, 0.5, 0.9], "rate": [1.0, 3.0, 0.2]},
        [[0.0, 2.0, 20.0], [1.0, 0.0, 0.0]])

    # Vector families.
    add("Categorical", {"probs": [[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]})
    add("Categorical", {"logits": [-1.0, 0.0, 3.0, 1.0]}, [[0, 3], [1, 2]])
    add("OneHotCategorical", {"probs": [[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]})
    add("OneHotCategorical", {"logits": [[-1.0, 0.0, 3.0]]}, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    add("Multinomial", {"total_count": 10, "probs": [[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]})
    add("Multinomial", {"total_count": 6, "logits": [-1.0, 0.0, 2.0]}, [[6.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    add("Dirichlet", {"concentration": [[0.5, 1.0, 2.0], [10.0, 20.0, 30.0]]})
    add("Dirichlet", {"concentration": [0.1, 0.2, 0.3, 5.0]},
        [[0.25, 0.25, 0.25, 0.25], [1e-6, 1e-6, 1e-6, 1 - 3e-6]])
    k = 3
    loc = torch.randn(2, k, dtype=F64)
    cov = rand_pd(k, (2,))
    add("MultivariateNormal", {"loc": loc, "covariance_matrix": cov})
    add("MultivariateNormal", {"loc": loc[0], "precision_matrix": rand_pd(k, (2,))})
    add("MultivariateNormal", {"loc": torch.randn(3, 1, k, dtype=F64),
                               "scale_tril": torch.linalg.cholesky(rand_pd(k, (2,)))})
    add("LowRankMultivariateNormal", {"loc": torch.randn(2, 4, dtype=F64),
                                      "cov_factor": torch.randn(2, 4, 2, dtype=F64),
                                      "cov_diag": torch.rand(2, 4, dtype=F64) + 0.5})
    add("LKJCholesky", {"dim": 3, "concentration": [0.5, 1.0, 4.0]})
    add("LKJCholesky", {"dim": 4, "concentration": 2.0})
    add("MixtureSameFamily", {"mixture_logits": [[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]],
                              "loc": [[-1.0, 0.0, 3.0], [0.0, 0.0, 1.0]],
                              "scale": [[1.0, 0.5, 2.0], [1.0, 3.0, 0.1]]})
    add("TransformedDistribution", {"loc": [0.0, 1.0], "scale": [1.0, 0.5]})

    kl = []
    for (fp, pp), (fq, pq) in [
        (("Normal", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Normal", {"loc": [[1.0], [-1.0]], "scale": [0.5, 3.0]})),
        (("Beta", {"concentration1": [0.5, 2.0], "concentration0": [1.0, 3.0]}),
         ("Beta", {"concentration1": [2.0, 0.7], "concentration0": [4.0, 1.5]})),
        (("Gamma", {"concentration": [0.5, 2.0], "rate": [1.0, 3.0]}),
         ("Gamma", {"concentration": [2.0, 0.7], "rate": [4.0, 1.5]})),
        (("Dirichlet", {"concentration": [[0.5, 1.0, 2.0], [3.0, 1.0, 0.2]]}),
         ("Dirichlet", {"concentration": [1.0, 2.0, 3.0]})),
        (("MultivariateNormal", {"loc": torch.randn(2, 3, dtype=F64), "covariance_matrix": rand_pd(3, (2,))}),
         ("MultivariateNormal", {"loc": torch.randn(3, dtype=F64), "scale_tril": torch.linalg.cholesky(rand_pd(3))})),
        (("LogNormal", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("LogNormal", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("HalfNormal", {"scale": [1.0, 2.0]}), ("HalfNormal", {"scale": [[0.5], [3.0]]})),
        (("Laplace", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Laplace", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Exponential", {"rate": [1.0, 2.0]}), ("Exponential", {"rate": [0.5, 3.0]})),
        (("Poisson", {"rate": [0.1, 1.0, 2.0]}), ("Poisson", {"rate": [0.5, 3.0, 2.0]})),
        (("Bernoulli", {"probs": [0.0, 0.3, 1.0, 0.5]}), ("Bernoulli", {"probs": [0.2, 0.3, 0.9, 0.0]})),
        (("Categorical", {"probs": [[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]]}),
         ("Categorical", {"logits": [[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]]})),
        # Across families (issue 17): closed forms, and infinity where p's support leaves q's.
        (("Exponential", {"rate": [0.5, 2.0]}), ("Normal", {"loc": [0.0, 1.0], "scale": [1.0, 3.0]})),
        (("Gamma", {"concentration": [0.5, 3.0], "rate": [1.0, 2.0]}),
         ("Normal", {"loc": [1.0, -1.0], "scale": [2.0, 0.5]})),
        (("Beta", {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]}),
         ("Normal", {"loc": [0.5, 0.0], "scale": [1.0, 0.3]})),
        (("Laplace", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Normal", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Gumbel", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Normal", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]}),
         ("Normal", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Normal", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Gumbel", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Exponential", {"rate": [0.5, 2.0]}), ("Gumbel", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Gamma", {"concentration": [0.5, 3.0], "rate": [1.0, 2.0]}),
         ("Gumbel", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]}),
         ("Gumbel", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Exponential", {"rate": [0.5, 2.0]}), ("Gamma", {"concentration": [2.0, 0.7], "rate": [4.0, 1.5]})),
        (("Beta", {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]}),
         ("Gamma", {"concentration": [2.0, 0.7], "rate": [4.0, 1.5]})),
        (("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]}),
         ("Gamma", {"concentration": [2.0, 0.7], "rate": [4.0, 1.5]})),
        (("Gamma", {"concentration": [0.5, 3.0], "rate": [1.0, 2.0]}), ("Exponential", {"rate": [0.5, 2.0]})),
        (("Beta", {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]}),
         ("Exponential", {"rate": [0.5, 2.0]})),
        (("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]}), ("Exponential", {"rate": [0.5, 2.0]})),
        (("Uniform", {"low": [0.1, 0.5], "high": [0.7, 1.5]}),
         ("Beta", {"concentration1": [2.0, 0.7], "concentration0": [4.0, 1.5]})),
        (("Beta", {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]}),
         ("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]})),
        (("Normal", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Laplace", {"loc": [1.0, -1.0], "scale": [0.5, 3.0]})),
        (("Normal", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Gamma", {"concentration": [2.0, 0.7], "rate": [4.0, 1.5]})),
        (("Gumbel", {"loc": [0.0, 1.0], "scale": [1.0, 2.0]}),
         ("Beta", {"concentration1": [2.0, 0.7], "concentration0": [4.0, 1.5]})),
        (("Exponential", {"rate": [0.5, 2.0]}), ("Uniform", {"low": [-1.0, 0.5], "high": [1.0, 3.0]})),
    ]:
        p = build(fp, {k: t(v) if not torch.is_tensor(v) else v for k, v in pp.items()})
        q = build(fq, {k: t(v) if not torch.is_tensor(v) else v for k, v in pq.items()})
        kl.append({"p": {"family": fp, "params": {k: enc(v) for k, v in pp.items()}},
                   "q": {"family": fq, "params": {k: enc(v) for k, v in pq.items()}},
                   "kl": enc(D.kl_divergence(p, q))})

    # Added after the KL cases so that the draws above stay as they were.
    add("RelaxedBernoulli", {"temperature": 0.5, "probs": [0.1, 0.5, 0.9]})
    add("RelaxedBernoulli", {"temperature": [[0.2], [2.0]], "logits": [-1.0, 0.0, 3.0]},
        [0.01, 0.5, 0.99])
    add("RelaxedOneHotCategorical", {"temperature": 0.7, "probs": [[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]})
    add("RelaxedOneHotCategorical", {"temperature": 3.0, "logits": [[-1.0, 0.0, 3.0]]},
        [[0.2, 0.3, 0.5], [0.01, 0.01, 0.98]])

    # Issue 17's families that torch has (appended, so the draws above stay as they were).
    add("Pareto", {"scale": [1.0, 0.5, 2.0], "alpha": [0.5, 2.5, 5.0]})
    add("Pareto", {"scale": [[1.0], [3.0]], "alpha": [1.5, 3.0]}, [3.0, 5.0, 1e6])
    add("Kumaraswamy", {"concentration1": [0.5, 1.0, 3.0], "concentration0": [0.7, 2.0, 5.0]})
    add("Kumaraswamy", {"concentration1": [[2.0], [0.5]], "concentration0": [1.5, 4.0]},
        [1e-6, 0.5, 1 - 1e-6])
    add("FisherSnedecor", {"df1": [1.0, 4.0, 10.0], "df2": [1.5, 5.0, 30.0]})
    add("FisherSnedecor", {"df1": [[2.0], [7.0]], "df2": [3.0, 9.0]}, [1e-4, 1.0, 50.0])

    add("Wishart", {"df": [3.0, 5.5], "scale_tril": torch.linalg.cholesky(rand_pd(3, (2,)))})
    add("ContinuousBernoulli", {"probs": [0.1, 0.499, 0.5, 0.9]})
    add("ContinuousBernoulli", {"logits": [[-3.0], [0.001]]}, [0.0, 0.3, 1.0])
    add("LogisticNormal", {"loc": [[0.0, 1.0], [-1.0, 0.5]], "scale": [[1.0, 0.5], [2.0, 1.0]]})

    with open(OUT, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": CASES, "kl": kl}, f)
    print(f"wrote {len(CASES)} cases and {len(kl)} KL pairs to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
