"""Writes ppl-runtime/tests/fixtures/distributions_extra.json: reference values for the families
torch lacks, from scipy.stats and Pyro (issue 17), in the layout of distributions.json (float64
only: these references have no float32 twin).

Run with the peers' venv:  ~/.cache/ppl/peers/bin/python scripts/make_extra_fixtures.py

Sources: Logistic, LogUniform, TruncatedNormal, DiscreteUniform from scipy.stats (logistic,
loguniform, truncnorm, randint); SoftLaplace, AsymmetricLaplace, ZeroInflatedNegativeBinomial
from pyro.distributions.
"""
import json
import math
import os

import numpy as np
import scipy
import scipy.integrate
import scipy.stats as st
import torch
import pyro
import pyro.distributions as pd

OUT = os.path.join(os.path.dirname(__file__), "..", "ppl-runtime", "tests", "fixtures",
                   "distributions_extra.json")
rng = np.random.default_rng(0)
torch.manual_seed(0)


def enc(a):
    a = np.asarray(a, dtype=np.float64)
    data = [v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
            for v in a.reshape(-1).tolist()]
    return {"shape": list(a.shape), "data": data}


CASES = []
PS = np.array([1e-6, 0.05, 0.5, 0.95, 1 - 1e-6])


def scipy_case(family, params, dist, value, icdf=True, discrete=False):
    value = np.asarray(value, dtype=np.float64)
    batch = np.broadcast(*[np.asarray(v) for v in params.values()]).shape
    c = {"family": family, "params": {k: enc(v) for k, v in params.items()}, "value": enc(value)}
    c["log_prob"] = enc(dist.logpmf(value) if discrete else dist.logpdf(value))
    c["mean"] = enc(np.broadcast_to(dist.mean(), batch))
    c["variance"] = enc(np.broadcast_to(dist.var(), batch))
    c["entropy"] = enc(np.broadcast_to(dist.entropy(), batch))
    c["cdf"] = enc(dist.cdf(value))
    if icdf:
        at = PS.reshape(-1, *[1] * len(batch))
        c["icdf_at"] = enc(at)
        c["icdf"] = enc(dist.ppf(at))
    CASES.append(c)


def pyro_case(family, params, d, value, stats=("mean", "variance"), cdf=False):
    value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    c = {"family": family, "params": {k: enc(v) for k, v in params.items()}, "value": enc(value)}
    c["log_prob"] = enc(d.log_prob(value).detach())
    for s in stats:
        c[s] = enc(getattr(d, s).detach())
    if cdf:
        c["cdf"] = enc(d.cdf(value).detach())
        at = torch.tensor(PS).reshape(-1, *[1] * len(d.batch_shape))
        c["icdf_at"] = enc(at)
        c["icdf"] = enc(d.icdf(at).detach())
    CASES.append(c)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


# Logistic(loc, scale)
loc, scale = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.1, 10.0])
scipy_case("Logistic", {"loc": loc, "scale": scale}, st.logistic(loc, scale),
           [[-40.0, 1.0, 0.0], [0.5, 1.2, 30.0]])
# LogUniform(low, high)
low, high = np.array([0.1, 1.0, 5.0]), np.array([10.0, 2.0, 500.0])
scipy_case("LogUniform", {"low": low, "high": high}, st.loguniform(low, high),
           [[0.1, 1.5, 100.0], [5.0, 2.0, 5.0]])
# TruncatedNormal(loc, scale, low, high): two-sided, one-sided and far in a tail.
loc, scale = np.array([0.0, 1.0, -2.0, 0.0]), np.array([1.0, 2.0, 0.5, 1.0])
low, high = np.array([-1.0, -np.inf, -1.0, 5.0]), np.array([2.0, 0.0, np.inf, 8.0])
tn = st.truncnorm((low - loc) / scale, (high - loc) / scale, loc, scale)
scipy_case("TruncatedNormal", {"loc": loc, "scale": scale, "low": low, "high": high}, tn,
           [[0.5, -3.0, 0.0, 5.5], [-1.0, 0.0, 10.0, 7.9]])
# scipy 1.17's truncnorm entropy is NaN with an infinite bound (inf * pdf(inf)): the entropy
# is integrated numerically instead, -∫ p log p over the support, for every entry.
ent = []
for i in range(4):
    one = st.truncnorm((low[i] - loc[i]) / scale[i], (high[i] - loc[i]) / scale[i], loc[i], scale[i])
    lo, hi = one.ppf(1e-15), one.ppf(1 - 1e-15)
    ent.append(scipy.integrate.quad(lambda x: -one.pdf(x) * one.logpdf(x), lo, hi,
                                    epsabs=1e-13, epsrel=1e-12, limit=200)[0])
CASES[-1]["entropy"] = enc(ent)
# DiscreteUniform(low, high)
low, high = np.array([0.0, -3.0, 5.0]), np.array([1.0, 3.0, 5.0])
scipy_case("DiscreteUniform", {"low": low, "high": high}, st.randint(low, high + 1),
           [[0.0, -3.0, 5.0], [1.0, 2.0, 5.0]], icdf=False, discrete=True)
# SoftLaplace(loc, scale)
loc, scale = [0.0, 1.0, -2.0], [1.0, 0.1, 10.0]
pyro_case("SoftLaplace", {"loc": loc, "scale": scale}, pd.SoftLaplace(t(loc), t(scale)),
          [[-5.0, 1.0, 0.0], [0.5, 1.2, 30.0]], cdf=True)
# AsymmetricLaplace(loc, scale, asymmetry)
loc, scale, asym = [0.0, 1.0, -2.0], [1.0, 0.5, 3.0], [0.5, 1.0, 4.0]
pyro_case("AsymmetricLaplace", {"loc": loc, "scale": scale, "asymmetry": asym},
          pd.AsymmetricLaplace(t(loc), t(scale), t(asym)), [[-5.0, 1.0, 0.0], [0.5, 1.2, 30.0]])
# ZeroInflatedNegativeBinomial(total_count, probs, gate)
r, p, g = [1.0, 5.5, 20.0], [0.2, 0.5, 0.9], [0.1, 0.5, 0.0]
pyro_case("ZeroInflatedNegativeBinomial", {"total_count": r, "probs": p, "gate": g},
          pd.ZeroInflatedNegativeBinomial(total_count=t(r), probs=t(p), gate=t(g)),
          [[0.0, 3.0, 40.0], [7.0, 0.0, 0.0]])

# MultivariateStudentT(df, loc, scale_tril): batched df, broadcast loc.
df = [0.8, 1.5, 4.0]
loc = torch.randn(3, 3, dtype=torch.float64)
a = torch.randn(3, 3, 3, dtype=torch.float64)
scale_tril = torch.linalg.cholesky(a @ a.transpose(-1, -2) + 3 * torch.eye(3, dtype=torch.float64))
mst = pd.MultivariateStudentT(t(df), loc, scale_tril)
pyro_case("MultivariateStudentT", {"df": df, "loc": loc.numpy(), "scale_tril": scale_tril.numpy()},
          mst, mst.sample((2,)).numpy())

# DirichletMultinomial(concentration, total_count)
conc = [[0.5, 1.0, 2.0], [3.0, 0.2, 1.0]]
dm = pd.DirichletMultinomial(t(conc), total_count=6)
pyro_case("DirichletMultinomial", {"concentration": conc, "total_count": 6.0}, dm,
          [[[6.0, 0.0, 0.0], [1.0, 2.0, 3.0]], [[0.0, 0.0, 6.0], [2.0, 2.0, 2.0]]])

# GaussianRandomWalk(scale, num_steps), from NumPyro.
import numpyro.distributions as nd  # noqa: E402
import jax  # noqa: E402
jax.config.update("jax_enable_x64", True)
scale = np.array([0.5, 2.0])
grw = nd.GaussianRandomWalk(scale, num_steps=4)
value = np.array([[[0.1, -0.3, 0.5, 1.0], [2.0, 1.0, -1.0, 0.0]],
                  [[0.0, 0.0, 0.0, 0.0], [-3.0, 1.0, 4.0, 4.5]]])
CASES.append({"family": "GaussianRandomWalk",
              "params": {"scale": enc(scale), "num_steps": enc(4.0)},
              "value": enc(value), "log_prob": enc(grw.log_prob(value)),
              "mean": enc(grw.mean), "variance": enc(grw.variance)})

# LKJ(dim, concentration) over correlation matrices, from NumPyro.
lkj = nd.LKJ(3, np.array([0.5, 2.0]))
value = np.asarray(lkj.sample(jax.random.PRNGKey(0), (2,)))
CASES.append({"family": "LKJ", "params": {"dim": enc(3.0), "concentration": enc([0.5, 2.0])},
              "value": enc(value), "log_prob": enc(lkj.log_prob(value))})
# OrderedLogistic(predictor, cutpoints), from Pyro.
pred, cut = [-1.0, 0.5, 2.0], [-0.5, 0.3, 1.5]
ol = pd.OrderedLogistic(t(pred), t(cut))
pyro_case("OrderedLogistic", {"predictor": pred, "cutpoints": cut}, ol,
          [[0.0, 3.0, 1.0], [2.0, 2.0, 3.0]], stats=())

# SkewLogistic(loc, scale, asymmetry), from Pyro.
loc, scale, asym = [0.0, 1.0, -2.0], [1.0, 0.5, 3.0], [0.5, 1.0, 4.0]
pyro_case("SkewLogistic", {"loc": loc, "scale": scale, "asymmetry": asym},
          pd.SkewLogistic(t(loc), t(scale), t(asym)), [[-5.0, 1.0, 0.0], [0.5, 1.2, 30.0]],
          stats=(), cdf=True)


def numpyro_case(family, params, d, value, stats=()):
    value = np.asarray(value, dtype=np.float64)
    c = {"family": family, "params": {k: enc(v) for k, v in params.items()}, "value": enc(value),
         "log_prob": enc(d.log_prob(value))}
    for s_ in stats:
        c[s_] = enc(getattr(d, s_))
    CASES.append(c)


# BetaNegativeBinomial(concentration1, concentration0, n), from NumPyro.
a, b, n = np.array([0.5, 2.0, 5.0]), np.array([3.0, 4.5, 1.5]), np.array([1.0, 3.0, 10.0])
numpyro_case("BetaNegativeBinomial", {"concentration1": a, "concentration0": b, "n": n},
             nd.BetaNegativeBinomial(a, b, n), [[0.0, 2.0, 7.0], [5.0, 0.0, 30.0]])
# TruncatedCauchy(loc, scale, low, high), from NumPyro.
loc, scale = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0])
low, high = np.array([-1.0, 0.0, -np.inf]), np.array([2.0, np.inf, 0.0])
numpyro_case("TruncatedCauchy", {"loc": loc, "scale": scale, "low": low, "high": high},
             nd.TruncatedCauchy(loc, scale, low=low, high=high),
             [[0.5, 3.0, -10.0], [-1.0, 0.1, 0.0]])
# Censoring, from NumPyro, on a Normal(1, 2) base.
base = nd.Normal(np.array([1.0, 1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0, 2.0]))
cens = np.array([True, False, True, False])
value = np.array([0.5, -1.0, 3.0, 2.0])
CASES.append({"family": "LeftCensored", "params": {"loc": enc(1.0), "scale": enc(2.0),
              "censored": enc(cens)}, "value": enc(value),
              "log_prob": enc(nd.LeftCensoredDistribution(base, censored=cens).log_prob(value))})
CASES.append({"family": "RightCensored", "params": {"loc": enc(1.0), "scale": enc(2.0),
              "censored": enc(cens)}, "value": enc(value),
              "log_prob": enc(nd.RightCensoredDistribution(base, censored=cens).log_prob(value))})
left, right = np.array([1, 0, 0, 1]), np.array([0, 1, 0, 1])
pairs = np.array([[-np.inf, 0.5], [2.0, np.inf], [-1.0, 3.0], [0.0, 1.5]])
CASES.append({"family": "IntervalCensored", "params": {"loc": enc(1.0), "scale": enc(2.0),
              "left": enc(left), "right": enc(right)}, "value": enc(pairs),
              "log_prob": enc(nd.IntervalCensoredDistribution(base, left, right).log_prob(pairs))})

# InverseWishart(concentration, scale_matrix) and MatrixNormal, from NumPyro.
psi = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.5]])
iw = nd.InverseWishart(np.array([4.0, 7.5]), scale_matrix=psi)
value = np.asarray(iw.sample(jax.random.PRNGKey(1), (2,)))
numpyro_case("InverseWishart", {"concentration": [4.0, 7.5], "scale_matrix": psi}, iw, value,
             stats=("mean",))
loc = np.arange(6.0).reshape(2, 3) / 3.0
lr = np.array([[1.0, 0.0], [0.5, 2.0]])
lc = np.array([[1.5, 0.0, 0.0], [-0.3, 1.0, 0.0], [0.2, 0.4, 0.7]])
mn = nd.MatrixNormal(loc, lr, lc)
value = np.asarray(mn.sample(jax.random.PRNGKey(2), (3,)))
numpyro_case("MatrixNormal", {"loc": loc, "scale_tril_row": lr, "scale_tril_column": lc}, mn,
             value, stats=("mean",))
# ProjectedNormal (dims 2, 3, 4, 5: Pyro has closed forms for 2-4 only) and VonMises3D, from Pyro.
for dim in (2, 3, 4):
    conc = torch.randn(2, dim, dtype=torch.float64) * 1.5
    d = pd.ProjectedNormal(conc)
    pyro_case("ProjectedNormal", {"concentration": conc.numpy()}, d, d.sample((3,)).numpy(), stats=())
conc = torch.tensor([[0.0, 0.0, 2.0], [1.0, -3.0, 0.5]], dtype=torch.float64)
vm = pd.VonMises3D(conc)
x = torch.nn.functional.normalize(torch.randn(3, 2, 3, dtype=torch.float64), dim=-1)
pyro_case("VonMises3D", {"concentration": conc.numpy()}, vm, x.numpy(), stats=())
# MixtureOfDiagNormals(locs, coord_scale, component_logits), from Pyro.
locs = torch.randn(3, 2, dtype=torch.float64)
cs = torch.rand(3, 2, dtype=torch.float64) + 0.5
logits = torch.randn(3, dtype=torch.float64)
mix = pd.MixtureOfDiagNormals(locs, cs, logits)
pyro_case("MixtureOfDiagNormals", {"locs": locs.numpy(), "coord_scale": cs.numpy(),
                                   "component_logits": logits.numpy()}, mix,
          torch.randn(4, 2, dtype=torch.float64).numpy(), stats=())

# SineBivariateVonMises, from Pyro (moderate concentrations: Pyro's 51-term Bessel series is
# exact there).
phi_loc, psi_loc = [0.0, 1.0, -2.0], [0.5, -1.0, 3.0]
k1, k2, lam = [1.0, 2.5, 0.7], [0.5, 3.0, 1.2], [0.3, -1.5, 0.0]
sbv = pd.SineBivariateVonMises(t(phi_loc), t(psi_loc), t(k1), t(k2), t(lam))
angles = (torch.rand(2, 3, 2, dtype=torch.float64) * 2 - 1) * math.pi
pyro_case("SineBivariateVonMises", {"phi_loc": phi_loc, "psi_loc": psi_loc,
                                    "phi_concentration": k1, "psi_concentration": k2,
                                    "correlation": lam}, sbv, angles.numpy(), stats=())

# Stable in Nolan's S0 parameterization (Pyro's default coords), from scipy.stats.levy_stable.
from scipy.stats import levy_stable  # noqa: E402
levy_stable.parameterization = "S0"
alpha = np.array([1.5, 1.5, 0.8, 1.0, 1.9, 0.5, 1.2])
beta = np.array([0.0, 0.5, -0.3, 0.5, 0.9, 1.0, -1.0])
scale = np.array([1.0, 2.0, 1.0, 0.5, 1.0, 1.5, 1.0])
loc = np.array([0.0, 1.0, 0.0, -1.0, 0.5, 0.0, 2.0])
value = np.array([[-3.0, -0.5, 0.0, 0.7, 4.0, -1.0, 2.5], [0.3, 5.0, -2.0, -1.2, -6.0, 10.0, 1.0]])
CASES.append({"family": "Stable", "params": {"stability": enc(alpha), "skew": enc(beta),
              "scale": enc(scale), "loc": enc(loc)}, "value": enc(value),
              "log_prob": enc(levy_stable.logpdf(value, alpha, beta, loc=loc, scale=scale))})

with open(OUT, "w") as f:
    json.dump({"scipy_version": scipy.__version__, "pyro_version": pyro.__version__,
               "cases": CASES}, f)
print(f"wrote {len(CASES)} cases to {os.path.normpath(OUT)}")
