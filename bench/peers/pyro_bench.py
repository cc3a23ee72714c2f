"""Pyro's side of the benchmark workloads (eager, default settings, validation on)."""
import os

import numpy as np
import torch

torch.set_num_threads(os.cpu_count())
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import pyro.infer.mcmc.nuts as nuts_mod  # noqa: E402
from pyro.distributions import constraints  # noqa: E402
from pyro.infer import MCMC, NUTS, SVI, Trace_ELBO  # noqa: E402
from pyro.infer.autoguide import AutoNormal, init_to_feasible  # noqa: E402
from pyro.infer.mcmc.util import diagnostics  # noqa: E402
from pyro.optim import Adam  # noqa: E402

import common as C  # noqa: E402


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def svi_loop(svi, steps, *args):
    times, losses = [], []
    for _ in range(steps):
        t0 = C.now()
        losses.append(svi.step(*args))
        times.append(C.now() - t0)
    return times, losses


def coin_model(data):
    f = pyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with pyro.plate("data", data.shape[0]):
        pyro.sample("obs", dist.Bernoulli(f), obs=data)


def coin_guide(data):
    a = pyro.param("alpha_q", torch.tensor(C.COIN["init"]), constraint=constraints.positive)
    b = pyro.param("beta_q", torch.tensor(C.COIN["init"]), constraint=constraints.positive)
    pyro.sample("latent_fairness", dist.Beta(a, b))


def coin_svi():
    data = t(C.coin())
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    svi = SVI(coin_model, coin_guide, Adam({"lr": C.COIN["lr"], "betas": C.COIN["betas"]}),
              loss=Trace_ELBO())
    times, losses = svi_loop(svi, C.COIN["steps"], data)
    a, b = pyro.param("alpha_q").item(), pyro.param("beta_q").item()
    m, s = C.beta_mean_std(a, b)
    rec = C.step_stats(times)
    rec.update(alpha_q=C.r(a), beta_q=C.r(b), fairness_mean=C.r(m), fairness_std=C.r(s),
               final_loss_mean_last100=C.r(np.mean(losses[-100:]), 4))
    return rec


def linreg_model(subsample):
    def model(X, y):
        w = pyro.sample("w", dist.Normal(torch.zeros(X.shape[1]), 1.0).to_event(1))
        b = pyro.sample("b", dist.Normal(0.0, 1.0))
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        with pyro.plate("data", X.shape[0], subsample_size=subsample) as idx:
            Xb, yb = (X, y) if subsample is None else (X[idx], y[idx])
            pyro.sample("obs", dist.Normal(Xb @ w + b, sigma), obs=yb)
    return model


def linreg(subsample):
    Xn, yn = C.linreg()
    w_true, b_true = C.linreg_truth()
    X, y = t(Xn), t(yn)
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    model = linreg_model(subsample)
    guide = AutoNormal(model, init_loc_fn=init_to_feasible, init_scale=0.1)
    svi = SVI(model, guide, Adam({"lr": C.LINREG["lr"]}), loss=Trace_ELBO())
    times, losses = svi_loop(svi, C.LINREG["steps"], X, y)
    with torch.no_grad():
        med = guide.median(X, y)
    w = med["w"].numpy().astype(np.float64)
    rec = C.step_stats(times)
    rec.update(w_max_abs_err=C.r(np.max(np.abs(w - w_true)), 4),
               b_abs_err=C.r(abs(float(med["b"]) - b_true), 4),
               sigma_post_median=C.r(float(med["sigma"]), 4),
               final_loss_mean_last100=C.r(np.mean(losses[-100:]), 2))
    return rec


LEAPFROG = [0]
_vv = nuts_mod.velocity_verlet


def _counting_vv(*a, **k):
    LEAPFROG[0] += 1
    return _vv(*a, **k)


nuts_mod.velocity_verlet = _counting_vv


def nuts(model, args, warmup, samples):
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    LEAPFROG[0] = 0
    mcmc = MCMC(NUTS(model), num_samples=samples, warmup_steps=warmup, num_chains=1,
                disable_progbar=True)
    t0 = C.now()
    mcmc.run(*args)
    total = C.now() - t0
    ess = diagnostics(mcmc.get_samples(group_by_chain=True))
    min_ess = min(float(v["n_eff"].min()) for v in ess.values())
    return {"total_s": total, "min_ess": C.r(min_ess, 1), "min_ess_per_s": C.r(min_ess / total, 2),
            "leapfrog_steps_total": LEAPFROG[0],
            "ms_per_leapfrog": C.r(1e3 * total / max(LEAPFROG[0], 1), 4),
            "means": {k: C.r(v.mean(0).numpy(), 3) for k, v in mcmc.get_samples().items()}}


def eight_schools_model(sigma, y):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("J", sigma.shape[0]):
        th = pyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(mu + tau * th, sigma), obs=y)


def logreg_model(X, y):
    w = pyro.sample("w", dist.Normal(torch.zeros(X.shape[1]), 1.0).to_event(1))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Bernoulli(logits=X @ w + b), obs=y)


def eight_schools_nuts():
    y, sigma = C.eight_schools()
    return nuts(eight_schools_model, (t(sigma), t(y)), C.EIGHT["warmup"], C.EIGHT["samples"])


def logreg_nuts():
    X, y = C.logreg()
    return nuts(logreg_model, (t(X), t(y)), C.LOGREG["warmup"], C.LOGREG["samples"])


if __name__ == "__main__":
    C.main("pyro", {"pyro": pyro.__version__, "torch": torch.__version__},
           torch.get_num_threads(),
           {"coin_svi": coin_svi, "linreg_svi": lambda: linreg(None),
            "linreg_svi_subsample": lambda: linreg(C.LINREG["subsample"]),
            "eight_schools_nuts": eight_schools_nuts, "logreg_nuts": logreg_nuts})
