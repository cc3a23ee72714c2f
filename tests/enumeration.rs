//! Exactness of parallel enumeration: `TraceEnumElbo`'s loss and gradients against brute-force
//! sums over every joint assignment of the discrete sites (Pyro's `test_enum.py` does the same).
//! Everything is float64, so the two agree to rounding (the tolerance, 1e-9 relative, is far
//! above float64 rounding of sums of a few hundred terms and far below any modelling error).

use ppl::constraints::Constraint;
use ppl::infer::Elbo;
use ppl::ops::vindex;
use ppl::poutine::{config_enumerate, markov, Enumerate};
use ppl::prelude::*;
use ppl::SampleOpts;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

fn f64s(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

/// `log N(x | loc, 1)` elementwise.
fn ln_normal(x: &Tensor, loc: &Tensor) -> Tensor {
    (x - loc).square() * -0.5 - 0.5 * LN_2PI
}

/// `logsumexp` over every assignment of variables with the given cardinalities.
fn brute(card: &[i64], f: impl Fn(&[i64]) -> Tensor) -> Tensor {
    let total: i64 = card.iter().product();
    let terms: Vec<Tensor> = (0..total)
        .map(|mut code| {
            let a: Vec<i64> = card
                .iter()
                .map(|c| {
                    let v = code % c;
                    code /= c;
                    v
                })
                .collect();
            f(&a)
        })
        .collect();
    Tensor::stack(&terms, 0).logsumexp([0], false)
}

fn zero_grads() {
    with_param_store(|ps| {
        for (_, p) in ps.named_parameters() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    });
}

fn grads(names: &[&str]) -> Vec<Tensor> {
    with_param_store(|ps| {
        names
            .iter()
            .map(|n| ps.entry(n).expect("param").unconstrained.grad().copy())
            .collect()
    })
}

/// Loss and gradients of `TraceEnumElbo` (guide without sites) against the brute-force
/// `-log p(data)` and its autograd gradients.
fn check_exact(
    model: &mut dyn FnMut() -> ppl::Result<()>,
    params: &[&str],
    nesting: Option<usize>,
    brute_log_p: &dyn Fn() -> Tensor,
) {
    let mut elbo = TraceEnumElbo::default();
    if let Some(n) = nesting {
        elbo = elbo.max_plate_nesting(n);
    }
    zero_grads();
    let out = elbo
        .loss_and_surrogate(model, &mut || Ok(()))
        .expect("enumerated loss");
    out.surrogate_loss.backward();
    let got = grads(params);
    zero_grads();
    let want = -brute_log_p();
    let want_loss = want.double_value(&[]);
    want.backward();
    let expect = grads(params);
    let rel = (out.loss - want_loss).abs() / want_loss.abs().max(1.0);
    assert!(rel < 1e-9, "loss {} vs brute force {want_loss}", out.loss);
    for ((n, g), e) in params.iter().zip(&got).zip(&expect) {
        let err = (g - e).abs().max().double_value(&[]);
        let scale = e.abs().max().double_value(&[]).max(1.0);
        assert!(
            err / scale < 1e-9,
            "gradient of `{n}`: {g:?} vs brute force {e:?}"
        );
    }
}

fn p(name: &str) -> Tensor {
    get_param(name).expect("param")
}

// One discrete site in a plate.

#[model]
fn mixture(data: &Tensor) -> ppl::Result<()> {
    let logits = param!("w_logits", f64s(&[0.2, -0.5, 0.3]));
    let locs = param!("locs", f64s(&[-1.0, 0.5, 2.0]));
    let _d = plate!("data", data.size()[0]);
    let z = sample!(Categorical::from_logits(&logits)?, enumerate = parallel);
    sample!(
        "x",
        Normal::new(&vindex(&locs, &[Some(&z)])?, 1.0)?,
        obs = data
    );
    Ok(())
}

#[test]
fn one_discrete_site_in_a_plate() {
    clear_param_store();
    let data = f64s(&[-0.9, 0.4, 2.2, 1.1]);
    let brute_log_p = || {
        let lw = p("w_logits").log_softmax(-1, Kind::Double);
        let locs = p("locs");
        brute(&[3, 3, 3, 3], |a| {
            (0..4)
                .map(|i| lw.get(a[i]) + ln_normal(&data.get(i as i64), &locs.get(a[i])))
                .fold(Tensor::from(0.0f64), |s, t| s + t)
        })
    };
    // Nesting given, and found by the trial run.
    check_exact(
        &mut || mixture(&data),
        &["w_logits", "locs"],
        Some(1),
        &brute_log_p,
    );
    check_exact(
        &mut || mixture(&data),
        &["w_logits", "locs"],
        None,
        &brute_log_p,
    );
    // config_enumerate marks the site as the keyword does.
    #[model]
    fn unmarked(data: &Tensor) -> ppl::Result<()> {
        let logits = param!("w_logits", f64s(&[0.2, -0.5, 0.3]));
        let locs = param!("locs", f64s(&[-1.0, 0.5, 2.0]));
        let _d = plate!("data", data.size()[0]);
        let z = sample!(Categorical::from_logits(&logits)?);
        sample!(
            "x",
            Normal::new(&vindex(&locs, &[Some(&z)])?, 1.0)?,
            obs = data
        );
        Ok(())
    }
    check_exact(
        &mut || config_enumerate(Enumerate::Parallel, || unmarked(&data)),
        &["w_logits", "locs"],
        Some(1),
        &brute_log_p,
    );
}

// Two dependent discrete sites.

#[model]
fn two_dependent(x: &Tensor) -> ppl::Result<()> {
    let la = param!("a_logit", Tensor::from(-0.4f64));
    let lb = param!(
        "b_logits",
        f64s(&[0.1, 0.3, -0.6, 0.5, -0.25, 0.25]).view([2, 3])
    );
    let locs = param!("b_locs", f64s(&[-1.0, 0.0, 1.5]));
    let a = sample!(Bernoulli::from_logits(&la)?, enumerate = parallel);
    let b = sample!(
        Categorical::from_logits(&vindex(&lb, &[Some(&a), None])?)?,
        enumerate = parallel
    );
    let loc = vindex(&locs, &[Some(&b)])? + &a;
    sample!("x", Normal::new(&loc, 1.0)?, obs = x);
    Ok(())
}

#[test]
fn two_dependent_discrete_sites() {
    clear_param_store();
    let x = Tensor::from(0.7f64);
    let brute_log_p = || {
        let la = p("a_logit");
        let lb = p("b_logits").log_softmax(-1, Kind::Double);
        let locs = p("b_locs");
        brute(&[2, 3], |v| {
            let (a, b) = (v[0], v[1]);
            let lpa = if a == 1 {
                la.log_sigmoid()
            } else {
                (-&la).log_sigmoid()
            };
            lpa + lb.get(a).get(b) + ln_normal(&x, &(locs.get(b) + a as f64))
        })
    };
    check_exact(
        &mut || two_dependent(&x),
        &["a_logit", "b_logits", "b_locs"],
        Some(0),
        &brute_log_p,
    );
}

// A discrete site outside a plate with a child inside.

#[model]
fn global_discrete(data: &Tensor) -> ppl::Result<()> {
    let logits = param!("g_logits", f64s(&[0.0, 0.7, -0.3]));
    let locs = param!("g_locs", f64s(&[-1.0, 0.5, 2.0]));
    let g = sample!(Categorical::from_logits(&logits)?, enumerate = parallel);
    let _d = plate!("data", data.size()[0]);
    sample!(
        "x",
        Normal::new(&vindex(&locs, &[Some(&g)])?, 1.0)?,
        obs = data
    );
    Ok(())
}

#[test]
fn discrete_outside_a_plate_with_child_inside() {
    clear_param_store();
    let data = f64s(&[-0.9, 0.4, 2.2, 1.1, 0.3]);
    let brute_log_p = || {
        let lw = p("g_logits").log_softmax(-1, Kind::Double);
        let locs = p("g_locs");
        brute(&[3], |a| {
            lw.get(a[0]) + ln_normal(&data, &locs.get(a[0])).sum(Kind::Double)
        })
    };
    check_exact(
        &mut || global_discrete(&data),
        &["g_logits", "g_locs"],
        Some(1),
        &brute_log_p,
    );
}

// Nested plates: a discrete site per group and one per item, the item's depending on its group's.

#[model]
fn nested(data: &Tensor) -> ppl::Result<()> {
    let lz = param!("z_logit", Tensor::from(0.3f64));
    let lw = param!("w_logits", f64s(&[-0.5, 0.8]));
    let locs = param!("z_locs", f64s(&[-1.0, 1.0]));
    let _groups = plate!("groups", data.size()[0], dim = -2);
    let z = sample!(Bernoulli::from_logits(&lz)?, enumerate = parallel);
    let _items = plate!("items", data.size()[1], dim = -1);
    let w = sample!(
        Bernoulli::from_logits(&vindex(&lw, &[Some(&z)])?)?,
        enumerate = parallel
    );
    let loc = vindex(&locs, &[Some(&z)])? + &w * 0.5;
    sample!("x", Normal::new(&loc, 1.0)?, obs = data);
    Ok(())
}

#[test]
fn nested_plates() {
    clear_param_store();
    let data = f64s(&[0.1, -0.8, 1.3, 0.9, 1.4, -0.2]).view([2, 3]);
    let brute_log_p = || {
        let lz = p("z_logit");
        let lw = p("w_logits");
        let locs = p("z_locs");
        let lb = |logit: &Tensor, v: i64| {
            if v == 1 {
                logit.log_sigmoid()
            } else {
                (-logit).log_sigmoid()
            }
        };
        // z_0, z_1, then w_00..w_12.
        brute(&[2, 2, 2, 2, 2, 2, 2, 2], |a| {
            let mut s = Tensor::from(0.0f64);
            for j in 0..2 {
                let z = a[j];
                s += lb(&lz, z);
                for i in 0..3 {
                    let w = a[2 + 3 * j + i];
                    s = s
                        + lb(&lw.get(z), w)
                        + ln_normal(
                            &data.get(j as i64).get(i as i64),
                            &(locs.get(z) + 0.5 * w as f64),
                        );
                }
            }
            s
        })
    };
    check_exact(
        &mut || nested(&data),
        &["z_logit", "w_logits", "z_locs"],
        Some(2),
        &brute_log_p,
    );
}

// An HMM of length 5, with and without markov.

fn hmm_body(ys: &Tensor, use_markov: bool) -> ppl::Result<()> {
    let init = param!("init", f64s(&[0.3, -0.2, 0.1]));
    let trans = param!(
        "trans",
        f64s(&[0.5, -0.3, 0.1, -0.2, 0.7, 0.0, 0.2, 0.1, -0.4]).view([3, 3])
    );
    let locs = param!("h_locs", f64s(&[-1.0, 0.2, 1.6]));
    let t_max = ys.size()[0];
    let mut x = sample!(
        "x_0",
        Categorical::from_logits(&init)?,
        enumerate = parallel
    );
    let _ = sample!(
        "y_0",
        Normal::new(&vindex(&locs, &[Some(&x)])?, 1.0)?,
        obs = ys.get(0)
    );
    let steps: Box<dyn Iterator<Item = i64>> = if use_markov {
        Box::new(markov(1..t_max))
    } else {
        Box::new(1..t_max)
    };
    for t in steps {
        x = sample!(
            format!("x_{t}"),
            Categorical::from_logits(&vindex(&trans, &[Some(&x), None])?)?,
            enumerate = parallel
        );
        let _ = sample!(
            format!("y_{t}"),
            Normal::new(&vindex(&locs, &[Some(&x)])?, 1.0)?,
            obs = ys.get(t)
        );
    }
    Ok(())
}

#[test]
fn hmm_with_and_without_markov() {
    let ys = f64s(&[-0.8, 0.1, 1.9, 1.2, -0.3]);
    let brute_log_p = || {
        let init = p("init").log_softmax(-1, Kind::Double);
        let trans = p("trans").log_softmax(-1, Kind::Double);
        let locs = p("h_locs");
        brute(&[3, 3, 3, 3, 3], |a| {
            let mut s = init.get(a[0]) + ln_normal(&ys.get(0), &locs.get(a[0]));
            for t in 1..5 {
                s = s
                    + trans.get(a[t - 1]).get(a[t])
                    + ln_normal(&ys.get(t as i64), &locs.get(a[t]));
            }
            s
        })
    };
    for use_markov in [true, false] {
        clear_param_store();
        check_exact(
            &mut || hmm_body(&ys, use_markov),
            &["init", "trans", "h_locs"],
            Some(0),
            &brute_log_p,
        );
    }
}

#[test]
fn markov_recycles_enumeration_dims() -> ppl::Result<()> {
    clear_param_store();
    let ys = f64s(&[-0.8, 0.1, 1.9, 1.2, -0.3]);
    let (_, tr) = poutine::trace(|| poutine::enum_(-1, || hmm_body(&ys, true)))?;
    // x_0 comes before the loop: a global dim. Inside, history 1: two dims, alternating.
    let dims: Vec<i64> = (0..5)
        .map(|t| tr.site(&format!("x_{t}")).unwrap().infer.enum_dim.unwrap())
        .collect();
    assert_eq!(dims, [-1, -2, -3, -2, -3]);
    let (_, tr) = poutine::trace(|| poutine::enum_(-1, || hmm_body(&ys, false)))?;
    let dims: Vec<i64> = (0..5)
        .map(|t| tr.site(&format!("x_{t}")).unwrap().infer.enum_dim.unwrap())
        .collect();
    assert_eq!(dims, [-1, -2, -3, -4, -5]);
    Ok(())
}

// Guide-side enumeration: the ELBO is exactly sum_z q(z) (log p(x, z) - log q(z)).

#[model]
fn bern_model(x: &Tensor) -> ppl::Result<()> {
    let z = sample!(Bernoulli::new(Tensor::from(0.3f64))?);
    let loc = &z * 2.0 - 1.0;
    sample!("x", Normal::new(&loc, 1.0)?, obs = x);
    Ok(())
}

#[guide]
fn bern_guide(_x: &Tensor) -> ppl::Result<()> {
    let q = param!("q_logit", Tensor::from(0.2f64));
    let _z = sample!(Bernoulli::from_logits(&q)?, enumerate = parallel);
    Ok(())
}

#[test]
fn guide_side_enumeration_is_exact() {
    clear_param_store();
    let x = Tensor::from(0.4f64);
    zero_grads();
    let out = TraceEnumElbo::default()
        .max_plate_nesting(0)
        .loss_and_surrogate(&mut || bern_model(&x), &mut || bern_guide(&x))
        .expect("loss");
    out.surrogate_loss.backward();
    let got = grads(&["q_logit"]);
    zero_grads();
    let q = p("q_logit");
    let lq = [(-&q).log_sigmoid(), q.log_sigmoid()];
    let lp = [0.7f64.ln(), 0.3f64.ln()];
    let mut elbo = Tensor::from(0.0f64);
    for z in 0..2 {
        let loc = Tensor::from(2.0 * z as f64 - 1.0);
        let term = lq[z].exp() * (ln_normal(&x, &loc) + lp[z] - &lq[z]);
        elbo += term;
    }
    let want = -elbo;
    assert!((out.loss - want.double_value(&[])).abs() < 1e-12);
    want.backward();
    let expect = grads(&["q_logit"]);
    assert!((&got[0] - &expect[0]).abs().double_value(&[]) < 1e-12);
}

// A subsampled plate: the enumerated log-likelihood of the drawn items, scaled by N / B.

#[model]
fn subsampled(data: &Tensor) -> ppl::Result<Tensor> {
    let logits = param!("s_logits", f64s(&[0.2, -0.5]));
    let locs = param!("s_locs", f64s(&[-1.0, 1.5]));
    let d = plate!("data", data.size()[0], subsample_size = 3);
    let idx = d.indices().shallow_clone();
    let z = sample!(Categorical::from_logits(&logits)?, enumerate = parallel);
    sample!(
        "x",
        Normal::new(&vindex(&locs, &[Some(&z)])?, 1.0)?,
        obs = data.index_select(0, &idx)
    );
    Ok(idx)
}

#[test]
fn subsampled_plate_is_scaled() {
    clear_param_store();
    let data = f64s(&[-0.9, 0.4, 2.2, 1.1, 0.3, -1.7]);
    // The model's first random draw is the subsample: the same seed gives the same indices.
    set_rng_seed(3);
    let out = TraceEnumElbo::default()
        .max_plate_nesting(1)
        .loss_and_surrogate(&mut || subsampled(&data).map(|_| ()), &mut || Ok(()))
        .expect("loss");
    set_rng_seed(3);
    let idx = subsampled(&data).expect("indices");
    let idx: Vec<i64> = Vec::try_from(&idx).expect("ints");
    let lw = p("s_logits").log_softmax(-1, Kind::Double);
    let locs = p("s_locs");
    let mut want = 0.0;
    for i in &idx {
        let x = data.get(*i);
        let terms = Tensor::stack(
            &[
                lw.get(0) + ln_normal(&x, &locs.get(0)),
                lw.get(1) + ln_normal(&x, &locs.get(1)),
            ],
            0,
        );
        want -= 2.0 * terms.logsumexp([0], false).double_value(&[]);
    }
    assert_eq!(idx.len(), 3);
    assert!((out.loss - want).abs() < 1e-9, "{} vs {want}", out.loss);
}

// No more silent ignoring.

#[test]
fn trace_elbo_refuses_enumerated_sites() {
    clear_param_store();
    let data = f64s(&[-0.9, 0.4]);
    let e = TraceElbo::default()
        .loss_and_surrogate(&mut || mixture(&data), &mut || Ok(()))
        .err()
        .expect("TraceElbo cannot enumerate")
        .to_string();
    assert!(e.contains("site `z`") && e.contains("TraceEnumElbo"), "{e}");
    let e = TraceMeanFieldElbo::default()
        .loss_and_surrogate(&mut || mixture(&data), &mut || Ok(()))
        .err()
        .expect("TraceMeanFieldElbo cannot enumerate")
        .to_string();
    assert!(e.contains("site `z`") && e.contains("TraceEnumElbo"), "{e}");
    let e = Importance::new(|| mixture(&data), 3)
        .run()
        .err()
        .expect("Importance cannot enumerate")
        .to_string();
    assert!(e.contains("site `z`") && e.contains("Importance"), "{e}");
}

/// The error text of `elbo` on `model` with an empty guide.
fn enum_error(elbo: TraceEnumElbo, model: &mut dyn FnMut() -> ppl::Result<()>) -> String {
    elbo.loss_and_surrogate(model, &mut || Ok(()))
        .err()
        .expect("an error")
        .to_string()
}

#[test]
fn enumerating_a_continuous_site_is_an_error() {
    clear_param_store();
    #[model]
    fn bad() -> ppl::Result<()> {
        let _z = sample!(Normal::new(0.0, 1.0)?, enumerate = parallel);
        Ok(())
    }
    let e = enum_error(TraceEnumElbo::default(), &mut || bad());
    assert!(
        e.contains("site `z`") && e.contains("no finite support"),
        "{e}"
    );
}

#[test]
fn latent_neither_guided_nor_enumerated_is_an_error() {
    clear_param_store();
    #[model]
    fn m() -> ppl::Result<()> {
        let z = sample!(Normal::new(0.0, 1.0)?);
        sample!("x", Normal::new(&z, 1.0)?, obs = 0.3);
        Ok(())
    }
    let e = enum_error(TraceEnumElbo::default(), &mut || m());
    assert!(
        e.contains("site `z`") && e.contains("the guide does not sample it"),
        "{e}"
    );
}

#[test]
fn too_small_max_plate_nesting_is_named() {
    clear_param_store();
    let data = f64s(&[0.1, -0.8, 1.3, 0.9, 1.4, -0.2]).view([2, 3]);
    let e = enum_error(TraceEnumElbo::default().max_plate_nesting(1), &mut || {
        nested(&data)
    });
    assert!(e.contains("max_plate_nesting"), "{e}");
}

// infer_discrete: MAP against the brute-force argmax, samples against the brute-force posterior.

/// Every joint assignment of variables with cardinalities `card`, with its log joint.
fn all_assignments(card: &[i64], f: impl Fn(&[i64]) -> f64) -> Vec<(Vec<i64>, f64)> {
    let total: i64 = card.iter().product();
    (0..total)
        .map(|mut code| {
            let a: Vec<i64> = card
                .iter()
                .map(|c| {
                    let v = code % c;
                    code /= c;
                    v
                })
                .collect();
            let lp = f(&a);
            (a, lp)
        })
        .collect()
}

fn argmax(all: &[(Vec<i64>, f64)]) -> Vec<i64> {
    all.iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("assignments")
        .0
        .clone()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&t.to_kind(Kind::Int64).flatten(0, -1)).expect("ints")
}

#[test]
fn infer_discrete_map_of_an_hmm_is_the_brute_force_argmax() -> ppl::Result<()> {
    clear_param_store();
    let ys = f64s(&[-0.8, 0.1, 1.9, 1.2, -0.3]);
    hmm_body(&ys, true)?; // registers the params
    let init = p("init").log_softmax(-1, Kind::Double);
    let trans = p("trans").log_softmax(-1, Kind::Double);
    let locs = p("h_locs");
    let all = all_assignments(&[3, 3, 3, 3, 3], |a| {
        let mut s =
            init.double_value(&[a[0]]) + ln_normal(&ys.get(0), &locs.get(a[0])).double_value(&[]);
        for t in 1..5 {
            s += trans.double_value(&[a[t - 1], a[t]])
                + ln_normal(&ys.get(t as i64), &locs.get(a[t])).double_value(&[]);
        }
        s
    });
    for use_markov in [true, false] {
        let (_, tr) =
            poutine::trace(|| ppl::infer::infer_discrete(|| hmm_body(&ys, use_markov), -1, 0.0))?;
        let got: Vec<i64> = (0..5)
            .map(|t| ints(tr.value(&format!("x_{t}")).unwrap())[0])
            .collect();
        assert_eq!(got, argmax(&all), "markov: {use_markov}");
        assert_eq!(tr.value("x_3")?.size(), Vec::<i64>::new());
    }
    Ok(())
}

#[test]
fn infer_discrete_map_in_nested_plates() -> ppl::Result<()> {
    clear_param_store();
    let data = f64s(&[0.1, -0.8, 1.3, 0.9, 1.4, -0.2]).view([2, 3]);
    nested(&data)?;
    let (lz, lw, locs) = (p("z_logit"), p("w_logits"), p("z_locs"));
    let lb = |logit: f64, v: i64| {
        let l = if v == 1 { logit } else { -logit };
        -(1.0 + (-l).exp()).ln()
    };
    let all = all_assignments(&[2, 2, 2, 2, 2, 2, 2, 2], |a| {
        let mut s = 0.0;
        for j in 0..2 {
            let z = a[j];
            s += lb(lz.double_value(&[]), z);
            for i in 0..3 {
                let w = a[2 + 3 * j + i];
                let x = data.double_value(&[j as i64, i as i64]);
                let m = locs.double_value(&[z]) + 0.5 * w as f64;
                s += lb(lw.double_value(&[z]), w) - 0.5 * (x - m).powi(2) - 0.5 * LN_2PI;
            }
        }
        s
    });
    let best = argmax(&all);
    let (_, tr) = poutine::trace(|| ppl::infer::infer_discrete(|| nested(&data), -3, 0.0))?;
    assert_eq!(tr.value("z")?.size(), vec![2, 1]);
    assert_eq!(tr.value("w")?.size(), vec![2, 3]);
    assert_eq!(ints(tr.value("z")?), best[0..2].to_vec());
    assert_eq!(ints(tr.value("w")?), best[2..8].to_vec());
    Ok(())
}

#[test]
fn infer_discrete_samples_follow_the_posterior() -> ppl::Result<()> {
    clear_param_store();
    set_rng_seed(0);
    let x = Tensor::from(0.7f64);
    two_dependent(&x)?;
    let (la, lb, locs) = (
        p("a_logit").double_value(&[]),
        p("b_logits").log_softmax(-1, Kind::Double),
        p("b_locs"),
    );
    let all = all_assignments(&[2, 3], |v| {
        let (a, b) = (v[0], v[1]);
        let l = if a == 1 { la } else { -la };
        let m = locs.double_value(&[b]) + a as f64;
        -(1.0 + (-l).exp()).ln() + lb.double_value(&[a, b]) - 0.5 * (0.7 - m).powi(2)
    });
    let norm = all.iter().map(|(_, l)| l.exp()).sum::<f64>();
    let n = 3000;
    let mut counts = [0usize; 6];
    for _ in 0..n {
        let (_, tr) = poutine::trace(|| ppl::infer::infer_discrete(|| two_dependent(&x), -1, 1.0))?;
        let a = ints(tr.value("a")?)[0];
        let b = ints(tr.value("b")?)[0];
        counts[(a + 2 * b) as usize] += 1;
    }
    // Each count is Binomial(n, p): its frequency has standard error sqrt(p (1 - p) / n). A
    // 4.5-SE band fails by chance with probability < 1e-5 per cell (6e-5 for all six); the
    // seed is fixed, so the test is deterministic.
    for (a, lp) in &all {
        let prob = lp.exp() / norm;
        let freq = counts[(a[0] + 2 * a[1]) as usize] as f64 / n as f64;
        let se = (prob * (1.0 - prob) / n as f64).sqrt();
        assert!(
            (freq - prob).abs() < 4.5 * se,
            "{a:?}: frequency {freq} vs posterior {prob}"
        );
    }
    Ok(())
}

// NUTS with an enumerated mixture against NUTS on the hand-marginalized model.

fn mixture_data() -> Tensor {
    f64s(&[
        -0.6, 0.3, 1.1, -0.2, 0.8, 0.1, 9.4, 10.2, 11.0, 10.6, 9.9, 10.3, 11.4, 9.7,
    ])
}

/// A mixture whose assignments `z` carry no enumeration mark: NUTS and
/// `Predictive::infer_discrete` enumerate them by themselves.
#[model]
fn enumerated_mixture(data: &Tensor) -> ppl::Result<()> {
    let weights = sample!(Dirichlet::new(f64s(&[1.0, 1.0]))?);
    let locs = {
        let _c = plate!("components", 2);
        sample!("locs", Normal::new(f64s(&[0.0, 10.0]), 3.0)?)
    };
    let _d = plate!("data", data.size()[0]);
    let z = sample!(Categorical::new(&weights)?);
    sample!(
        "x",
        Normal::new(&vindex(&locs, &[Some(&z)])?, 1.0)?,
        obs = data
    );
    Ok(())
}

#[model]
fn marginalized_mixture(data: &Tensor) -> ppl::Result<()> {
    let weights = sample!(Dirichlet::new(f64s(&[1.0, 1.0]))?);
    let locs = {
        let _c = plate!("components", 2);
        sample!("locs", Normal::new(f64s(&[0.0, 10.0]), 3.0)?)
    };
    let _d = plate!("data", data.size()[0]);
    let mix = MixtureSameFamily::new(
        Categorical::new(&weights)?,
        std::rc::Rc::new(Normal::new(&locs, 1.0)?),
    )?;
    sample!("x", mix, obs = data);
    Ok(())
}

/// Posterior mean and its MCSE (`sd / sqrt(ESS)`) of element `i` of a site.
fn mean_mcse(mcmc: &ppl::infer::Mcmc, site: &str, i: i64) -> (f64, f64) {
    let s = mcmc.get_samples_by_chain().expect("samples")[site].to_kind(Kind::Double);
    let (c, n) = (s.size()[0], s.size()[1]);
    let s = s.reshape([c, n, -1]).select(2, i);
    let chains: Vec<Vec<f64>> = (0..c)
        .map(|k| Vec::try_from(s.get(k)).expect("values"))
        .collect();
    let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
    let ess = ppl::infer::mcmc::diagnostics::effective_sample_size(&refs).expect("ess");
    let all: Vec<f64> = chains.concat();
    let m = ppl::infer::mcmc::diagnostics::mean(&all);
    let sd = ppl::infer::mcmc::diagnostics::variance(&all).sqrt();
    (m, sd / ess.sqrt())
}

#[test]
fn nuts_sums_out_discrete_sites() {
    let data = mixture_data();
    let run = |enumerated: bool, jit: bool, samples: usize, seed: u64| {
        set_rng_seed(seed);
        // Both runs start at the prior medians, in the mode that the priors favour (the
        // label-swapped mode is 22 nats less likely, and a chain started between the modes
        // might settle in either).
        let nuts = Nuts::new()
            .jit_compile(jit)
            .init_strategy(ppl::infer::mcmc::InitStrategy::Median { num_samples: 15 });
        let mut mcmc = ppl::infer::Mcmc::new(nuts)
            .num_samples(samples)
            .warmup_steps(300)
            .seed(seed);
        if enumerated {
            mcmc.run(|| enumerated_mixture(&data))
                .expect("enumerated run");
        } else {
            mcmc.run(|| marginalized_mixture(&data))
                .expect("reference run");
        }
        mcmc
    };
    let reference = run(false, true, 2000, 2);
    for jit in [false, true] {
        let got = run(true, jit, 600, 1);
        assert!(!got.get_samples().expect("samples").contains_key("z"));
        check_same_posterior(&got, &reference);
    }
}

fn check_same_posterior(got: &ppl::infer::Mcmc, reference: &ppl::infer::Mcmc) {
    // Two independent estimates of the same mean: their difference has standard error
    // sqrt(mcse₁² + mcse₂²); 4 of them bound a false failure by about 6e-5 per check.
    for (site, i) in [("weights", 0), ("locs", 0), ("locs", 1)] {
        let (m1, e1) = mean_mcse(got, site, i);
        let (m2, e2) = mean_mcse(reference, site, i);
        let tol = 4.0 * (e1 * e1 + e2 * e2).sqrt();
        assert!(
            (m1 - m2).abs() < tol,
            "{site}[{i}]: {m1} ± {e1} vs reference {m2} ± {e2}"
        );
    }
}

#[test]
fn predictive_draws_discrete_sites_with_infer_discrete() -> ppl::Result<()> {
    clear_param_store();
    let data = mixture_data();
    // Two "posterior draws" of the globals.
    let weights = f64s(&[0.5, 0.5, 0.1, 0.9]).view([2, 2]);
    let locs = f64s(&[0.0, 10.0, 3.0, 9.0]).view([2, 2]);
    let samples: std::collections::HashMap<String, Tensor> = [
        ("weights".to_string(), weights.shallow_clone()),
        ("locs".to_string(), locs.shallow_clone()),
    ]
    .into_iter()
    .collect();
    let pred = Predictive::with_posterior_samples(|| enumerated_mixture(&data), samples)?
        .infer_discrete(-2, 0.0)
        .run()?;
    let z = &pred["z"];
    assert_eq!(z.size(), vec![2, data.size()[0]]);
    let xs: Vec<f64> = Vec::try_from(&data)?;
    for s in 0..2i64 {
        for (i, x) in xs.iter().enumerate() {
            let score = |k: i64| {
                weights.double_value(&[s, k]).ln() - 0.5 * (x - locs.double_value(&[s, k])).powi(2)
            };
            let best = if score(1) > score(0) { 1 } else { 0 };
            assert_eq!(z.int64_value(&[s, i as i64]), best, "draw {s}, point {i}");
        }
    }
    Ok(())
}

#[test]
fn markov_history_two_keeps_three_dims() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        poutine::enum_(-1, || {
            for t in markov(0..6).history(2) {
                let _ = sample!(format!("x_{t}"), Bernoulli::new(0.5)?, enumerate = parallel);
            }
            Ok(())
        })
    })?;
    let dims: Vec<i64> = (0..6)
        .map(|t| tr.site(&format!("x_{t}")).unwrap().infer.enum_dim.unwrap())
        .collect();
    assert_eq!(dims, [-1, -2, -3, -1, -2, -3]);
    Ok(())
}

#[test]
fn expand_gives_full_shape_values() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        poutine::enum_(-2, || {
            let _d = plate!("data", 4);
            let _ = sample!(
                "z",
                Bernoulli::new(0.3)?,
                enumerate = parallel,
                expand = true
            );
            let _ = sample!(
                "w",
                Categorical::new(f64s(&[0.2, 0.3, 0.5]))?,
                enumerate = parallel
            );
            Ok(())
        })
    })?;
    assert_eq!(tr.value("z")?.size(), vec![2, 4]);
    assert_eq!(tr.value("w")?.size(), vec![3, 1, 1]);
    Ok(())
}

#[test]
fn particles_and_continuous_guide_sites() -> ppl::Result<()> {
    // A continuous latent in the guide beside an enumerated one in the model; with every
    // particle's draw of `loc`, the enumerated part is exact, so the loss is finite and the
    // gradient reaches both the guide's and the model's params.
    clear_param_store();
    set_rng_seed(0);
    let data = mixture_data();
    #[model]
    fn m(data: &Tensor) -> ppl::Result<()> {
        let loc = sample!(Normal::new(Tensor::from(5.0f64), 5.0)?);
        let logits = param!("m_logits", f64s(&[0.0, 0.0]));
        let _d = plate!("data", data.size()[0]);
        let z = sample!(Categorical::from_logits(&logits)?, enumerate = parallel);
        // [..., 2]: vectorized particles give `loc` a batch shape.
        let locs = Tensor::stack(&[loc.zeros_like(), loc.shallow_clone()], -1);
        sample!(
            "x",
            Normal::new(&vindex(&locs, &[Some(&z)])?, 1.0)?,
            obs = data
        );
        Ok(())
    }
    #[guide]
    fn g(_data: &Tensor) -> ppl::Result<()> {
        let q = param!("q_loc", Tensor::from(8.0f64));
        let _loc = sample!(Normal::new(&q, 0.5)?);
        Ok(())
    }
    for vectorize in [false, true] {
        zero_grads();
        let elbo = TraceEnumElbo::default()
            .max_plate_nesting(1)
            .num_particles(3)
            .vectorize_particles(vectorize);
        let out = elbo.loss_and_surrogate(&mut || m(&data), &mut || g(&data))?;
        assert!(out.loss.is_finite(), "vectorized {vectorize}: {}", out.loss);
        out.surrogate_loss.backward();
        let gs = grads(&["q_loc", "m_logits"]);
        assert!(gs[0].abs().double_value(&[]) > 0.0);
        assert!(gs[1].abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }
    Ok(())
}

#[test]
fn auto_normal_leaves_enumerated_sites_to_the_loss() -> ppl::Result<()> {
    clear_param_store();
    set_rng_seed(0);
    let data = mixture_data();
    let model = || enumerated_mixture(&data);
    let guide = AutoNormal::new(|| config_enumerate(Enumerate::Parallel, model));
    let adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || config_enumerate(Enumerate::Parallel, model),
        || guide.call(),
        adam,
        TraceEnumElbo::default(),
    );
    for _ in 0..5 {
        assert!(svi.step()?.is_finite());
    }
    assert!(!guide.latent_sites()?.contains(&"z".to_string()));
    Ok(())
}

#[test]
fn sequential_enumeration_is_refused_not_sampled() {
    clear_param_store();
    #[model]
    fn m() -> ppl::Result<()> {
        let z = sample!(Bernoulli::new(0.3)?, enumerate = sequential);
        sample!("x", Normal::new(&z, 1.0)?, obs = 0.5);
        Ok(())
    }
    let e = enum_error(TraceEnumElbo::default(), &mut || m());
    assert!(e.contains("site `z`") && e.contains("sequential"), "{e}");
    let e = ppl::infer::infer_discrete(m, -1, 0.0)
        .expect_err("infer_discrete refuses it")
        .to_string();
    assert!(
        e.contains("site `z`") && e.contains("infer_discrete"),
        "{e}"
    );
}

// Sequential enumeration in the guide (Pyro's `enumerate="sequential"`, `iter_discrete_traces`):
// one guide run per value, summed with weights q(v).

#[guide]
fn bern_guide_sequential(_x: &Tensor) -> ppl::Result<()> {
    let q = param!("q_logit", Tensor::from(0.2f64));
    let _z = sample!(Bernoulli::from_logits(&q)?, enumerate = sequential);
    Ok(())
}

/// Sample options marking a site for enumeration.
fn marked(how: Enumerate) -> SampleOpts {
    SampleOpts {
        infer: Some(ppl::poutine::InferConfig {
            enumerate: Some(how),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The loss and gradient of `guide`'s ELBO.
fn enum_loss_and_grads(
    model: &mut dyn FnMut() -> ppl::Result<()>,
    guide: &mut dyn FnMut() -> ppl::Result<()>,
    params: &[&str],
) -> (f64, Vec<Tensor>) {
    zero_grads();
    let out = TraceEnumElbo::default()
        .max_plate_nesting(0)
        .loss_and_surrogate(model, guide)
        .expect("loss");
    out.surrogate_loss.backward();
    (out.loss, grads(params))
}

/// A sequentially enumerated guide site gives the loss and gradient of the parallel one, which
/// `guide_side_enumeration_is_exact` checks against the exact sum.
#[test]
fn sequential_guide_enumeration_equals_parallel() {
    clear_param_store();
    let x = Tensor::from(0.4f64);
    let (lp, gp) =
        enum_loss_and_grads(&mut || bern_model(&x), &mut || bern_guide(&x), &["q_logit"]);
    let (ls, gs) = enum_loss_and_grads(
        &mut || bern_model(&x),
        &mut || bern_guide_sequential(&x),
        &["q_logit"],
    );
    assert!((lp - ls).abs() < 1e-12, "parallel {lp} vs sequential {ls}");
    assert!((&gp[0] - &gs[0]).abs().double_value(&[]) < 1e-12);
}

/// Two sequential guide sites, the second's distribution depending on the first, and a model
/// site enumerated in parallel below them: the loss is the exact
/// `-Σ_{a,b} q(a) q(b|a) [log p(a) + log p(b|a) + log Σ_c p(c|b) p(x|a,c) - log q(a) - log q(b|a)]`
/// (9 runs of the guide), and its gradient autograd's gradient of that sum.
#[test]
fn two_sequential_guide_sites_and_a_parallel_model_site_are_exact() {
    clear_param_store();
    let x = Tensor::from(0.7f64);
    let pa = f64s(&[0.2, 0.5, 0.3]);
    let pb = f64s(&[0.6, 0.3, 0.1, 0.2, 0.2, 0.6, 0.3, 0.4, 0.3]).view([3, 3]);
    let pc = f64s(&[0.7, 0.3, 0.4, 0.6, 0.1, 0.9]).view([3, 2]);
    let locs = f64s(&[-1.0, 0.0, 1.5, 0.5, 2.0, -0.5]).view([3, 2]);
    let mut model = || -> ppl::Result<()> {
        let a = ppl::sample("a", Categorical::new(&pa)?, None)?;
        let b = ppl::sample("b", Categorical::new(pb.get(a.int64_value(&[])))?, None)?;
        let c = ppl::sample_with(
            "c",
            Categorical::new(pc.get(b.int64_value(&[])))?,
            marked(Enumerate::Parallel),
        )?;
        let row = locs.get(a.int64_value(&[]));
        let loc = vindex(&row, &[Some(&c)])?;
        let _ = ppl::sample("x", Normal::new(&loc, 1.0)?, Some(x.shallow_clone()))?;
        Ok(())
    };
    let mut guide = || -> ppl::Result<()> {
        let qa = ppl::param(
            "qa",
            Some(|| Ok(f64s(&[0.1, 0.4, -0.2]))),
            Constraint::Real,
            None,
        )?;
        let qb = ppl::param(
            "qb",
            Some(|| Ok(f64s(&[0.3, -0.1, 0.5]))),
            Constraint::Real,
            None,
        )?;
        let a = ppl::sample_with(
            "a",
            Categorical::from_logits(&qa)?,
            marked(Enumerate::Sequential),
        )?;
        let shift = a.to_kind(Kind::Double) * 0.5;
        let _b = ppl::sample_with(
            "b",
            Categorical::from_logits(&(&qb + shift))?,
            marked(Enumerate::Sequential),
        )?;
        Ok(())
    };
    let (loss, got) = enum_loss_and_grads(&mut model, &mut guide, &["qa", "qb"]);
    zero_grads();
    let (qa, qb) = (p("qa"), p("qb"));
    let lqa = qa.log_softmax(-1, Kind::Double);
    let mut elbo = Tensor::from(0.0f64);
    for a in 0..3i64 {
        let lqb = (&qb + 0.5 * a as f64).log_softmax(-1, Kind::Double);
        for b in 0..3i64 {
            let inner: Vec<Tensor> = (0..2i64)
                .map(|c| pc.get(b).get(c).log() + ln_normal(&x, &locs.get(a).get(c)))
                .collect();
            let marg = Tensor::stack(&inner, 0).logsumexp([0], false);
            let w = (lqa.get(a) + lqb.get(b)).exp();
            let term = pa.get(a).log() + pb.get(a).get(b).log() + marg - lqa.get(a) - lqb.get(b);
            elbo += w * term;
        }
    }
    let want = -elbo;
    assert!(
        (loss - want.double_value(&[])).abs() < 1e-9,
        "loss {loss} vs exact {}",
        want.double_value(&[])
    );
    want.backward();
    let expect = grads(&["qa", "qb"]);
    for (g, e) in got.iter().zip(&expect) {
        assert!(
            (g - e).abs().max().double_value(&[]) < 1e-9,
            "{g:?} vs {e:?}"
        );
    }
}

/// Sequential enumeration refuses, naming the site: a model site marked sequential that the
/// guide does not sample, and a batched guide site.
#[test]
fn sequential_enumeration_errors_name_the_site() {
    clear_param_store();
    let mut model = || -> ppl::Result<()> {
        let _ = ppl::sample_with("z", Bernoulli::new(0.3)?, marked(Enumerate::Sequential))?;
        Ok(())
    };
    let e = TraceEnumElbo::default()
        .max_plate_nesting(1)
        .loss_and_surrogate(&mut model, &mut || Ok(()))
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("`z`") && e.contains("in the model"), "{e}");

    let mut model = || -> ppl::Result<()> {
        let _p = Plate::new("data", 3).enter()?;
        let _ = ppl::sample("z", Bernoulli::new(0.3)?, None)?;
        Ok(())
    };
    let mut guide = || -> ppl::Result<()> {
        let _p = Plate::new("data", 3).enter()?;
        let _ = ppl::sample_with("z", Bernoulli::new(0.6)?, marked(Enumerate::Sequential))?;
        Ok(())
    };
    let e = TraceEnumElbo::default()
        .max_plate_nesting(1)
        .loss_and_surrogate(&mut model, &mut guide)
        .err()
        .expect("an error")
        .to_string();
    assert!(
        e.contains("`z`") && e.contains("vectorized plate `data`"),
        "{e}"
    );
}

/// SVI with a sequentially enumerated guide site trains the same eagerly and compiled: the loss
/// has no random draws, so both make the same steps (to float64 rounding).
#[test]
fn sequential_guide_enumeration_trains_eager_and_compiled() {
    let x = Tensor::from(0.4f64);
    let run = |jit: bool| {
        clear_param_store();
        let mut svi = Svi::new(
            || bern_model(&x),
            || bern_guide_sequential(&x),
            Adam::new(AdamConfig {
                lr: 0.05,
                ..Default::default()
            }),
            TraceEnumElbo::default().max_plate_nesting(0),
        )
        .jit_compile(jit);
        let losses = svi.run(30).expect("steps");
        assert_eq!(svi.is_compiled(), jit);
        (losses, p("q_logit").double_value(&[]))
    };
    let (eager, qe) = run(false);
    let (compiled, qc) = run(true);
    for (a, b) in eager.iter().zip(&compiled) {
        assert!((a - b).abs() < 1e-9, "eager {a} vs compiled {b}");
    }
    assert!(
        (qe - qc).abs() < 1e-9 && (qe - 0.2).abs() > 0.1,
        "{qe} {qc}"
    );
}

/// A guide site sampled before a sequential one keeps its draw in every run of that site (Pyro's
/// `poutine.queue` replays what the stopped run sampled): the loss is
/// `-Σ_a q(a) [log p(u) + log p(a) + log p(x | u, a) - log q(u) - log q(a)]` at the one `u` drawn
/// (recomputed here from the same seed).
#[test]
fn sequential_runs_share_the_draws_made_before_them() {
    clear_param_store();
    let x = Tensor::from(0.8f64);
    let mut model = || -> ppl::Result<()> {
        let u = ppl::sample("u", Normal::new(Tensor::from(0.0f64), 1.0)?, None)?;
        let a = ppl::sample("a", Bernoulli::new(Tensor::from(0.3f64))?, None)?;
        let _ = ppl::sample("x", Normal::new(&u + &a, 1.0)?, Some(x.shallow_clone()))?;
        Ok(())
    };
    let mut guide = || -> ppl::Result<()> {
        let _ = ppl::sample("u", Normal::new(Tensor::from(0.5f64), 1.0)?, None)?;
        let _ = ppl::sample_with(
            "a",
            Bernoulli::new(Tensor::from(0.6f64))?,
            marked(Enumerate::Sequential),
        )?;
        Ok(())
    };
    set_rng_seed(11);
    let out = TraceEnumElbo::default()
        .max_plate_nesting(0)
        .loss_and_surrogate(&mut model, &mut guide)
        .expect("loss");
    set_rng_seed(11);
    let u = Normal::new(Tensor::from(0.5f64), 1.0)
        .expect("normal")
        .rsample(&[])
        .expect("draw");
    let lq_u = ln_normal(&u, &Tensor::from(0.5f64));
    let lp_u = ln_normal(&u, &Tensor::from(0.0f64));
    let mut elbo = 0.0;
    for (a, q, p) in [(0.0, 0.4f64, 0.7f64), (1.0, 0.6, 0.3)] {
        let lik = ln_normal(&x, &(&u + a)).double_value(&[]);
        elbo += q * (lp_u.double_value(&[]) + p.ln() + lik - lq_u.double_value(&[]) - q.ln());
    }
    assert!(
        (out.loss + elbo).abs() < 1e-9,
        "loss {} vs {} at the one draw of u",
        out.loss,
        -elbo
    );
}
