"""Reads the JSON lines of ppl, Pyro and NumPyro runs and prints a markdown table: per workload
and metric, the median over runs with [min-max], and each peer's ratio to ppl (peer / ppl: above
1 means ppl is faster)."""
import json
import statistics
import sys
from collections import defaultdict

METRICS = {
    "coin_svi": [("ms / step (median step)", "sec_per_step_median", 1e3),
                 ("fairness mean (exact 0.5333)", "fairness_mean", 1),
                 ("fairness sd (exact 0.0896)", "fairness_std", 1)],
    "linreg_svi": [("ms / step (median step)", "sec_per_step_median", 1e3),
                   ("max abs error of w", "w_max_abs_err", 1),
                   ("abs error of b", "b_abs_err", 1)],
    "linreg_svi_subsample": [("ms / step (median step)", "sec_per_step_median", 1e3),
                             ("max abs error of w", "w_max_abs_err", 1),
                             ("abs error of b", "b_abs_err", 1)],
    "eight_schools_nuts": [("total s", "total_s", 1), ("min ESS / s", "min_ess_per_s", 1),
                           ("ms / leapfrog", "ms_per_leapfrog", 1)],
    "logreg_nuts": [("total s", "total_s", 1), ("min ESS / s", "min_ess_per_s", 1),
                    ("ms / leapfrog", "ms_per_leapfrog", 1)],
}
# The HMM runs differ in draws (Pyro's loops and eager ppl are slow): compare ms / leapfrog; the
# run time and draws are shown without a ratio.
HMM = [("run s (no ratio: draws differ)", "total_s", 1), ("warm-up + draws", "iterations", 1),
       ("ms / leapfrog", "ms_per_leapfrog", 1), ("leapfrog steps / draw", "leapfrog_per_draw", 1),
       ("divergences", "num_divergences", 1), ("min ESS", "min_ess", 1)]
METRICS.update({
    "hmm_forward_nuts": HMM, "hmm_enum_nuts": HMM, "hmm_dhmm_nuts": HMM,
    "gmm_enum_svi": [("ms / step (median step)", "sec_per_step_median", 1e3),
                     ("final loss", "final_loss", 1), ("scale", "scale", 1)],
    "vae_svi": [("ms / step (median step)", "sec_per_step_median", 1e3),
                ("first loss / image", "first_loss_per_point", 1),
                ("loss / image (last 50 steps)", "final_loss_per_point_mean_last50", 1)],
    # NeuTra: "total s" and "min ESS / s" count the guide's SVI fit and the NeuTra NUTS run.
    "neutra_funnel": [("total s (SVI + NeuTra NUTS)", "total_s", 1),
                      ("min ESS / s (SVI + NeuTra NUTS)", "min_ess_per_s", 1),
                      ("divergences (NeuTra)", "neutra_divergences", 1),
                      ("vanilla NUTS min ESS / s", "vanilla_min_ess_per_s", 1),
                      ("vanilla NUTS divergences", "vanilla_divergences", 1),
                      ("y sd (NeuTra; exact 3)", "y_sd", 1)],
})
PEERS = ["pyro", "numpyro"]
# Other names of the same field in some producers' records.
ALIASES = {"min_ess_per_s": ["ess_per_s"]}


def fmt(xs):
    if not xs:
        return "-"
    m = statistics.median(xs)
    return f"{m:.4g} [{min(xs):.4g}-{max(xs):.4g}]"


def main(paths):
    runs = defaultdict(list)
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rec = json.loads(line)
                    if rec.get("status", "ok") == "ok":
                        runs[(rec["system"], rec["workload"])].append(rec)
    ours = sorted({s for s, _ in runs if s not in PEERS}, key=lambda s: (s != "ppl", s))
    systems = ours + PEERS
    head = ours + ["Pyro", "NumPyro (jitted step)"] + [f"Pyro / {s}" for s in ours] + [
        f"NumPyro / {s}" for s in ours]
    print("| workload | metric | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(head))
    for wl, metrics in METRICS.items():
        for label, key, mult in metrics:
            keys = [key] + ALIASES.get(key, [])
            vals = {s: [next(r[k] for k in keys if k in r) * mult for r in runs[(s, wl)]
                        if any(k in r for k in keys)] for s in systems}
            if not any(vals.values()):
                continue
            cells = [fmt(vals[s]) for s in systems]
            ratios = []
            for peer in PEERS:
                for s in ours:
                    if vals[s] and vals[peer]:
                        a, b = statistics.median(vals[peer]), statistics.median(vals[s])
                        if "/ step" not in label and "/ leapfrog" not in label \
                                and "total s" not in label and "ESS" not in label:
                            ratios.append("")  # an accuracy figure: no ratio
                            continue
                        # Throughput (ESS/s): higher is better, so report ppl / peer.
                        ratios.append(f"{(b / a if 'ESS' in label else a / b):.2f}x")
                    else:
                        ratios.append("-")
            print(f"| {wl} | {label} | " + " | ".join(cells + ratios) + " |")
    print()
    print("Runs: " + ", ".join(f"{s}/{w}: {len(v)}" for (s, w), v in sorted(runs.items()) if v))


if __name__ == "__main__":
    main(sys.argv[1:])
