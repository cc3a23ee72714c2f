//! The seed's weather model (Pyro's introductory tutorial): whether it is cloudy decides the mean
//! and spread of the temperature.
//!
//!     cargo run --example weather [-- --device cuda]

use ppl::prelude::*;

#[model]
fn weather(device: Device) -> ppl::Result<(bool, f64)> {
    let opts = (Kind::Float, device);
    let cloudy = sample!(Bernoulli::new(Tensor::from(0.3f32).to_device(device))?);
    let is_cloudy = cloudy.double_value(&[]) == 1.0;
    let (mean, scale) = if is_cloudy {
        (55.0, 10.0)
    } else {
        (75.0, 15.0)
    };
    let temp = sample!(Normal::new(
        Tensor::full([], mean, opts),
        Tensor::full([], scale, opts)
    )?);
    Ok((is_cloudy, temp.double_value(&[])))
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    set_rng_seed(0);
    for _ in 0..3 {
        let (cloudy, temp) = weather(device)?;
        println!("{} {temp:.1}°F", if cloudy { "cloudy," } else { "sunny, " });
    }
    // The same model under a trace: its sites by name, with their log-densities.
    let (_, mut tr) = poutine::trace(|| weather(device))?;
    println!("trace of one run:");
    let names: Vec<String> = tr.names().map(str::to_string).collect();
    for name in names {
        let site = tr.get_mut(&name).expect("the site is in the trace");
        let lp = site.compute_log_prob()?.double_value(&[]);
        let v = site.value.double_value(&[]);
        println!("  {name:<7} value {v:>7.2}   log p {lp:>8.3}");
    }
    println!("  total log p {:.3}", tr.log_prob_sum()?.double_value(&[]));
    Ok(())
}
