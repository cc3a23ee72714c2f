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


def nuts(model, args, warmup, samples, post=None, **kernel):
    """`post` maps the draws (grouped by chain) before the ESS and means: NeuTra's draws of the
    shared latent back to the model's sites."""
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    LEAPFROG[0] = 0
    mcmc = MCMC(NUTS(model, **kernel), num_samples=samples, warmup_steps=warmup, num_chains=1,
                disable_progbar=True)
    t0 = C.now()
    mcmc.run(*args)
    total = C.now() - t0
    s = mcmc.get_samples(group_by_chain=True)
    s = s if post is None else post(s)
    ess = diagnostics(s)
    divergences = sum(len(v) for v in mcmc.diagnostics()["divergences"].values())
    min_ess = min(float(v["n_eff"].min()) for v in ess.values())
    return {"total_s": total, "min_ess": C.r(min_ess, 1), "min_ess_per_s": C.r(min_ess / total, 2),
            "leapfrog_steps_total": LEAPFROG[0],
            "ms_per_leapfrog": C.r(1e3 * total / max(LEAPFROG[0], 1), 4),
            "iterations": warmup + samples,
            "leapfrog_per_draw": C.r(LEAPFROG[0] / (warmup + samples), 2),
            "num_divergences": divergences,
            "means": {k: C.r(v.flatten(0, 1).mean(0).numpy(), 3) for k, v in s.items()}}


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


# --- enumeration workloads -------------------------------------------------------------------


def hmm_supervised(K, W, sup_c, sup_w):
    trans = pyro.sample("transition_prob", dist.Dirichlet(torch.ones(K, K)).to_event(1))
    emit = pyro.sample("emission_prob", dist.Dirichlet(torch.full((K, W), 0.1)).to_event(1))
    with pyro.plate("supervised_transitions", sup_c.shape[0] - 1):
        pyro.sample("supervised_categories", dist.Categorical(trans[sup_c[:-1]]), obs=sup_c[1:])
    with pyro.plate("supervised_steps", sup_c.shape[0]):
        pyro.sample("supervised_words", dist.Categorical(emit[sup_c]), obs=sup_w)
    return trans, emit


def hmm_forward_model(K, W, sup_c, sup_w, unsup_w):
    """NumPyro's examples/hmm.py forward algorithm, as a Python loop in a factor."""
    trans, emit = hmm_supervised(K, W, sup_c, sup_w)
    lt, le = trans.log(), emit.log()
    alpha = le[:, unsup_w[0]]
    for w in unsup_w[1:]:
        alpha = (alpha[:, None] + lt).logsumexp(0) + le[:, w]
    pyro.factor("forward_log_prob", alpha.logsumexp(0))


def hmm_enum_model(K, W, sup_c, sup_w, unsup_w):
    """The categories enumerated in a pyro.markov loop with Vindex (Pyro's examples/hmm.py)."""
    from pyro.ops.indexing import Vindex

    trans, emit = hmm_supervised(K, W, sup_c, sup_w)
    x = None
    for t in pyro.markov(range(len(unsup_w))):
        probs = torch.ones(K) / K if x is None else Vindex(trans)[x, :]
        x = pyro.sample(f"x_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        pyro.sample(f"w_{t}", dist.Categorical(Vindex(emit)[x, :]), obs=unsup_w[t])


def hmm_args():
    K, W, sc, sw, uw = C.hmm()
    return (K, W, torch.as_tensor(sc), torch.as_tensor(sw), torch.as_tensor(uw))


def hmm_forward_nuts():
    rec = nuts(hmm_forward_model, hmm_args(), C.HMM_PYRO["warmup"], C.HMM_PYRO["samples"])
    rec["note"] = f"{C.HMM_PYRO['warmup']} + {C.HMM_PYRO['samples']} draws (Python loop is slow)"
    return rec


def hmm_enum_nuts():
    """Pyro needs about a second per gradient here, so NUTS (whose early warm-up trees take up to
    1023 steps) would run for hours: the cost per leapfrog step is measured with fixed-step HMC
    instead (no adaptation, HMC_ENUM_PYRO trajectories of 5 steps)."""
    from pyro.infer import HMC

    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    n, steps = C.HMM_ENUM_PYRO["trajectories"], 5
    kernel = HMC(hmm_enum_model, step_size=1e-3, num_steps=steps, adapt_step_size=False,
                 max_plate_nesting=1)
    mcmc = MCMC(kernel, num_samples=n, warmup_steps=0, num_chains=1, disable_progbar=True)
    t0 = C.now()
    mcmc.run(*hmm_args())
    total = C.now() - t0
    leapfrogs = n * steps  # one trajectory of `steps` leapfrog steps per draw
    return {"total_s": total, "leapfrog_steps_total": leapfrogs, "iterations": n,
            "ms_per_leapfrog": C.r(1e3 * total / max(leapfrogs, 1), 4),
            "note": f"fixed-step HMC, {n} trajectories of {steps} steps: cost per leapfrog only"}


def gmm_model(y, K):
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * torch.ones(K)))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with pyro.plate("components", K):
        locs = pyro.sample("locs", dist.Normal(0.0, 10.0))
    with pyro.plate("data", y.shape[0]):
        z = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
        pyro.sample("obs", dist.Normal(locs[z], scale), obs=y)


def gmm_enum_svi():
    from pyro import poutine
    from pyro.infer import TraceEnum_ELBO
    from pyro.infer.autoguide import AutoDelta
    from pyro.infer.autoguide.initialization import init_to_value

    K = C.GMM["K"]
    y = t(C.gmm())
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    init = {"weights": torch.ones(K) / K, "scale": torch.tensor(1.0),
            "locs": torch.tensor([-2.0, 0.0, 2.0])}
    guide = AutoDelta(poutine.block(gmm_model, hide=["assignment"]),
                      init_loc_fn=init_to_value(values=init))
    svi = SVI(gmm_model, guide, Adam({"lr": C.GMM["lr"]}), loss=TraceEnum_ELBO(max_plate_nesting=1))
    times, losses = svi_loop(svi, C.GMM["steps"], y, K)
    med = guide.median(y, K)
    rec = C.step_stats(times)
    rec.update(weights=C.r(med["weights"].detach().numpy(), 3),
               locs=C.r(med["locs"].detach().numpy(), 3),
               scale=C.r(med["scale"].item(), 3), final_loss=C.r(losses[-1], 3))
    return rec


# --- VAE (Pyro's VAE tutorial, 64 pixels instead of 784) ------------------------------------


class Encoder(torch.nn.Module):
    def __init__(self, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, hidden_dim)
        self.fc21 = torch.nn.Linear(hidden_dim, z_dim)
        self.fc22 = torch.nn.Linear(hidden_dim, z_dim)
        self.softplus = torch.nn.Softplus()

    def forward(self, x):
        hidden = self.softplus(self.fc1(x))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))


class Decoder(torch.nn.Module):
    def __init__(self, z_dim, hidden_dim):
        super().__init__()
        self.fc1 = torch.nn.Linear(z_dim, hidden_dim)
        self.fc21 = torch.nn.Linear(hidden_dim, 64)
        self.softplus = torch.nn.Softplus()

    def forward(self, z):
        # Logits (the tutorial applies a sigmoid and passes probs); ppl's example does the same.
        return self.fc21(self.softplus(self.fc1(z)))


def vae_model(decoder, z_dim):
    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros(torch.Size((x.shape[0], z_dim)))
            z_scale = x.new_ones(torch.Size((x.shape[0], z_dim)))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            pyro.sample("obs", dist.Bernoulli(logits=decoder(z)).to_event(1), obs=x)
    return model


def vae_guide(encoder):
    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = encoder(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
    return guide


def vae_svi():
    x, _ = C.digits()
    batches = [t(b) for b in C.vae_batches(x)]
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    z_dim, hidden = C.VAE["z_dim"], C.VAE["hidden"]
    encoder, decoder = Encoder(z_dim, hidden), Decoder(z_dim, hidden)
    svi = SVI(vae_model(decoder, z_dim), vae_guide(encoder), Adam({"lr": C.VAE["lr"]}),
              loss=Trace_ELBO())
    times, losses = [], []
    for i in range(C.VAE["steps"]):
        batch = batches[i % len(batches)]
        t0 = C.now()
        losses.append(svi.step(batch))
        times.append(C.now() - t0)
    rec = C.step_stats(times)
    rec.update(batch=C.VAE["batch"], batches_per_epoch=len(batches),
               first_loss_per_point=C.r(losses[0] / C.VAE["batch"], 4),
               final_loss_per_point_mean_last50=C.r(np.mean(losses[-50:]) / C.VAE["batch"], 4))
    return rec


# --- NeuTra HMC on Neal's funnel (Pyro's and NumPyro's examples/neutra.py) --------------------


def funnel_model(dim):
    """x: dim - 1 elements in one event; the scale is `[..., 1]`, so that vectorized ELBO
    particles (a batch of y's) broadcast."""
    y = pyro.sample("y", dist.Normal(0.0, 3.0))
    pyro.sample("x", dist.Normal(torch.zeros(dim - 1), torch.exp(y / 2)[..., None]).to_event(1))


def neutra_funnel():
    from pyro import poutine
    from pyro.infer.autoguide import AutoIAFNormal
    from pyro.infer.reparam import NeuTraReparam

    s = dict(C.NEUTRA, **C.NEUTRA_PYRO)
    draws = {}  # the (mapped) draws of the last NUTS run, kept by `keep`

    def keep(d):
        draws.clear()
        draws.update(d)
        return d

    plain = nuts(funnel_model, (s["dim"],), s["warmup"], s["samples"], post=keep)
    plain_y = draws["y"].numpy()
    pyro.clear_param_store()
    pyro.set_rng_seed(C.SEED)
    guide = AutoIAFNormal(funnel_model, hidden_dim=s["hidden"], num_transforms=s["num_flows"])
    elbo = Trace_ELBO(num_particles=s["particles"], vectorize_particles=s["particles"] > 1)
    svi = SVI(funnel_model, guide, Adam({"lr": s["lr"]}), loss=elbo)
    times, losses = svi_loop(svi, s["svi_steps"], s["dim"])
    svi_s = sum(times)
    neutra = NeuTraReparam(guide.requires_grad_(False))

    def unwarp(d):
        with torch.no_grad():
            return keep(neutra.transform_sample(d["y_shared_latent"]))

    nt = nuts(poutine.reparam(funnel_model, config=lambda _: neutra), (s["dim"],),
              s["warmup"], s["samples"], post=unwarp)
    y = draws["y"].numpy()
    total = svi_s + nt["total_s"]
    return {
        "vanilla_total_s": plain["total_s"], "vanilla_divergences": plain["num_divergences"],
        "vanilla_min_ess": plain["min_ess"], "vanilla_min_ess_per_s": plain["min_ess_per_s"],
        "vanilla_leapfrog_steps": plain["leapfrog_steps_total"],
        "vanilla_ms_per_leapfrog": plain["ms_per_leapfrog"],
        "vanilla_y_mean": C.r(plain_y.mean(), 3), "vanilla_y_sd": C.r(plain_y.std(), 3),
        "svi_s": svi_s, "svi_ms_per_step": C.r(1e3 * svi_s / s["svi_steps"], 4),
        "svi_final_loss": C.r(np.mean(losses[-100:]), 4),
        "neutra_nuts_s": nt["total_s"], "neutra_divergences": nt["num_divergences"],
        "neutra_min_ess": nt["min_ess"], "neutra_leapfrog_steps": nt["leapfrog_steps_total"],
        "neutra_ms_per_leapfrog": nt["ms_per_leapfrog"],
        "total_s": total, "min_ess_per_s": C.r(nt["min_ess"] / total, 2),
        "neutra_min_ess_per_s_sampling_only": C.r(nt["min_ess"] / nt["total_s"], 2),
        "y_mean": C.r(y.mean(), 3), "y_sd": C.r(y.std(), 3), "config": s,
        "note": "x ~ Normal(zeros(dim-1), exp(y/2)[..., None]).to_event(1); eager"
                " (jit_compile=False); total_s = svi_s + neutra_nuts_s"
                + ("; fewer draws / SVI steps than C.NEUTRA (see config): compare per-step costs"
                   if C.NEUTRA_PYRO else ""),
    }


if __name__ == "__main__":
    C.main("pyro", {"pyro": pyro.__version__, "torch": torch.__version__},
           torch.get_num_threads(),
           {"coin_svi": coin_svi, "linreg_svi": lambda: linreg(None),
            "linreg_svi_subsample": lambda: linreg(C.LINREG["subsample"]),
            "eight_schools_nuts": eight_schools_nuts, "logreg_nuts": logreg_nuts,
            "hmm_forward_nuts": hmm_forward_nuts, "hmm_enum_nuts": hmm_enum_nuts,
            "gmm_enum_svi": gmm_enum_svi, "vae_svi": vae_svi, "neutra_funnel": neutra_funnel})
