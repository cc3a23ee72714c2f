//! Model comparison on the eight schools (Rubin 1981), as ArviZ users do it after Pyro or NumPyro:
//! a pooled model (one effect for all schools) and the hierarchical one (non-centered), each
//! fitted with NUTS on 4 chains; then the pointwise log-likelihood of every draw, WAIC, PSIS-LOO
//! with the Pareto k̂ of each school, and `compare` (ArviZ's table, stacking weights).
//!
//! `cargo run --release --example model_comparison [-- --num-samples 1000 --warmup 1000
//! --chains 4 --npz out/model_comparison --plots out]` (`--npz P` writes `P_pooled.npz` and
//! `P_hierarchical.npz`: ArviZ InferenceData groups that `scripts/arviz_from_npz.py` loads and
//! compares with ArviZ itself; `--plots DIR` writes trace, rank, posterior and pair plots there,
//! `--plots ""` none).

use ppl::infer::criticism::{self, Weighting};
use ppl::infer::mcmc::export::InferenceGroups;
use ppl::infer::mcmc::{Mcmc, Nuts};
use ppl::prelude::*;
use ppl::IndexMap;

use ppl_examples::eight_schools::{hierarchical, load, pooled};

type Model = fn(&Tensor, &Tensor) -> ppl::Result<()>;

fn main() -> ppl::Result<()> {
    let num_samples = ppl_examples::arg("num-samples", 1000usize);
    let warmup = ppl_examples::arg("warmup", 1000usize);
    let chains = ppl_examples::arg("chains", 4usize);
    let npz: String = ppl_examples::arg("npz", String::new());
    let (y, sigma) = load();

    let mut fits = Vec::new();
    for (name, model) in [("pooled", pooled as Model), ("hierarchical", hierarchical)] {
        let mut mcmc = Mcmc::new(Nuts::new().target_accept_prob(0.9))
            .num_samples(num_samples)
            .warmup_steps(warmup)
            .num_chains(chains)
            .seed(0);
        mcmc.run_parallel(|_chain| {
            let y = Tensor::from_slice(&y);
            let sigma = Tensor::from_slice(&sigma);
            move || model(&sigma, &y)
        })?;
        println!("\n{name} model");
        mcmc.print_summary(0.9)?;

        // The log-density of each school's observation under every draw.
        let samples = mcmc.get_samples_by_chain()?;
        let (yt, st) = (Tensor::from_slice(&y), Tensor::from_slice(&sigma));
        let ll_sites = criticism::log_likelihood(|| model(&st, &yt), &samples)?;
        let ll = criticism::pointwise(&ll_sites)?;
        let reff = criticism::relative_eff(&samples)?;
        let waic = criticism::waic(&ll);
        let loo = criticism::loo(&ll, Some(reff))?;
        println!(
            "waic: elpd {:.2} (se {:.2}), p_waic {:.2}{}",
            waic.elpd_waic,
            waic.se,
            waic.p_waic,
            if waic.warning {
                "  [warning: a point's log-density varies by > 0.4; prefer loo]"
            } else {
                ""
            }
        );
        println!(
            "loo:  elpd {:.2} (se {:.2}), p_loo {:.2}, reff {:.2}",
            loo.elpd_loo, loo.se, loo.p_loo, loo.reff
        );
        let ks: Vec<String> = loo.pareto_k.iter().map(|k| format!("{k:.2}")).collect();
        println!(
            "Pareto k per school: [{}] (good below {:.2})",
            ks.join(", "),
            loo.good_k
        );
        if !npz.is_empty() {
            let path = format!("{npz}_{name}.npz");
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir).map_err(|source| ppl::Error::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let observed: IndexMap<String, Tensor> =
                [("obs".to_string(), yt.shallow_clone())].into();
            // Replicated data: the model run again, unconditioned, at every posterior draw.
            let flat = mcmc.get_samples()?;
            let replicated = Predictive::with_posterior_samples(
                || poutine::uncondition(|| model(&st, &yt)),
                flat.iter().map(|(k, v)| (k.clone(), v.shallow_clone())),
            )?
            .return_sites(&["obs"])
            .run()?;
            let predictive: IndexMap<String, Tensor> = [(
                "obs".to_string(),
                replicated["obs"].reshape([chains as i64, num_samples as i64, -1]),
            )]
            .into();
            mcmc.write_inference_data_npz(
                &path,
                &InferenceGroups {
                    log_likelihood: Some(&ll_sites),
                    posterior_predictive: Some(&predictive),
                    observed_data: Some(&observed),
                },
            )?;
            // ppl's own numbers beside it, for scripts/arviz_from_npz.py to check against ArviZ.
            let json = format!(
                "{{\"elpd_loo\": {:?}, \"p_loo\": {:?}, \"se\": {:?}, \"pareto_k\": {:?}, \
                 \"elpd_waic\": {:?}, \"p_waic\": {:?}}}\n",
                loo.elpd_loo, loo.p_loo, loo.se, loo.pareto_k, waic.elpd_waic, waic.p_waic
            );
            let json_path = format!("{npz}_{name}.ppl.json");
            std::fs::write(&json_path, json).map_err(|source| ppl::Error::Io {
                path: json_path.clone(),
                source,
            })?;
            println!("InferenceData written to {path} (ppl's loo and waic: {json_path})");
        }
        // ArviZ's pictures of the fit: trace, ranks, posterior densities with the 90% HPDI, and
        // the funnel of the hierarchical model (tau against a school's effect).
        let plots: String = ppl_examples::arg("plots", "out".to_string());
        if !plots.is_empty() {
            let base = format!("{plots}/model_comparison_{name}");
            mcmc.plot_trace(format!("{base}_trace.png"), None)?;
            mcmc.plot_rank(format!("{base}_rank.png"), None)?;
            mcmc.plot_posterior(format!("{base}_posterior.png"), None, 0.9)?;
            if name == "hierarchical" {
                mcmc.plot_pair(format!("{base}_pair.png"), "theta_tilde[0]", "tau")?;
            }
            println!("plots: {base}_{{trace,rank,posterior}}.png");
        }
        fits.push((name, loo));
    }

    let models: Vec<(&str, &criticism::Loo)> = fits.iter().map(|(n, l)| (*n, l)).collect();
    let table = criticism::compare(&models, Weighting::Stacking)?;
    println!("\ncompare (ArviZ's layout, ic = loo, scale = log):");
    println!(
        "{:>14} {:>5} {:>9} {:>7} {:>10} {:>7} {:>6} {:>6} {:>8}",
        "", "rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning"
    );
    for r in &table {
        println!(
            "{:>14} {:>5} {:>9.2} {:>7.2} {:>10.2} {:>7.3} {:>6.2} {:>6.2} {:>8}",
            r.model, r.rank, r.elpd, r.p, r.elpd_diff, r.weight, r.se, r.dse, r.warning
        );
    }
    Ok(())
}
