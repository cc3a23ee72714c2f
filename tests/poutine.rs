//! Every handler, through models written with #[model].

use std::collections::{HashMap, VecDeque};

use ppl::poutine::{
    BlockMessenger, EscapeMessenger, Handler, InferConfig, LiftMessenger, SiteKind,
};
use ppl::prelude::*;

fn t(v: f32) -> Tensor {
    Tensor::from(v)
}

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
}

/// log N(x; m, s) by hand.
fn ln_normal(x: f64, m: f64, s: f64) -> f64 {
    -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

#[model]
fn two_normals() -> ppl::Result<(Tensor, Tensor)> {
    let a = sample!(Normal::new(0.0, 1.0)?);
    let b = sample!(Normal::new(&a, 2.0)?);
    Ok((a, b))
}

#[test]
fn trace_records_sites_in_order_with_log_probs() -> ppl::Result<()> {
    set_rng_seed(1);
    let ((a, b), mut tr) = poutine::trace(two_normals)?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(tr.value("a")?.equal(&a) && tr.value("b")?.equal(&b));
    let (av, bv) = (a.double_value(&[]), b.double_value(&[]));
    let expected = ln_normal(av, 0.0, 1.0) + ln_normal(bv, av, 2.0);
    close(tr.log_prob_sum()?.double_value(&[]), expected, 1e-5);
    Ok(())
}

#[test]
fn replay_reuses_values() -> ppl::Result<()> {
    let (_, tr1) = poutine::trace(two_normals)?;
    let a1 = tr1.value("a")?.shallow_clone();
    let (_, tr2) = poutine::trace(|| poutine::replay(tr1, two_normals))?;
    assert!(tr2.value("a")?.equal(&a1));
    Ok(())
}

#[test]
fn condition_observes_and_do_intervenes() -> ppl::Result<()> {
    let data = poutine::data([("b", t(3.0))]);
    let (_, mut tr) = poutine::trace(|| poutine::condition(data.clone(), two_normals))?;
    let b = tr.site("b")?;
    assert!(b.is_observed);
    assert_eq!(b.value.double_value(&[]), 3.0);
    let av = tr.value("a")?.double_value(&[]);
    close(
        tr.log_prob_sum()?.double_value(&[]),
        ln_normal(av, 0.0, 1.0) + ln_normal(3.0, av, 2.0),
        1e-5,
    );

    // do(a = 5): downstream b is drawn around 5; the original draw keeps the name "a" and is
    // scored, the intervened node "a__CF" is not.
    set_rng_seed(0);
    let intervention = poutine::data([("a", t(5.0))]);
    let ((a, _), mut tr) = poutine::trace(|| poutine::do_(intervention.clone(), two_normals))?;
    assert_eq!(a.double_value(&[]), 5.0);
    assert!(tr.contains("a") && tr.contains("a__CF"));
    assert!(!tr.site("a__CF")?.is_scored());
    assert_ne!(tr.value("a")?.double_value(&[]), 5.0);
    let (a0, b0) = (
        tr.value("a")?.double_value(&[]),
        tr.value("b")?.double_value(&[]),
    );
    close(
        tr.log_prob_sum()?.double_value(&[]),
        ln_normal(a0, 0.0, 1.0) + ln_normal(b0, 5.0, 2.0),
        1e-5,
    );
    Ok(())
}

#[test]
fn block_hides_sites_from_outer_handlers() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| BlockMessenger::hide(&["a"]).run(two_normals))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["b"]);
    let (_, tr) = poutine::trace(|| BlockMessenger::expose(&["a"]).run(two_normals))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["a"]);
    let (_, tr) = poutine::trace(|| poutine::block(two_normals))?;
    assert!(tr.is_empty());
    let (_, tr) =
        poutine::trace(|| BlockMessenger::hide_types(&[SiteKind::Sample]).run(two_normals))?;
    assert!(tr.is_empty());
    Ok(())
}

#[test]
fn scale_and_mask_apply_to_log_probs() -> ppl::Result<()> {
    let data = poutine::data([("a", t(0.5)), ("b", t(1.0))]);
    let run = || poutine::condition(data.clone(), two_normals);
    let (_, mut base) = poutine::trace(run)?;
    let base = base.log_prob_sum()?.double_value(&[]);
    let (_, mut scaled) = poutine::trace(|| poutine::scale(3.0, run))?;
    close(scaled.log_prob_sum()?.double_value(&[]), 3.0 * base, 1e-5);
    let (_, mut masked) = poutine::trace(|| poutine::mask(&Tensor::from(false), run))?;
    assert_eq!(masked.log_prob_sum()?.double_value(&[]), 0.0);
    assert!(poutine::scale(-1.0, run).is_err());
    Ok(())
}

#[test]
fn seed_makes_runs_identical() -> ppl::Result<()> {
    let (a1, _) = poutine::seed(7, two_normals)?;
    let (a2, _) = poutine::seed(7, two_normals)?;
    let (a3, _) = poutine::seed(8, two_normals)?;
    assert!(a1.equal(&a2));
    assert!(!a1.equal(&a3));
    set_rng_seed(3);
    let x = two_normals()?.1;
    set_rng_seed(3);
    assert!(x.equal(&two_normals()?.1));
    Ok(())
}

#[model]
fn with_param() -> ppl::Result<Tensor> {
    let w = param!(t(2.0), constraint = positive);
    let x = sample!(Normal::new(&w, 1.0)?);
    Ok(x.shallow_clone() + &w - &x)
}

#[test]
fn substitute_lift_and_uncondition() -> ppl::Result<()> {
    clear_param_store();
    // substitute replaces the param's value.
    let w = poutine::substitute(poutine::data([("w", t(5.0))]), with_param)?;
    close(w.double_value(&[]), 5.0, 1e-6);
    close(with_param()?.double_value(&[]), 2.0, 1e-6);
    // lift turns the param into a sample site from the prior.
    let mut priors: HashMap<String, _> = HashMap::new();
    priors.insert("w".to_string(), Delta::new(&t(7.0), 0)?.boxed());
    let (w, tr) = poutine::trace(|| LiftMessenger::new(priors).run(with_param))?;
    close(w.double_value(&[]), 7.0, 1e-6);
    assert_eq!(tr.site("w")?.kind, SiteKind::Sample);
    // uncondition draws observed sites instead.
    let data = poutine::data([("b", t(100.0))]);
    let (_, tr) =
        poutine::trace(|| poutine::uncondition(|| poutine::condition(data.clone(), two_normals)))?;
    let b = tr.site("b")?;
    assert!(!b.is_observed && b.value.double_value(&[]) != 100.0);
    Ok(())
}

#[test]
fn escape_stops_at_the_selected_site() -> ppl::Result<()> {
    let r = poutine::escape(|m| m.name == "b", two_normals)?;
    let site = r.expect_err("the run escapes at b");
    assert_eq!(site.name, "b");
    let (_, tr) = poutine::trace(|| EscapeMessenger::new(|m| m.name == "zz").run(two_normals))?;
    assert_eq!(tr.len(), 2);
    Ok(())
}

#[test]
fn infer_config_sets_site_settings() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        poutine::infer_config(
            |m| {
                (m.name == "a").then(|| InferConfig {
                    is_auxiliary: true,
                    ..Default::default()
                })
            },
            two_normals,
        )
    })?;
    assert!(tr.site("a")?.infer.is_auxiliary && !tr.site("b")?.infer.is_auxiliary);
    Ok(())
}

#[model]
fn two_coins() -> ppl::Result<(f64, f64)> {
    let x = sample!(Bernoulli::new(0.25)?);
    let y = sample!(Bernoulli::new(0.5)?);
    Ok((x.double_value(&[]), y.double_value(&[])))
}

#[test]
fn queue_enumerates_every_discrete_path() -> ppl::Result<()> {
    let mut q = VecDeque::from([Trace::new()]);
    let mut seen = Vec::new();
    let mut total = 0.0;
    while !q.is_empty() {
        let (xy, mut tr) = poutine::queue(two_coins, &mut q, 100)?;
        total += tr.log_prob_sum()?.double_value(&[]).exp();
        seen.push(xy);
    }
    seen.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    assert_eq!(seen, [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]);
    close(total, 1.0, 1e-6);
    Ok(())
}

#[test]
fn factor_and_deterministic() -> ppl::Result<()> {
    let (_, mut tr) = poutine::trace(|| {
        ppl::factor("f", &t(-1.5))?;
        let _ = ppl::deterministic("d", &t(4.0), 0)?;
        Ok(())
    })?;
    close(tr.log_prob_sum()?.double_value(&[]), -1.5, 1e-6);
    assert!(tr.site("d")?.infer.is_deterministic);
    Ok(())
}

#[test]
fn obs_mask_splits_observed_and_latent() -> ppl::Result<()> {
    let obs = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let mask = Tensor::from_slice(&[true, false, true]);
    let (v, tr) = poutine::trace(|| {
        let _p = Plate::new("n", 3).enter()?;
        sample_with(
            "x",
            Normal::new(0.0, 1.0)?,
            SampleOpts {
                obs: Some(obs.shallow_clone()),
                obs_mask: Some(mask.shallow_clone()),
                infer: None,
            },
        )
    })?;
    assert!(tr.contains("x_observed") && tr.contains("x_unobserved") && tr.contains("x"));
    assert_eq!(v.double_value(&[0]), 1.0);
    assert_eq!(v.double_value(&[2]), 3.0);
    assert!(tr.site("x_observed")?.is_observed);
    Ok(())
}

#[model]
fn panics_inside() -> ppl::Result<()> {
    let _z = sample!(Normal::new(0.0, 1.0)?);
    panic!("boom");
}

#[test]
fn panic_leaves_an_empty_stack() -> ppl::Result<()> {
    let r = std::panic::catch_unwind(|| {
        let _ = poutine::trace(|| {
            poutine::scale(2.0, || {
                poutine::condition(poutine::data([("q", t(0.0))]), || {
                    let _p = Plate::new("p", 3).enter()?;
                    panics_inside()
                })
            })
        });
    });
    assert!(r.is_err());
    assert_eq!(ppl::poutine::runtime::stack_depth(), 0);
    // The next inference works, and the plate's dim was released.
    let (_, tr) = poutine::trace(|| {
        let p = Plate::new("again", 2).enter()?;
        assert_eq!(p.dim(), -1);
        sample("z", Normal::new(0.0, 1.0)?, None)
    })?;
    assert_eq!(tr.site("z")?.dist()?.batch_shape(), [2]);
    Ok(())
}

#[test]
fn handler_guard_form() -> ppl::Result<()> {
    let g = ppl::poutine::TraceMessenger::new().enter();
    let _ = two_normals()?;
    let tr = g.exit()?.trace;
    assert_eq!(tr.len(), 2);
    Ok(())
}

/// `seed` restores the random streams when it leaves, as Pyro's does: the draws after the block
/// are those of a run without it (torch's generator and `rand`), and the draws inside are those
/// of the seed.
#[test]
fn seed_restores_the_random_streams() -> ppl::Result<()> {
    // (draws before the block, draws after it, draws inside it)
    type Draws = (Vec<f64>, Vec<f64>, Option<Vec<f64>>);
    let draws = |with_block: bool| -> ppl::Result<Draws> {
        set_rng_seed(3);
        let before: Vec<f64> = Vec::try_from(Tensor::randn([3], (Kind::Double, Device::Cpu)))?;
        let inside = if with_block {
            Some(poutine::seed(7, || {
                Ok(Vec::<f64>::try_from(Tensor::randn(
                    [3],
                    (Kind::Double, Device::Cpu),
                ))?)
            })?)
        } else {
            None
        };
        let mut after: Vec<f64> = Vec::try_from(Tensor::randn([3], (Kind::Double, Device::Cpu)))?;
        after.push(ppl::with_rng(rand::Rng::random::<f64>));
        Ok((before, after, inside))
    };
    let (b0, a0, _) = draws(false)?;
    let (b1, a1, inside) = draws(true)?;
    assert_eq!(b0, b1);
    assert_eq!(a0, a1, "the block changed the draws after it");
    set_rng_seed(7);
    let seeded: Vec<f64> = Vec::try_from(Tensor::randn([3], (Kind::Double, Device::Cpu)))?;
    assert_eq!(inside, Some(seeded));
    // And by hand: get_rng_state / set_rng_state replay the same draws.
    let state = ppl::get_rng_state()?;
    let x = Tensor::randn([4], (Kind::Double, Device::Cpu));
    ppl::set_rng_state(&state)?;
    assert!(x.equal(&Tensor::randn([4], (Kind::Double, Device::Cpu))));
    Ok(())
}
