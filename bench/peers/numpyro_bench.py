"""NumPyro's side of the benchmark workloads: the SVI update is `jax.jit`-compiled and called from
a Python loop (directly comparable to a step loop); NUTS is timed on its second, compiled run."""
import functools
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.diagnostics import effective_sample_size  # noqa: E402
from numpyro.distributions import constraints  # noqa: E402
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402
from numpyro.infer.initialization import init_to_feasible  # noqa: E402

import common as C  # noqa: E402


def f32(a):
    return jnp.asarray(np.asarray(a), dtype=jnp.float32)


def svi_loop(svi, steps, *args):
    state = svi.init(jax.random.PRNGKey(C.SEED), *args)
    update = jax.jit(svi.update)
    times, losses = [], []
    for _ in range(steps):
        t0 = C.now()
        state, loss = update(state, *args)
        loss.block_until_ready()
        times.append(C.now() - t0)
        losses.append(float(loss))
    return state, times, losses


def coin_model(data):
    f = numpyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with numpyro.plate("data", data.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(f), obs=data)


def coin_guide(data):
    a = numpyro.param("alpha_q", C.COIN["init"], constraint=constraints.positive)
    b = numpyro.param("beta_q", C.COIN["init"], constraint=constraints.positive)
    numpyro.sample("latent_fairness", dist.Beta(a, b))


def coin_svi():
    data = f32(C.coin())
    opt = numpyro.optim.Adam(step_size=C.COIN["lr"], b1=C.COIN["betas"][0], b2=C.COIN["betas"][1])
    svi = SVI(coin_model, coin_guide, opt, loss=Trace_ELBO())
    state, times, losses = svi_loop(svi, C.COIN["steps"], data)
    p = svi.get_params(state)
    a, b = float(p["alpha_q"]), float(p["beta_q"])
    m, s = C.beta_mean_std(a, b)
    rec = C.step_stats(times)
    rec.update(alpha_q=C.r(a), beta_q=C.r(b), fairness_mean=C.r(m), fairness_std=C.r(s),
               final_loss_mean_last100=C.r(np.mean(losses[-100:]), 4))
    return rec


def linreg_model(subsample):
    def model(X, y):
        w = numpyro.sample("w", dist.Normal(jnp.zeros(X.shape[1]), 1.0).to_event(1))
        b = numpyro.sample("b", dist.Normal(0.0, 1.0))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        with numpyro.plate("data", X.shape[0], subsample_size=subsample) as idx:
            Xb, yb = (X, y) if subsample is None else (X[idx], y[idx])
            numpyro.sample("obs", dist.Normal(Xb @ w + b, sigma), obs=yb)
    return model


def linreg(subsample):
    Xn, yn = C.linreg()
    w_true, b_true = C.linreg_truth()
    X, y = f32(Xn), f32(yn)
    model = linreg_model(subsample)
    guide = AutoNormal(model, init_loc_fn=init_to_feasible, init_scale=0.1)
    svi = SVI(model, guide, numpyro.optim.Adam(C.LINREG["lr"]), loss=Trace_ELBO())
    state, times, losses = svi_loop(svi, C.LINREG["steps"], X, y)
    med = guide.median(svi.get_params(state))
    w = np.asarray(med["w"], dtype=np.float64)
    rec = C.step_stats(times)
    rec.update(w_max_abs_err=C.r(np.max(np.abs(w - w_true)), 4),
               b_abs_err=C.r(abs(float(med["b"]) - b_true), 4),
               sigma_post_median=C.r(float(med["sigma"]), 4),
               final_loss_mean_last100=C.r(np.mean(losses[-100:]), 2))
    return rec


def nuts(model, args, warmup, samples, post=None):
    """`post` maps the draws (grouped by chain) before the ESS and means: NeuTra's draws of the
    shared latent back to the model's sites."""
    key = jax.random.PRNGKey(C.SEED)
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=1,
                progress_bar=False)
    t0 = C.now()
    mcmc.run(key, *args)
    first = C.now() - t0  # includes compilation
    t0 = C.now()
    mcmc.run(key, *args, extra_fields=("diverging",))  # compiled
    total = C.now() - t0
    divergences = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    s = mcmc.get_samples(group_by_chain=True)
    s = s if post is None else post(s)
    min_ess = min(float(np.min(effective_sample_size(np.asarray(v)))) for v in s.values())
    # Leapfrog steps (warmup included) from an untimed replay with the same key: the same
    # trajectory, split into warmup and sampling so that both phases' steps are collected.
    replay = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=1,
                  progress_bar=False)
    replay.warmup(key, *args, collect_warmup=True, extra_fields=("num_steps",))
    steps = int(np.sum(replay.get_extra_fields()["num_steps"]))
    replay.run(replay.post_warmup_state.rng_key, *args, extra_fields=("num_steps",))
    steps += int(np.sum(replay.get_extra_fields()["num_steps"]))
    return {"total_s": total, "first_run_s": first, "min_ess": C.r(min_ess, 1),
            "min_ess_per_s": C.r(min_ess / total, 2), "leapfrog_steps_total": steps,
            "ms_per_leapfrog": C.r(1e3 * total / max(steps, 1), 4),
            "iterations": warmup + samples,
            "leapfrog_per_draw": C.r(steps / (warmup + samples), 2),
            "num_divergences": divergences,
            "means": {k: C.r(np.asarray(v).mean((0, 1)), 3) for k, v in s.items()}}


def eight_schools_model(sigma, y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", sigma.shape[0]):
        th = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(mu + tau * th, sigma), obs=y)


def logreg_model(X, y):
    w = numpyro.sample("w", dist.Normal(jnp.zeros(X.shape[1]), 1.0).to_event(1))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=X @ w + b), obs=y)


def eight_schools_nuts():
    y, sigma = C.eight_schools()
    return nuts(eight_schools_model, (f32(sigma), f32(y)), C.EIGHT["warmup"], C.EIGHT["samples"])


def logreg_nuts():
    X, y = C.logreg()
    return nuts(logreg_model, (f32(X), f32(y)), C.LOGREG["warmup"], C.LOGREG["samples"])


# --- enumeration workloads -------------------------------------------------------------------


def hmm_supervised(K, W, sup_c, sup_w):
    trans = numpyro.sample("transition_prob", dist.Dirichlet(jnp.ones((K, K))).to_event(1))
    emit = numpyro.sample("emission_prob", dist.Dirichlet(jnp.full((K, W), 0.1)).to_event(1))
    with numpyro.plate("supervised_transitions", sup_c.shape[0] - 1):
        numpyro.sample("supervised_categories", dist.Categorical(trans[sup_c[:-1]]),
                       obs=sup_c[1:])
    with numpyro.plate("supervised_steps", sup_c.shape[0]):
        numpyro.sample("supervised_words", dist.Categorical(emit[sup_c]), obs=sup_w)
    return trans, emit


def hmm_forward_model(K, W, sup_c, sup_w, unsup_w):
    """NumPyro's examples/hmm.py: the unlabelled chain summed out by lax.scan in a factor."""
    trans, emit = hmm_supervised(K, W, sup_c, sup_w)
    lt, le = jnp.log(trans), jnp.log(emit)

    def step(alpha, w):
        return jax.nn.logsumexp(alpha[:, None] + lt, axis=0) + le[:, w], None

    alpha, _ = jax.lax.scan(step, le[:, unsup_w[0]], unsup_w[1:])
    numpyro.factor("forward_log_prob", jax.nn.logsumexp(alpha))


def hmm_enum_model(K, W, sup_c, sup_w, unsup_w):
    """The same with the categories enumerated in contrib.control_flow.scan (needs funsor)."""
    from numpyro.contrib.control_flow import scan
    from numpyro.ops.indexing import Vindex

    trans, emit = hmm_supervised(K, W, sup_c, sup_w)
    x0 = numpyro.sample("x_0", dist.Categorical(jnp.ones(K) / K),
                        infer={"enumerate": "parallel"})
    numpyro.sample("w_0", dist.Categorical(Vindex(emit)[x0, :]), obs=unsup_w[0])

    def step(x_prev, w):
        x = numpyro.sample("x", dist.Categorical(Vindex(trans)[x_prev, :]),
                           infer={"enumerate": "parallel"})
        numpyro.sample("w", dist.Categorical(Vindex(emit)[x, :]), obs=w)
        return x, None

    scan(step, x0, unsup_w[1:])


def hmm_args():
    K, W, sc, sw, uw = C.hmm()
    return (K, W, jnp.asarray(sc), jnp.asarray(sw), jnp.asarray(uw))


def hmm_forward_nuts():
    return nuts(hmm_forward_model, hmm_args(), C.HMM["warmup"], C.HMM["samples"])


def hmm_enum_nuts():
    return nuts(hmm_enum_model, hmm_args(), C.HMM["warmup"], C.HMM["samples"])


def gmm_model(y, K):
    weights = numpyro.sample("weights", dist.Dirichlet(0.5 * jnp.ones(K)))
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with numpyro.plate("components", K):
        locs = numpyro.sample("locs", dist.Normal(0.0, 10.0))
    with numpyro.plate("data", y.shape[0]):
        z = numpyro.sample("assignment", dist.Categorical(weights),
                           infer={"enumerate": "parallel"})
        numpyro.sample("obs", dist.Normal(locs[z], scale), obs=y)


def gmm_enum_svi():
    from numpyro import handlers, optim
    from numpyro.infer import TraceEnum_ELBO
    from numpyro.infer.autoguide import AutoDelta
    from numpyro.infer.initialization import init_to_value

    K = C.GMM["K"]
    y = f32(C.gmm())
    init = {"weights": jnp.ones(K) / K, "scale": jnp.asarray(1.0),
            "locs": jnp.asarray([-2.0, 0.0, 2.0])}
    model = functools.partial(gmm_model, K=K)  # K static under jax.jit
    guide = AutoDelta(handlers.block(model, hide=["assignment"]),
                      init_loc_fn=init_to_value(values=init))
    svi = SVI(model, guide, optim.Adam(C.GMM["lr"]), TraceEnum_ELBO(max_plate_nesting=1))
    state, times, losses = svi_loop(svi, C.GMM["steps"], y)
    p = svi.get_params(state)
    rec = C.step_stats(times)
    rec.update(weights=C.r(np.asarray(p["weights_auto_loc"]), 3),
               locs=C.r(np.asarray(p["locs_auto_loc"]), 3),
               scale=C.r(p["scale_auto_loc"], 3), final_loss=C.r(losses[-1], 3))
    return rec


# --- VAE (Pyro's VAE tutorial / NumPyro's examples/vae.py, 64 pixels) -------------------------


def vae_encoder(hidden_dim, z_dim):
    from jax.example_libraries import stax

    return stax.serial(
        stax.Dense(hidden_dim, W_init=stax.randn()), stax.Softplus, stax.FanOut(2),
        stax.parallel(stax.Dense(z_dim, W_init=stax.randn()),
                      stax.serial(stax.Dense(z_dim, W_init=stax.randn()), stax.Exp)))


def vae_decoder(hidden_dim, out_dim):
    from jax.example_libraries import stax

    return stax.serial(stax.Dense(hidden_dim, W_init=stax.randn()), stax.Softplus,
                       stax.Dense(out_dim, W_init=stax.randn()))  # logits, as ppl and Pyro


def vae_model(x, hidden_dim, z_dim):
    decode = numpyro.module("decoder", vae_decoder(hidden_dim, x.shape[1]), (x.shape[0], z_dim))
    with numpyro.plate("data", x.shape[0]):
        z = numpyro.sample("latent", dist.Normal(0.0, 1.0).expand([z_dim]).to_event(1))
        numpyro.sample("obs", dist.Bernoulli(logits=decode(z)).to_event(1), obs=x)


def vae_guide(x, hidden_dim, z_dim):
    encode = numpyro.module("encoder", vae_encoder(hidden_dim, z_dim), x.shape)
    z_loc, z_scale = encode(x)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))


def vae_svi():
    x, _ = C.digits()
    batches = [f32(b) for b in C.vae_batches(x)]
    sizes = dict(hidden_dim=C.VAE["hidden"], z_dim=C.VAE["z_dim"])  # static under jax.jit
    svi = SVI(functools.partial(vae_model, **sizes), functools.partial(vae_guide, **sizes),
              numpyro.optim.Adam(C.VAE["lr"]), loss=Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(C.SEED), batches[0])
    update = jax.jit(svi.update)
    t0 = C.now()
    _, loss = update(state, batches[0])  # compiles; its result is dropped
    loss.block_until_ready()
    compile_s = C.now() - t0
    times, losses = [], []
    for i in range(C.VAE["steps"]):
        batch = batches[i % len(batches)]
        t0 = C.now()
        state, loss = update(state, batch)
        loss.block_until_ready()
        times.append(C.now() - t0)
        losses.append(float(loss))
    rec = C.step_stats(times)
    rec.update(warmup_call_s=compile_s, batch=C.VAE["batch"], batches_per_epoch=len(batches),
               first_loss_per_point=C.r(losses[0] / C.VAE["batch"], 4),
               final_loss_per_point_mean_last50=C.r(np.mean(losses[-50:]) / C.VAE["batch"], 4),
               note="warm-up (compiling) call excluded from the steps; its state is dropped")
    return rec


# --- NeuTra HMC on Neal's funnel (Pyro's and NumPyro's examples/neutra.py) --------------------


def funnel_model(dim):
    """x: dim - 1 elements in one event; the scale is `[..., 1]`, so that vectorized ELBO
    particles (a batch of y's) broadcast."""
    y = numpyro.sample("y", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(jnp.zeros(dim - 1), jnp.exp(y / 2)[..., None]).to_event(1))


def neutra_funnel():
    from numpyro.infer.autoguide import AutoIAFNormal
    from numpyro.infer.reparam import NeuTraReparam

    s = C.NEUTRA
    model = functools.partial(funnel_model, s["dim"])  # dim static under jax.jit
    draws = {}  # the (mapped) draws of the last NUTS run, kept by `keep`

    def keep(d):
        draws.clear()
        draws.update(d)
        return d

    plain = nuts(model, (), s["warmup"], s["samples"], post=keep)
    plain_y = np.asarray(draws["y"])
    guide = AutoIAFNormal(model, num_flows=s["num_flows"], hidden_dims=s["hidden"])
    elbo = Trace_ELBO(num_particles=s["particles"])  # vectorized particles by default
    svi = SVI(model, guide, numpyro.optim.Adam(s["lr"]), loss=elbo)
    state = svi.init(jax.random.PRNGKey(C.SEED))
    update = jax.jit(svi.update)
    t0 = C.now()
    _, loss = update(state)  # compiles; its result is dropped
    loss.block_until_ready()
    svi_compile_s = C.now() - t0
    losses = []
    t0 = C.now()
    for _ in range(s["svi_steps"]):
        state, loss = update(state)
        losses.append(loss)
    jax.block_until_ready(state)
    svi_s = C.now() - t0
    neutra = NeuTraReparam(guide, svi.get_params(state))
    nt = nuts(neutra.reparam(model), (), s["warmup"], s["samples"],
              post=lambda d: keep(neutra.transform_sample(d["auto_shared_latent"])))
    y = np.asarray(draws["y"])
    total = svi_s + nt["total_s"]
    return {
        "vanilla_total_s": plain["total_s"], "vanilla_first_run_s": plain["first_run_s"],
        "vanilla_divergences": plain["num_divergences"], "vanilla_min_ess": plain["min_ess"],
        "vanilla_min_ess_per_s": plain["min_ess_per_s"],
        "vanilla_leapfrog_steps": plain["leapfrog_steps_total"],
        "vanilla_ms_per_leapfrog": plain["ms_per_leapfrog"],
        "vanilla_y_mean": C.r(plain_y.mean(), 3), "vanilla_y_sd": C.r(plain_y.std(), 3),
        "svi_s": svi_s, "svi_ms_per_step": C.r(1e3 * svi_s / s["svi_steps"], 4),
        "svi_compile_s": svi_compile_s,
        "svi_final_loss": C.r(np.mean(np.asarray(losses[-100:])), 4),
        "neutra_nuts_s": nt["total_s"], "neutra_first_run_s": nt["first_run_s"],
        "neutra_divergences": nt["num_divergences"], "neutra_min_ess": nt["min_ess"],
        "neutra_leapfrog_steps": nt["leapfrog_steps_total"],
        "neutra_ms_per_leapfrog": nt["ms_per_leapfrog"],
        "total_s": total, "min_ess_per_s": C.r(nt["min_ess"] / total, 2),
        "neutra_min_ess_per_s_sampling_only": C.r(nt["min_ess"] / nt["total_s"], 2),
        "y_mean": C.r(y.mean(), 3), "y_sd": C.r(y.std(), 3), "config": dict(s),
        "note": "x ~ Normal(zeros(dim-1), exp(y/2)[..., None]).to_event(1); NUTS timed on its"
                " second (compiled) run, SVI after one compiling update (dropped); total_s ="
                " svi_s + neutra_nuts_s",
    }


if __name__ == "__main__":
    C.main("numpyro", {"numpyro": numpyro.__version__, "jax": jax.__version__},
           os.cpu_count(),
           {"coin_svi": coin_svi, "linreg_svi": lambda: linreg(None),
            "linreg_svi_subsample": lambda: linreg(C.LINREG["subsample"]),
            "eight_schools_nuts": eight_schools_nuts, "logreg_nuts": logreg_nuts,
            "hmm_forward_nuts": hmm_forward_nuts, "hmm_enum_nuts": hmm_enum_nuts,
            "gmm_enum_svi": gmm_enum_svi, "vae_svi": vae_svi, "neutra_funnel": neutra_funnel})
