//! Learnable flows (`ppl::transforms::{AffineAutoregressive, AffineCoupling, Planar, Radial,
//! Spline, SplineCoupling, Permute}`) and the MADE network: each flow's log-det-Jacobian against
//! autograd's Jacobian determinant, inverses, the cache, and the autoregressive masks.

use std::rc::Rc;

use ppl::nn::AutoRegressiveNN;
use ppl::prelude::*;
use ppl::transforms::{
    AffineAutoregressive, AffineCoupling, Permute, Planar, Radial, Spline, SplineCoupling,
    TransformModule, TransformModuleRef, TransformRef,
};

const D: i64 = 3;
const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

fn flows() -> Vec<(&'static str, TransformModuleRef)> {
    let fixed: TransformRef = Rc::new(Permute::new(vec![2, 0, 1]).expect("permutation"));
    vec![
        (
            "AffineAutoregressive",
            Rc::new(AffineAutoregressive::new("iaf", D, &[10]).expect("iaf")),
        ),
        (
            "AffineCoupling",
            Rc::new(AffineCoupling::new("coupling", D, 1, &[8]).expect("coupling")),
        ),
        ("Planar", Rc::new(Planar::new("planar", D))),
        ("Radial", Rc::new(Radial::new("radial", D))),
        ("Spline", Rc::new(Spline::new("spline", D))),
        (
            "SplineCoupling",
            Rc::new(SplineCoupling::new("spline_coupling", D, 1, &[8]).expect("sc")),
        ),
        ("Permute", Rc::new(fixed)),
    ]
}

/// Points inside and (for the splines, whose tails are the identity) outside `[-3, 3]`.
fn points() -> Tensor {
    Tensor::from_slice(&[
        0.3, -1.2, 2.0, //
        -2.5, 0.7, 0.1, //
        1.1, 1.9, -0.4, //
        3.5, -0.2, -3.7, //
    ])
    .reshape([4, D])
}

/// The Jacobian `∂f(x)/∂x` of one point, by one backward pass per output.
fn jacobian(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    let y = f(&x);
    let rows: Vec<Tensor> = (0..y.size()[0])
        .map(|i| {
            let g = Tensor::run_backward(&[y.get(i)], &[&x], true, false);
            g[0].shallow_clone()
        })
        .collect();
    Tensor::stack(&rows, 0)
}

/// `log |det ∂y/∂x|` of every flow equals autograd's, point by point, to 1e-9 in float64.
#[test]
fn log_det_jacobians_match_autograd() {
    clear_param_store();
    set_rng_seed(1);
    for (name, flow) in flows() {
        let t = flow.bind(OPTS).expect("bind");
        let x = points();
        let y = t.forward(&x).expect("forward");
        let ladj = t.log_abs_det_jacobian(&x, &y).expect("ladj");
        // Elementwise flows give one term per value; the others one per vector.
        let ladj = if t.domain_event_dim() == 0 {
            ladj.sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)
        } else {
            ladj
        };
        assert_eq!(ladj.size(), [4], "{name}");
        for b in 0..4 {
            let tb = flow.bind(OPTS).expect("bind");
            let j = jacobian(&|x: &Tensor| tb.forward(x).expect("forward"), &x.get(b));
            let want = j.det().abs().log().double_value(&[]);
            let got = ladj.double_value(&[b]);
            assert!(
                (got - want).abs() < 1e-9 * (1.0 + want.abs()),
                "{name}, point {b}: log|det J| {got}, autograd {want}"
            );
        }
    }
}

/// Where a flow has an inverse, a fresh binding (no cache) inverts the forward map to 1e-9;
/// the flows without one invert their own outputs (cached) and refuse anything else.
#[test]
fn inverses_and_the_cache() {
    clear_param_store();
    set_rng_seed(2);
    for (name, flow) in flows() {
        let x = points();
        let t = flow.bind(OPTS).expect("bind");
        let y = t.forward(&x).expect("forward");
        let cached = t.inverse(&y).expect("cached inverse");
        assert!(
            cached.allclose(&x, 1e-12, 1e-12, false),
            "{name}: the cached inverse"
        );
        let fresh = flow.bind(OPTS).expect("bind");
        let yy = &y * 1.0; // a different tensor: no cache hit
        match name {
            "Planar" | "Radial" => {
                let err = fresh.inverse(&yy).expect_err("no inverse").to_string();
                assert!(err.contains("no closed-form inverse"), "{name}: {err}");
            }
            _ => {
                let back = fresh.inverse(&yy).expect("inverse");
                let diff = (&back - &x).abs().max().double_value(&[]);
                assert!(diff < 1e-9, "{name}: inverse(forward(x)) is off by {diff}");
            }
        }
    }
}

/// MADE: output `i` of every param group depends on input `j` only when `j` comes before `i`
/// in the network's order, and the IAF's Jacobian is triangular in that order with
/// `exp(log_scale)` on the diagonal (so `log |det|` is the sum of log-scales).
#[test]
fn made_masks_are_autoregressive() {
    clear_param_store();
    set_rng_seed(3);
    let d = 5;
    let arn = AutoRegressiveNN::new("made", d, &[12, 12], 2)
        .expect("arn")
        .with_permutation(vec![3, 0, 4, 1, 2])
        .expect("permutation");
    let pos = |i: i64| {
        arn.permutation()
            .iter()
            .position(|&p| p == i)
            .expect("in order")
    };
    let net = arn.bind(OPTS).expect("bind");
    let x = Tensor::randn([d], OPTS);
    for group in 0..2 {
        let j = jacobian(
            &|x: &Tensor| net.forward(x).expect("forward")[group].shallow_clone(),
            &x,
        );
        for out in 0..d {
            for inp in 0..d {
                if pos(inp) >= pos(out) {
                    let v = j.double_value(&[out, inp]);
                    assert_eq!(v, 0.0, "group {group}: output {out} depends on input {inp}");
                }
            }
        }
    }
    // And every allowed dependency has a path through the masks: their product connects output
    // i to input j exactly when j comes before i (for both param groups).
    let masks = arn.masks();
    let mut reach: Vec<Vec<f64>> = masks[0].clone();
    for m in &masks[1..] {
        reach = m
            .iter()
            .map(|row| {
                (0..d as usize)
                    .map(|j| row.iter().zip(&reach).map(|(a, r)| a * r[j]).sum())
                    .collect()
            })
            .collect();
    }
    for (o, row) in reach.iter().enumerate() {
        let out = o as i64 % d;
        for (inp, &paths) in row.iter().enumerate() {
            assert_eq!(
                paths > 0.0,
                pos(inp as i64) < pos(out),
                "output {out} and input {inp}: {paths} paths"
            );
        }
    }

    let iaf = AffineAutoregressive::from_arn(arn.clone());
    let t = iaf.bind(OPTS).expect("bind");
    let j = jacobian(&|x: &Tensor| t.forward(x).expect("forward"), &x);
    for out in 0..d {
        for inp in 0..d {
            if pos(inp) > pos(out) {
                assert_eq!(j.double_value(&[out, inp]), 0.0);
            }
        }
    }
}

/// The flows' params are ordinary params: named after the flow, in the store after a bind,
/// and they get gradients through the transform.
#[test]
fn flow_params_live_in_the_param_store() {
    clear_param_store();
    set_rng_seed(4);
    let iaf = AffineAutoregressive::new("AutoIAFNormal.transforms.0", 2, &[7]).expect("iaf");
    let t = iaf.bind(OPTS).expect("bind");
    let x = Tensor::randn([2], OPTS);
    t.forward(&x).expect("forward").sum(Kind::Double).backward();
    let mut names: Vec<String> = with_param_store(|ps| ps.names().map(String::from).collect());
    names.sort();
    assert_eq!(
        names,
        [
            "AutoIAFNormal.transforms.0.arn.layers.0.bias",
            "AutoIAFNormal.transforms.0.arn.layers.0.weight",
            "AutoIAFNormal.transforms.0.arn.layers.1.bias",
            "AutoIAFNormal.transforms.0.arn.layers.1.weight",
        ]
    );
    let w = get_param("AutoIAFNormal.transforms.0.arn.layers.1.weight").expect("weight");
    assert_eq!(w.size(), [4, 7]);
    // Another flow under the same name with other sizes is an error naming the param.
    let other = AffineAutoregressive::new("AutoIAFNormal.transforms.0", 3, &[7]).expect("iaf");
    let err = other.bind(OPTS).expect_err("size clash").to_string();
    assert!(
        err.contains("AutoIAFNormal.transforms.0.arn.layers.0"),
        "{err}"
    );
}

/// BatchNorm: in training mode the inverse normalizes the batch (mean β = 0, variance
/// var/(var + ε) ≈ 1) and moves the running averages by the momentum (0.1); in evaluation mode
/// both directions use the running averages, invert each other, and the log-det-Jacobian is
/// autograd's.
#[test]
fn batch_norm_normalizes_and_keeps_running_averages() {
    use ppl::transforms::BatchNorm;
    clear_param_store();
    set_rng_seed(5);
    let bn = BatchNorm::new("bn", 2);
    let y = Tensor::randn([500, 2], OPTS) * Tensor::from_slice(&[3.0, 0.5])
        + Tensor::from_slice(&[1.0, -2.0]);
    let t = bn.bind(OPTS).expect("bind");
    let x = t.inverse(&y).expect("normalize");
    let m = x.mean_dim([0i64].as_slice(), false, Kind::Double);
    let v = x.var_dim([0i64].as_slice(), true, false);
    let (bm, bv) = (
        y.mean_dim([0i64].as_slice(), false, Kind::Double),
        y.var_dim([0i64].as_slice(), true, false),
    );
    assert!(m.abs().max().double_value(&[]) < 1e-9, "mean {m:?}");
    // γ = relu(1) + 1e-6 at the start.
    let g2 = (1.0f64 + 1e-6).powi(2);
    assert!(
        v.allclose(&(&bv / (&bv + 1e-5) * g2), 1e-9, 1e-12, false),
        "variance {v:?}"
    );
    let (mm, mv) = bn.moving_stats(OPTS).expect("stats");
    assert!(mm.allclose(&(&bm * 0.1), 1e-12, 1e-12, false));
    assert!(mv.allclose(&(&bv * 0.1 + 0.9), 1e-12, 1e-12, false));
    // A training batch of one row is an error saying what to do.
    let err = t
        .inverse(&y.narrow(0, 0, 1))
        .expect_err("one row")
        .to_string();
    assert!(err.contains("train(false)"), "{err}");

    bn.train(false);
    let t = bn.bind(OPTS).expect("bind");
    let back = t
        .forward(&t.inverse(&y).expect("inverse"))
        .expect("forward");
    assert!(back.allclose(&y, 1e-10, 1e-10, false));
    let x0 = Tensor::from_slice(&[0.3, -1.0]);
    let j = jacobian(&|x: &Tensor| t.forward(x).expect("forward"), &x0);
    let want = j.det().abs().log().double_value(&[]);
    let got = t
        .log_abs_det_jacobian(&x0, &t.forward(&x0).expect("forward"))
        .expect("ladj")
        .sum(Kind::Double)
        .double_value(&[]);
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}
