//! A minipyro-style end-to-end program: a model, a guide, a trace/replay ELBO written out by hand
//! with the handlers, and a few Adam steps, then the same with the library's `TraceElbo`.
//!
//! Model: `loc ~ N(0, 1)`, `x_i ~ N(loc, 1)` for 100 points drawn around 3; guide:
//! `loc ~ N(loc_q, scale_q)`. The exact posterior is `N(sum(x) / 101, 1/sqrt(101))`.
//!
//!     cargo run --example minipyro [-- --device cuda --steps 1000]

use ppl::prelude::*;

#[model]
fn model(data: &Tensor) -> ppl::Result<()> {
    let loc = sample!(Normal::new(data.zeros_like().sum(Kind::Float), 1.0)?);
    let _data = plate!("data", data.size()[0]);
    sample!("x", Normal::new(&loc, 1.0)?, obs = data);
    Ok(())
}

#[guide]
fn guide(data: &Tensor) -> ppl::Result<()> {
    let loc_q = param!(data.zeros_like().sum(Kind::Float));
    let scale_q = param!(
        data.ones_like().sum(Kind::Float) / 10.0,
        constraint = positive
    );
    let loc = sample!(Normal::new(&loc_q, &scale_q)?);
    let _ = loc;
    Ok(())
}

/// The ELBO written with the handlers, as minipyro does: trace the guide, replay the model
/// against it, subtract the log-densities.
fn elbo_by_hand(data: &Tensor) -> ppl::Result<Tensor> {
    let (_, mut guide_tr) = poutine::trace(|| guide(data))?;
    let guide_log_q = guide_tr.log_prob_sum()?;
    let (_, mut model_tr) = poutine::trace(|| poutine::replay(guide_tr, || model(data)))?;
    Ok(model_tr.log_prob_sum()? - guide_log_q)
}

fn main() -> ppl::Result<()> {
    let device = ppl_examples::device_from_args();
    let steps: usize = ppl_examples::arg("steps", 1000);
    set_rng_seed(0);
    let data = (Tensor::randn([100], (Kind::Float, device)) + 3.0).set_requires_grad(false);
    let exact_mean = data.sum(Kind::Float).double_value(&[]) / 101.0;

    // By hand: a few Adam steps on the hand-written ELBO.
    let mut adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    for step in 0..steps {
        let loss = -elbo_by_hand(&data)?;
        let params = with_param_store(|ps| ps.all_leaves());
        loss.backward();
        adam.step(&params)?;
        ppl::params::zero_grads(&params)?;
        if step % (steps / 5).max(1) == 0 {
            println!("step {step:>5}  loss {:>10.3}", loss.double_value(&[]));
        }
    }
    let loc_q = get_param("loc_q")?.double_value(&[]);
    let scale_q = get_param("scale_q")?.double_value(&[]);
    println!("by hand:   loc_q {loc_q:.3}  scale_q {scale_q:.3}");

    // The same through the library's TraceElbo and Svi.
    clear_param_store();
    let mut svi = Svi::new(
        || model(&data),
        || guide(&data),
        Adam::new(AdamConfig {
            lr: 0.05,
            ..Default::default()
        }),
        TraceElbo::default(),
    );
    for _ in 0..steps {
        svi.step()?;
    }
    let loc_q = get_param("loc_q")?.double_value(&[]);
    let scale_q = get_param("scale_q")?.double_value(&[]);
    println!("TraceElbo: loc_q {loc_q:.3}  scale_q {scale_q:.3}");
    println!(
        "exact:     loc   {exact_mean:.3}  scale   {:.3}",
        1.0 / 101f64.sqrt()
    );
    Ok(())
}
