//! NeuTra HMC on Neal's funnel (Hoffman et al. 2019; Pyro's and NumPyro's `neutra.py`): NUTS on
//! the funnel diverges in its neck; NUTS in the base space of a trained inverse autoregressive
//! flow (`AutoIAFNormal` + `NeuTraReparam`) does not.
//!
//!     cargo run --release --example neutra -- [--dim 10] [--warmup 500] [--samples 1000]
//!         [--svi-steps 5000] [--lr 0.003] [--flows 2]
//!         [--particles 16] [--jit]
//!
//! Prints, for both runs, the divergences, the smallest ESS over all coordinates, ESS per second
//! and y's posterior mean and sd (exact: 0 and 3).

use ppl::prelude::*;
use ppl_examples::neutra::{fit_guide, neutra, vanilla, NutsRun, Settings};

fn report(name: &str, r: &NutsRun) {
    println!(
        "{name:<14} {:>6.2} s  divergences {:>4}  min ESS {:>7.1}  ESS/s {:>7.1}  y mean {:>6.3}  y sd {:>6.3}  leapfrog steps {}",
        r.seconds,
        r.divergences,
        r.min_ess,
        r.min_ess / r.seconds,
        r.y_mean,
        r.y_sd,
        r.leapfrog
    );
}

fn main() -> ppl::Result<()> {
    let d = Settings::default();
    let s = Settings {
        dim: ppl_examples::arg("dim", d.dim),
        warmup: ppl_examples::arg("warmup", d.warmup),
        samples: ppl_examples::arg("samples", d.samples),
        svi_steps: ppl_examples::arg("svi-steps", d.svi_steps),
        lr: ppl_examples::arg("lr", d.lr),
        num_flows: ppl_examples::arg("flows", d.num_flows),
        particles: ppl_examples::arg("particles", d.particles),
        jit: ppl_examples::jit_from_args(),
        ..d
    };
    set_rng_seed(0);
    clear_param_store();
    let plain = vanilla(&s)?;
    report("NUTS", &plain);
    let (guide, svi_s, loss) = fit_guide(&s)?;
    println!(
        "AutoIAFNormal: {} SVI steps in {svi_s:.2} s, final loss {loss:.3}",
        s.svi_steps
    );
    let nt = neutra(&s, &guide)?;
    report("NeuTra NUTS", &nt);
    println!(
        "NeuTra with the guide's training: {:.2} s, min ESS/s {:.1}",
        svi_s + nt.seconds,
        nt.min_ess / (svi_s + nt.seconds)
    );
    Ok(())
}
