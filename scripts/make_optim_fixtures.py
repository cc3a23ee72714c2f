#!/usr/bin/env python3
"""Writes ppl-runtime/tests/fixtures/optim.json: optimizer trajectories from torch.optim.

Run with the torch 2.11.0 venv:
    /root/.cache/ppl/torch-2.11.0/bin/python scripts/make_optim_fixtures.py

Each case starts two params ("a" of shape [3], "loc.b" of shape [2, 2]) at fixed values, feeds the
optimizer a fixed gradient per step (stored in the file) and records both params after every step,
together with each param's learning rate after the (optional) scheduler step. The params are
optimized the way Pyro does it: one torch optimizer per param (PyroOptim), so per-param settings
(`optim_args` as a function of the name) are simply the settings of that param's optimizer, a
scheduler is one scheduler per param, and Pyro's `clip_args` clip each param's gradient on its
own. Cases with "clip_all" instead clip all gradients together with
`torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` before the steps.

ClippedAdam and AdagradRMSProp are Pyro's (pyro/optim/clipped_adam.py, adagrad_rmsprop.py),
written out below since Pyro is not installed here. ClippedAdam: each step multiplies the lr by
`lrd`, clamps the gradient elementwise to +-clip_norm, then takes an Adam step with bias
correction folded into the step size.

Tensors are {"shape": [...], "data": [...]}; float32 and float64 variants of every case.
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "ppl-runtime", "tests", "fixtures", "optim.json")
STEPS = 6
NAMES = ["a", "loc.b"]


class ClippedAdam(torch.optim.Optimizer):
    """pyro.optim.clipped_adam.ClippedAdam with today's tensor API."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, clip_norm=10.0, lrd=1.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, clip_norm=clip_norm, lrd=lrd)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] *= group["lrd"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                grad.clamp_(-group["clip_norm"], group["clip_norm"])
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)


class AdagradRMSProp(torch.optim.Optimizer):
    """pyro.optim.adagrad_rmsprop.AdagradRMSProp with today's tensor API."""

    def __init__(self, params, eta=1.0, delta=1.0e-16, t=0.1):
        super().__init__(params, dict(eta=eta, delta=delta, t=t))
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = 0
                state["sum"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                state["step"] += 1
                if state["step"] == 1:
                    state["sum"] = grad * grad
                else:
                    state["sum"] *= 1.0 - group["t"]
                    state["sum"] += group["t"] * grad * grad
                lr = group["eta"] * (state["step"] ** (-0.5 + group["delta"]))
                std = state["sum"].sqrt()
                p.addcdiv_(grad, 1.0 + std, value=-lr)


OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "clipped_adam": ClippedAdam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adagrad_rmsprop": AdagradRMSProp,
}


def enc(t):
    t = t.detach().to(torch.float64)
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def run_case(name, optimizer, config, dtype, per_param=None, scheduler=None, clip=None, clip_all=None,
             grad_scale=1.0, seed=0):
    """`config`: torch keyword arguments; `per_param`: {param name: overriding arguments}."""
    g = torch.Generator().manual_seed(seed)
    init = {"a": torch.randn(3, generator=g, dtype=torch.float64),
            "loc.b": torch.randn(2, 2, generator=g, dtype=torch.float64)}
    grads = [{n: grad_scale * torch.randn(init[n].shape, generator=g, dtype=torch.float64) for n in NAMES}
             for _ in range(STEPS)]
    params = {n: init[n].to(dtype).clone().requires_grad_(True) for n in NAMES}
    optims, scheds = {}, {}
    for n in NAMES:
        kw = dict(config)
        kw.update((per_param or {}).get(n, {}))
        if optimizer in ("adam", "adamw", "sgd", "rmsprop", "adagrad"):
            kw["foreach"] = False
        optims[n] = OPTIMIZERS[optimizer]([params[n]], **kw)
        if scheduler is not None:
            kind = scheduler["kind"]
            args = {k: v for k, v in scheduler.items() if k not in ("kind", "metrics")}
            if kind == "exponential":
                scheds[n] = torch.optim.lr_scheduler.ExponentialLR(optims[n], **args)
            elif kind == "step":
                scheds[n] = torch.optim.lr_scheduler.StepLR(optims[n], **args)
            elif kind == "lambda":  # lr_lambda(k) = base ** k
                scheds[n] = torch.optim.lr_scheduler.LambdaLR(optims[n], lambda k, b=args["base"]: b ** k)
            elif kind == "cosine":
                scheds[n] = torch.optim.lr_scheduler.CosineAnnealingLR(optims[n], **args)
            elif kind == "multistep":
                scheds[n] = torch.optim.lr_scheduler.MultiStepLR(optims[n], **args)
            elif kind == "plateau":
                scheds[n] = torch.optim.lr_scheduler.ReduceLROnPlateau(optims[n], **args)
            else:
                raise ValueError(kind)
    trajectory, lrs, norms = [], [], []
    for k in range(STEPS):
        for n in NAMES:
            params[n].grad = grads[k][n].to(dtype).clone()
        if clip_all is not None:
            ps = [params[n] for n in NAMES]
            if clip_all.get("max_norm") is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(ps, clip_all["max_norm"],
                                                                  norm_type=clip_all.get("norm_type", 2.0))))
            if clip_all.get("value") is not None:
                torch.nn.utils.clip_grad_value_(ps, clip_all["value"])
        for n in NAMES:
            if clip is not None:  # Pyro's clip_args: per param
                if clip.get("max_norm") is not None:
                    torch.nn.utils.clip_grad_norm_([params[n]], clip["max_norm"],
                                                   norm_type=clip.get("norm_type", 2.0))
                if clip.get("value") is not None:
                    torch.nn.utils.clip_grad_value_([params[n]], clip["value"])
            optims[n].step()
        if scheduler is not None:
            for n in NAMES:
                if scheduler["kind"] == "plateau":
                    scheds[n].step(scheduler["metrics"][k])
                else:
                    scheds[n].step()
        trajectory.append({n: enc(params[n]) for n in NAMES})
        # AdagradRMSProp has no "lr": its step-size scale is "eta".
        lrs.append({n: float(optims[n].param_groups[0].get("lr", optims[n].param_groups[0].get("eta")))
                    for n in NAMES})
    case = {
        "name": f"{name}_{str(dtype).split('.')[-1]}",
        "optimizer": optimizer,
        "dtype": str(dtype).split(".")[-1],
        "config": config,
        "per_param": per_param,
        "scheduler": scheduler,
        "clip": clip,
        "clip_all": clip_all,
        "init": {n: enc(init[n]) for n in NAMES},
        "grads": [{n: enc(gk[n]) for n in NAMES} for gk in grads],
        "trajectory": trajectory,
        "lrs": lrs,
    }
    if norms:
        case["total_norms"] = norms
    return case


def cases():
    plateau_metrics = [5.0, 4.0, 4.2, 4.1, 4.3, 3.0]
    specs = [
        ("adam_default", "adam", {}, {}),
        ("adam_lr_wd", "adam", {"lr": 0.1, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1}, {}),
        ("adam_per_param", "adam", {"lr": 0.05}, {"per_param": {"loc.b": {"lr": 0.005, "betas": [0.5, 0.9]}}}),
        ("adam_amsgrad", "adam", {"lr": 0.1, "amsgrad": True, "weight_decay": 0.05}, {"grad_scale": 3.0}),
        ("adamw_default", "adamw", {}, {}),
        ("adamw_amsgrad", "adamw", {"lr": 0.05, "amsgrad": True}, {}),
        ("adamw_lr_wd", "adamw", {"lr": 0.1, "weight_decay": 0.5, "betas": [0.85, 0.95]}, {}),
        ("clipped_adam_default", "clipped_adam", {}, {"grad_scale": 20.0}),
        ("clipped_adam_clip_lrd", "clipped_adam",
         {"lr": 0.1, "clip_norm": 1.0, "lrd": 0.9, "weight_decay": 0.01}, {"grad_scale": 3.0}),
        ("sgd_plain", "sgd", {"lr": 0.1}, {}),
        ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.05}, {}),
        ("sgd_nesterov", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}, {}),
        ("rmsprop_default", "rmsprop", {}, {}),
        ("rmsprop_centered_momentum", "rmsprop",
         {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "centered": True, "momentum": 0.5, "weight_decay": 0.1}, {}),
        ("rmsprop_momentum", "rmsprop", {"lr": 0.02, "momentum": 0.7}, {}),
        ("adagrad_default", "adagrad", {}, {}),
        ("adagrad_decay", "adagrad",
         {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.3, "eps": 1e-8, "weight_decay": 0.2}, {}),
        ("adagrad_rmsprop_default", "adagrad_rmsprop", {}, {}),
        ("adagrad_rmsprop_args", "adagrad_rmsprop", {"eta": 0.3, "delta": 0.1, "t": 0.4}, {}),
        ("sched_exponential", "sgd", {"lr": 0.1, "momentum": 0.5},
         {"scheduler": {"kind": "exponential", "gamma": 0.7}}),
        ("sched_step", "adam", {"lr": 0.1},
         {"scheduler": {"kind": "step", "step_size": 2, "gamma": 0.5}}),
        ("sched_multistep", "rmsprop", {"lr": 0.05},
         {"scheduler": {"kind": "multistep", "milestones": [2, 4, 4], "gamma": 0.5}}),
        ("sched_cosine", "adam", {"lr": 0.1},
         {"scheduler": {"kind": "cosine", "T_max": 2, "eta_min": 0.01}}),
        ("sched_cosine_clipped_adam", "clipped_adam", {"lr": 0.1, "lrd": 0.9},
         {"scheduler": {"kind": "cosine", "T_max": 4}}),
        ("sched_lambda", "adagrad", {"lr": 0.1}, {"scheduler": {"kind": "lambda", "base": 0.8}}),
        ("sched_plateau", "sgd", {"lr": 0.1},
         {"scheduler": {"kind": "plateau", "mode": "min", "factor": 0.5, "patience": 1, "threshold": 0.01,
                        "cooldown": 1, "min_lr": 0.02, "metrics": plateau_metrics}}),
        ("sched_plateau_min_lr", "sgd", {"lr": 0.1},
         {"scheduler": {"kind": "plateau", "factor": 0.5, "patience": 0, "cooldown": 1, "min_lr": 0.02,
                        "metrics": [5.0] * STEPS}}),
        ("sched_plateau_max_abs", "adagrad", {"lr": 0.1},
         {"scheduler": {"kind": "plateau", "mode": "max", "threshold_mode": "abs", "threshold": 0.5,
                        "factor": 0.2, "patience": 1, "metrics": [1.0, 1.4, 2.0, 2.3, 2.4, 2.2]}}),
        ("clip_per_param", "sgd", {"lr": 0.1}, {"clip": {"max_norm": 0.5, "value": 0.3}, "grad_scale": 2.0}),
        ("clip_all_norm", "adam", {"lr": 0.1}, {"clip_all": {"max_norm": 1.0}, "grad_scale": 2.0}),
        ("clip_all_norm_inf_value", "sgd", {"lr": 0.1},
         {"clip_all": {"max_norm": 1.5, "norm_type": "inf", "value": 0.4}, "grad_scale": 2.0}),
        ("clip_all_norm_1", "sgd", {"lr": 0.1}, {"clip_all": {"max_norm": 2.0, "norm_type": 1.0}, "grad_scale": 2.0}),
    ]
    out = []
    for seed, (name, opt, config, extra) in enumerate(specs):
        for dtype in (torch.float32, torch.float64):
            extra2 = dict(extra)
            if "clip_all" in extra2 and extra2["clip_all"].get("norm_type") == "inf":
                extra2["clip_all"] = dict(extra2["clip_all"], norm_type=math.inf)
            case = run_case(name, opt, config, dtype, seed=seed, **extra2)
            if case["clip_all"] is not None and case["clip_all"].get("norm_type") == math.inf:
                case["clip_all"]["norm_type"] = "inf"
            out.append(case)
    return out


def main():
    data = {"generated_by": "scripts/make_optim_fixtures.py", "torch": torch.__version__, "steps": STEPS,
            "cases": cases()}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(data['cases'])} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
