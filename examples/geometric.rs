//! The seed's recursive geometric model: flip a coin until it comes up heads, counting the
//! tails. Recursion gives a different number of sites per run (`x_0`, `x_1`, ...).
//!
//!     cargo run --example geometric [-- --p 0.5]

use ppl::prelude::*;

/// The number of failures before the first success of Bernoulli(`p`) trials.
#[model]
fn geometric(p: f64, t: usize) -> ppl::Result<u64> {
    let x = sample!("x_{t}", Bernoulli::new(p)?);
    if x.double_value(&[]) == 1.0 {
        Ok(0)
    } else {
        Ok(1 + geometric(p, t + 1)?)
    }
}

fn main() -> ppl::Result<()> {
    let p: f64 = ppl_examples::arg("p", 0.5);
    set_rng_seed(0);
    println!("geometric({p}) = {}", geometric(p, 0)?);

    // One run, traced: one site per flip.
    let (n, tr) = poutine::trace(|| geometric(p, 0))?;
    let sites: Vec<&str> = tr.names().collect();
    println!("a traced run returned {n} with sites {sites:?}");

    // Many runs: the mean number of failures is (1 - p) / p.
    let runs = 2000;
    let mut total = 0u64;
    for _ in 0..runs {
        total += geometric(p, 0)?;
    }
    println!(
        "mean of {runs} draws: {:.3} (exact (1 - p) / p = {:.3})",
        total as f64 / runs as f64,
        (1.0 - p) / p
    );
    Ok(())
}
