#!/usr/bin/env python3
"""Writes ppl-runtime/tests/fixtures/criticism.json: reference WAIC, PSIS-LOO and compare results
from ArviZ (the classic 0.2x API: az.waic, az.loo, az.psislw, az.compare, az.from_dict).

Run with the peers venv, into which ArviZ 0.23.4 was installed (`pip install "arviz<1"`):
    /root/.cache/ppl/peers/bin/python scripts/make_criticism_fixtures.py

The numpy seed is fixed and NUTS (numpyro, float64, CPU, chain_method="sequential") has a fixed
PRNG key, so the file is reproducible on one machine. The outputs only depend on the inputs that are
stored, so a change of jax/numpyro version can change the draws but never makes a stored case
inconsistent.

Layout (non-finite floats are written as the strings "inf", "-inf", "nan", since JSON has none):
  {"arviz_version", "numpy_version", "scipy_version", "numpyro_version",
   "cases": [case, ...], "compare": [comparison, ...]}
A case:
  name, description, n_chains, n_draws, n_points,
  log_likelihood   nested lists, shape (n_chains, n_draws, n_points)
  posterior        {var: nested lists, shape (n_chains, n_draws, *var_shape)}: the whole posterior
                   group ArviZ saw (with several chains loo's reff uses every variable in it)
  reff             the relative efficiency az.loo used (1.0 for one chain)
  ess_mean         (several chains only) {var: flat list of az.ess(method="mean") per component}
  waic             az.waic(pointwise=True): elpd_waic, se, p_waic, waic_i (n_points), warning,
                   n_samples, n_data_points, scale
  loo              az.loo(pointwise=True): elpd_loo, se, p_loo, loo_i, pareto_k (n_points),
                   warning, good_k, n_samples, n_data_points, scale
  psislw           (some cases) az.psislw(-loglik_stacked, reff) for the listed points: points,
                   log_weights (len(points) x S, normalized), pareto_k; the sample axis is the
                   (chain, draw) stack, chain-major: s = chain * n_draws + draw
A comparison:
  name, ic ("loo"), models {model name: case name}, and per method ("stacking", "pseudo-BMA") the
  rows of az.compare(..., ic="loo", method=...) best first: [{model, rank, elpd_loo, p_loo,
  elpd_diff, weight, se, dse, warning, scale}]; stacking_weight_optimum {model: weight}: the
  stacking optimum solved to ~1e-15 (ArviZ's SLSQP stops at its default ftol=1e-6, so its
  weights are only ~1e-4 close to the optimum; check an independent optimizer against this).
BB-pseudo-BMA is random and left out.

Cases: normal_1chain (reff 1, all smoothed weights stored), regression_4chains (reff from ESS
of a vector and a scalar variable), outliers_2chains (k-hat > good_k, warnings), normal_scale0.8 /
1.5 / 3 (a three-model compare with interior stacking weights), tiny_2chains (tail too short:
k-hat = inf), ties_2chains (repeated draws), eight_schools_pooled / _hierarchical (numpyro NUTS,
compared). Conventions worth knowing: WAIC's p_waic sums ddof=0 variances; the warning threshold
is good_k = min(1 - 1/log10(S), 0.7); with several chains reff = mean over every posterior scalar
component of the split-chain ESS for the mean, divided by S = chains x draws.
"""
import json
import os
import warnings

import numpy as np
import scipy
from scipy.optimize import minimize, LinearConstraint, Bounds

warnings.filterwarnings("ignore")  # ArviZ's FutureWarning on import, and its loo/waic warnings
import arviz as az  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "ppl-runtime", "tests", "fixtures",
                   "criticism.json")
SEED = 20240611
LOG_2PI = np.log(2 * np.pi)


def num(v):
    """A float for JSON; non-finite values as strings ("inf", "-inf", "nan"), as JSON has none."""
    v = float(v)
    return v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))


def nums(a):
    """Nested lists of floats (any shape), non-finite values as strings."""
    a = np.asarray(a, dtype=np.float64)
    if np.all(np.isfinite(a)):
        return a.tolist()
    return [nums(x) for x in a] if a.ndim > 1 else [num(x) for x in a]


def normal_logpdf(y, loc, scale):
    z = (y - loc) / scale
    return -0.5 * LOG_2PI - np.log(scale) - 0.5 * z * z


def idata_of(loglik, posterior):
    return az.from_dict(posterior=posterior, log_likelihood={"y": loglik})


def reff_of(idata, n_samples):
    """The reff az.loo computes itself (recomputed here only to store it)."""
    post = idata.posterior
    if len(post.chain) == 1:
        return 1.0, None
    ess_p = az.ess(post, method="mean")
    per_var = {v: nums(np.asarray(ess_p[v].values).ravel()) for v in ess_p.data_vars}
    return float(np.hstack([ess_p[v].values.flatten() for v in ess_p.data_vars]).mean()
                 / n_samples), per_var


def make_case(name, description, loglik, posterior, psis_points=None):
    loglik = np.asarray(loglik, dtype=np.float64)
    n_chains, n_draws, n_points = loglik.shape
    posterior = {k: np.asarray(v, dtype=np.float64) for k, v in posterior.items()}
    idata = idata_of(loglik, posterior)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = az.waic(idata, pointwise=True)
        lo = az.loo(idata, pointwise=True)
    reff, ess_mean = reff_of(idata, n_chains * n_draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = az.loo(idata, pointwise=True, reff=reff)
    assert np.array_equal(again["loo_i"].values, lo["loo_i"].values), "reff differs from az.loo's"
    case = {
        "name": name,
        "description": description,
        "n_chains": n_chains,
        "n_draws": n_draws,
        "n_points": n_points,
        "log_likelihood": nums(loglik),
        "posterior": {k: nums(v) for k, v in posterior.items()},
        "reff": num(reff),
    }
    if ess_mean is not None:
        case["ess_mean"] = ess_mean
    case["waic"] = {
        "elpd_waic": num(w["elpd_waic"]),
        "se": num(w["se"]),
        "p_waic": num(w["p_waic"]),
        "waic_i": nums(w["waic_i"].values),
        "warning": bool(w["warning"]),
        "n_samples": int(w["n_samples"]),
        "n_data_points": int(w["n_data_points"]),
        "scale": str(w["scale"]),
    }
    case["loo"] = {
        "elpd_loo": num(lo["elpd_loo"]),
        "se": num(lo["se"]),
        "p_loo": num(lo["p_loo"]),
        "loo_i": nums(lo["loo_i"].values),
        "pareto_k": nums(lo["pareto_k"].values),
        "warning": bool(lo["warning"]),
        "good_k": num(lo["good_k"]),
        "n_samples": int(lo["n_samples"]),
        "n_data_points": int(lo["n_data_points"]),
        "scale": str(lo["scale"]),
    }
    if psis_points is not None:
        stacked = idata.log_likelihood["y"].stack(__sample__=("chain", "draw"))
        lw, k = az.psislw(-stacked, reff)
        lw = np.asarray(lw.transpose(..., "__sample__").values)
        k = np.asarray(k.values)
        case["psislw"] = {
            "points": list(psis_points),
            "log_weights": nums(lw[list(psis_points)]),
            "pareto_k": nums(k[list(psis_points)]),
        }
    return case, idata


def stacking_optimum(idatas):
    """The stacking weights solved tightly (same objective as ArviZ, log scale)."""
    loos = {name: az.loo(d, pointwise=True) for name, d in idatas.items()}
    names = sorted(loos, key=lambda m: -float(loos[m]["elpd_loo"]))
    mat = np.exp(np.stack([loos[m]["loo_i"].values for m in names], axis=1))
    cols = mat.shape[1]
    res = minimize(lambda w: -np.sum(np.log(mat @ w)), np.full(cols, 1.0 / cols),
                   jac=lambda w: -np.sum(mat / (mat @ w)[:, None], axis=0), method="SLSQP",
                   bounds=Bounds(np.zeros(cols), np.ones(cols)),
                   constraints=LinearConstraint(np.ones(cols), 1.0, 1.0),
                   options={"ftol": 1e-15, "maxiter": 10000})
    w = np.clip(res.x, 0, None)
    w /= w.sum()
    # polish with EM (the stacking objective is a mixture log-likelihood in the weights)
    for _ in range(200000):
        p = mat * w
        new = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)
        if np.max(np.abs(new - w)) < 1e-16:
            w = new
            break
        w = new
    return dict(zip(names, (float(x) for x in w)))


def make_compare(name, models, idatas):
    out = {"name": name, "ic": "loo", "models": models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ["stacking", "pseudo-BMA"]:
            df = az.compare(idatas, ic="loo", method=method)
            rows = []
            for model, r in df.iterrows():
                rows.append({
                    "model": str(model),
                    "rank": int(r["rank"]),
                    "elpd_loo": num(r["elpd_loo"]),
                    "p_loo": num(r["p_loo"]),
                    "elpd_diff": num(r["elpd_diff"]),
                    "weight": num(r["weight"]),
                    "se": num(r["se"]),
                    "dse": num(r["dse"]),
                    "warning": bool(r["warning"]),
                    "scale": str(r["scale"]),
                })
            out[method] = rows
        out["stacking_weight_optimum"] = {k: num(v) for k, v in stacking_optimum(idatas).items()}
    return out


def eight_schools():
    """Pooled and non-centered hierarchical eight schools, NUTS 4 x 500 after 500 warmup."""
    import jax
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    numpyro.enable_x64()
    numpyro.set_platform("cpu")
    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

    def pooled(sigma, y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        numpyro.sample("obs", dist.Normal(mu, sigma), obs=y)

    def hierarchical(sigma, y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("school", len(sigma)):
            theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
            theta = mu + tau * theta_tilde
            numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)

    def run(model, key):
        mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=500, num_chains=4,
                    chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(key), sigma, y=y)
        return {k: np.asarray(v, dtype=np.float64) for k, v in
                mcmc.get_samples(group_by_chain=True).items()}

    p = run(pooled, 0)
    h = run(hierarchical, 1)
    ll_p = normal_logpdf(y, p["mu"][..., None], sigma)
    theta = h["mu"][..., None] + h["tau"][..., None] * h["theta_tilde"]
    ll_h = normal_logpdf(y, theta, sigma)
    return (ll_p, {"mu": p["mu"]}), (ll_h, {"mu": h["mu"], "tau": h["tau"],
                                            "theta_tilde": h["theta_tilde"]})


def ar1(rng, phi, shape):
    """Stationary AR(1) chains with unit marginal variance along axis 1 of shape."""
    e = rng.standard_normal(shape)
    z = np.empty(shape)
    z[:, 0] = e[:, 0]
    c = np.sqrt(1 - phi * phi)
    for t in range(1, shape[1]):
        z[:, t] = phi * z[:, t - 1] + c * e[:, t]
    return z


def main():
    # One generator per case (seeded with [SEED, case seed]) so that the cases are independent;
    # the case seeds were picked so that each case shows what it is meant to show.
    rng_for = lambda *sub: np.random.default_rng([SEED, *sub])  # noqa: E731
    cases, compares = [], []

    # (a) One chain, y_i ~ N(mu, 1), flat prior: mu | y ~ N(ybar, 1/n); iid draws.
    rng = rng_for(0)
    n, s = 20, 400
    y = rng.normal(0.3, 1.0, n)
    mu = rng.normal(y.mean(), 1 / np.sqrt(n), (1, s))
    c, _ = make_case("normal_1chain", "y_i ~ N(mu, 1), 20 points, 1 chain x 400 iid posterior "
                     "draws of mu; reff = 1", normal_logpdf(y, mu[..., None], 1.0), {"mu": mu},
                     psis_points=range(n))
    cases.append(c)

    # (b) 4 chains x 250 autocorrelated draws: regression y_i ~ N(b0 + b1 x_i, sigma), with
    # beta (shape 2) and sigma drawn as AR(1) chains around the approximate posterior, so that
    # reff = mean ESS("mean") over beta[0], beta[1], sigma, divided by 1000, is well below 1.
    rng = rng_for(1)
    n, chains, draws = 20, 4, 250
    x = rng.uniform(-2, 2, n)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.8, n)
    X = np.stack([np.ones(n), x], axis=1)
    xtx_inv = np.linalg.inv(X.T @ X)
    bhat = xtx_inv @ X.T @ y
    shat = np.sqrt(np.sum((y - X @ bhat) ** 2) / (n - 2))
    L = np.linalg.cholesky(shat ** 2 * xtx_inv)
    z = np.stack([ar1(rng, 0.6, (chains, draws)), ar1(rng, 0.8, (chains, draws))], axis=-1)
    beta = bhat + z @ L.T
    sig = shat * np.exp(ar1(rng, 0.4, (chains, draws)) / np.sqrt(2 * (n - 2)))
    ll = normal_logpdf(y, beta[..., 0:1] + beta[..., 1:2] * x, sig[..., None])
    c, _ = make_case("regression_4chains", "y_i ~ N(b0 + b1 x_i, sigma), 20 points, 4 chains x 250 "
                     "AR(1)-correlated draws of beta (2,) and sigma; reff from mean ESS",
                     ll, {"beta": beta, "sigma": sig}, psis_points=[0, 1, 2])
    cases.append(c)

    # (c) Outliers: y_i ~ N(mu, 1) with two gross outliers; 2 chains x 400 iid draws of mu.
    rng = rng_for(2)
    n, chains, draws = 15, 2, 400
    y = rng.normal(0.0, 1.0, n)
    y[4], y[11] = 9.0, -11.0
    mu = rng.normal(y.mean(), 1 / np.sqrt(n), (chains, draws))
    c, _ = make_case("outliers_2chains", "y_i ~ N(mu, 1), 15 points of which y[4] = 9 and "
                     "y[11] = -11 are outliers; 2 chains x 400 iid draws; k-hat > good_k there",
                     normal_logpdf(y, mu[..., None], 1.0), {"mu": mu}, psis_points=[0, 4, 11])
    cases.append(c)

    # (e) Three models of the same data differing in the known scale: y_i ~ N(mu, s) with
    # s = 0.8, 1.5, 3; the data are 15 N(0, 1) and 5 N(0, 4) points, so stacking mixes them.
    # Flat prior: mu | y ~ N(ybar, s^2/n); one chain x 400 iid draws each.
    rng = rng_for(5, 2)
    n, s = 20, 400
    y = np.concatenate([rng.normal(0, 1, 15), rng.normal(0, 4, 5)])
    idatas, models = {}, {}
    for sc, label in [(0.8, "scale0.8"), (1.5, "scale1.5"), (3.0, "scale3")]:
        mu = rng.normal(y.mean(), sc / np.sqrt(n), (1, s))
        name = f"normal_{label}"
        c, idata = make_case(name, f"y_i ~ N(mu, {sc}) for 20 points (15 from N(0, 1), 5 from "
                             "N(0, 4)), 1 chain x 400 iid draws of mu",
                             normal_logpdf(y, mu[..., None], sc), {"mu": mu})
        cases.append(c)
        models[label] = name
        idatas[label] = idata
    compares.append(make_compare("scales", models, idatas))

    # Edge cases. Tiny: 2 chains x 8 draws, so S = 16 and the tail has ceil(16/5) = 4 < 5 draws:
    # no Pareto fit, k-hat = inf (stored as "inf"), the raw weights are only normalized, and the
    # warning fires; the split chains (4 draws each) are too short for Geyer's sequence to start.
    rng = rng_for(6)
    n, chains, draws = 3, 2, 8
    y = rng.normal(0.0, 1.0, n)
    mu = rng.normal(y.mean(), 1 / np.sqrt(n), (chains, draws))
    c, _ = make_case("tiny_2chains", "y_i ~ N(mu, 1), 3 points, 2 chains x 8 iid draws: tail of 4 "
                     "draws, k-hat = inf", normal_logpdf(y, mu[..., None], 1.0), {"mu": mu},
                     psis_points=range(n))
    cases.append(c)

    # Ties: Metropolis-like chains that repeat the previous draw about half of the time, so the
    # raw log weights have ties (at and inside the tail). k-hat and loo_i do not depend on how a
    # sort orders ties, but single smoothed weights of tied draws do (no psislw stored).
    rng = rng_for(7)
    n, chains, draws = 5, 2, 150
    y = rng.normal(0.0, 1.0, n)
    y[2] = 3.5
    prop = rng.normal(y.mean(), 1 / np.sqrt(n), (chains, draws))
    keep = rng.uniform(size=(chains, draws)) < 0.5
    mu = prop.copy()
    for t in range(1, draws):
        mu[:, t] = np.where(keep[:, t], mu[:, t - 1], prop[:, t])
    c, _ = make_case("ties_2chains", "y_i ~ N(mu, 1), 5 points (y[2] = 3.5), 2 chains x 150 draws "
                     "that repeat the previous draw about half the time (ties)",
                     normal_logpdf(y, mu[..., None], 1.0), {"mu": mu})
    cases.append(c)

    # (d) Eight schools, pooled vs non-centered hierarchical, numpyro NUTS.
    (ll_p, post_p), (ll_h, post_h) = eight_schools()
    c_p, id_p = make_case("eight_schools_pooled", "eight schools, pooled: mu ~ N(0, 5), "
                          "y_j ~ N(mu, sigma_j); NUTS 4 chains x 500", ll_p, post_p)
    c_h, id_h = make_case("eight_schools_hierarchical", "eight schools, non-centered: mu ~ N(0, 5), "
                          "tau ~ HalfCauchy(5), theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau "
                          "theta_tilde_j, sigma_j); NUTS 4 chains x 500", ll_h, post_h,
                          psis_points=[0])
    cases += [c_p, c_h]
    compares.append(make_compare("eight_schools", {"pooled": c_p["name"],
                                                   "hierarchical": c_h["name"]},
                                 {"pooled": id_p, "hierarchical": id_h}))

    import numpyro
    with open(OUT, "w") as f:
        json.dump({"arviz_version": az.__version__, "numpy_version": np.__version__,
                   "scipy_version": scipy.__version__, "numpyro_version": numpyro.__version__,
                   "cases": cases, "compare": compares}, f)
    print(f"wrote {len(cases)} cases and {len(compares)} comparisons to {os.path.normpath(OUT)} "
          f"({os.path.getsize(OUT) / 1e6:.2f} MB)")
    for c in cases:
        print(f"  {c['name']}: reff={c['reff']:.4f} elpd_loo={c['loo']['elpd_loo']:.4f} "
              f"max k={max(map(float, c['loo']['pareto_k'])):.3f} good_k={c['loo']['good_k']:.3f} "
              f"warn loo={c['loo']['warning']} waic={c['waic']['warning']}")
    for cmp in compares:
        for r in cmp["stacking"]:
            print(f"  {cmp['name']} {r['model']}: {r}")
        print(f"  optimum {cmp['stacking_weight_optimum']}")
        for r in cmp["pseudo-BMA"]:
            print(f"  pseudo-BMA {r['model']}: weight={r['weight']}")


if __name__ == "__main__":
    main()
