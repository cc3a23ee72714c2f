//! Reparameterized sampling: gradients of Monte Carlo expectations through `rsample` against
//! closed forms.
//!
//! With `N` per-draw gradients `g_i = ∂x_i/∂θ` (one parameter copy per draw), their mean
//! estimates `∂E[x]/∂θ` with standard error `sd(g) / √N`; each check allows 5 standard errors
//! (a chance failure probability of 6e-7 per check under a normal approximation; fixed seeds
//! make the test deterministic).

use ppl::distributions::*;
use tch::{Device, Kind, Tensor};

const N: i64 = 20_000;
const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

/// Per-draw gradients `∂x_i/∂θ` from a batch of `N` copies of a parameter (each draw depends on
/// its own copy only), so their mean estimates `∂E[x]/∂θ` with standard error `sd / √N`.
fn leaf(v: f64) -> Tensor {
    Tensor::full([N], v, OPTS).set_requires_grad(true)
}

fn grads(out: &Tensor, params: &[&Tensor]) -> Vec<Tensor> {
    Tensor::run_backward(&[out.sum(Kind::Double)], params, false, false)
}

fn check_grad(name: &str, g: &Tensor, expected: f64) {
    let (m, se) = (
        g.mean(Kind::Double).double_value(&[]),
        g.std(true).double_value(&[]) / (N as f64).sqrt(),
    );
    assert!(
        (m - expected).abs() <= 5.0 * se + 1e-12,
        "{name}: {m} vs {expected} (se {se})"
    );
}

#[test]
fn rsample_gradients_match_closed_forms() {
    ppl::set_rng_seed(0);
    // Normal: ∂E[x]/∂loc = 1, ∂E[x²]/∂scale = 2 scale.
    let (loc, scale) = (leaf(0.5), leaf(1.5));
    let x = Normal::new(&loc, &scale)
        .expect("d")
        .rsample(&[])
        .expect("rsample");
    let g = grads(&x.square(), &[&loc, &scale]);
    check_grad("Normal d/dloc E[x²]", &g[0], 2.0 * 0.5);
    check_grad("Normal d/dscale E[x²]", &g[1], 2.0 * 1.5);

    // Gamma: E[x] = α/β, so ∂/∂α = 1/β and ∂/∂β = -α/β²; small α exercises the
    // standard-gamma gradient's hard regime.
    for a in [0.3, 2.5] {
        let (alpha, rate) = (leaf(a), leaf(2.0));
        let x = Gamma::new(&alpha, &rate)
            .expect("d")
            .rsample(&[])
            .expect("rsample");
        let g = grads(&x, &[&alpha, &rate]);
        check_grad("Gamma d/dconcentration", &g[0], 1.0 / 2.0);
        check_grad("Gamma d/drate", &g[1], -a / 4.0);
    }

    // Beta: E[x] = a / (a + b).
    let (a, b) = (leaf(0.7), leaf(2.0));
    let x = Beta::new(&a, &b).expect("d").rsample(&[]).expect("rsample");
    let g = grads(&x, &[&a, &b]);
    check_grad("Beta d/da", &g[0], 2.0 / 2.7f64.powi(2));
    check_grad("Beta d/db", &g[1], -0.7 / 2.7f64.powi(2));

    // Dirichlet: E[x_0] = α_0 / α_sum, so ∂/∂α_0 = (α_sum - α_0)/α_sum², ∂/∂α_1 = -α_0/α_sum².
    let conc = Tensor::from_slice(&[1.5, 0.5, 2.0])
        .to_kind(Kind::Double)
        .expand([N, 3], false)
        .contiguous()
        .set_requires_grad(true);
    let x = Dirichlet::new(&conc)
        .expect("d")
        .rsample(&[])
        .expect("rsample");
    let g = grads(&x.select(-1, 0), &[&conc]).remove(0);
    check_grad("Dirichlet d/dα0", &g.select(-1, 0), 2.5 / 16.0);
    check_grad("Dirichlet d/dα1", &g.select(-1, 1), -1.5 / 16.0);

    // MultivariateNormal through L: E[|x|²] = tr(L Lᵀ) + |μ|², so ∂/∂L = 2L.
    let l0 = Tensor::from_slice(&[1.0, 0.0, 0.5, 2.0])
        .to_kind(Kind::Double)
        .reshape([2, 2]);
    let l = l0
        .expand([N, 2, 2], false)
        .contiguous()
        .set_requires_grad(true);
    let mu = Tensor::zeros([2], OPTS);
    let x = MultivariateNormal::from_scale_tril(&mu, &l)
        .expect("d")
        .rsample(&[])
        .expect("rsample");
    let g = grads(&x.square(), &[&l]).remove(0);
    for (i, j) in [(0, 0), (1, 0), (1, 1)] {
        let e = 2.0 * l0.double_value(&[i, j]);
        check_grad("MVN d/dL", &g.select(-2, i).select(-1, j), e);
    }
}

/// The straight-through relaxed distributions draw hard values (`{0, 1}`, one-hot) whose
/// gradient is the relaxed draw's, and score a draw by its relaxed value (Pyro's
/// `_unquantize`); the plain forms draw inside the open interval / simplex.
#[test]
fn straight_through_relaxed_draws() {
    tch::manual_seed(0);
    let logits = Tensor::from_slice(&[-1.0f64, 0.5, 2.0]).set_requires_grad(true);
    let plain = RelaxedBernoulli::from_logits(0.5, &logits).expect("relaxed");
    let soft = plain.rsample(&[5]).expect("draw");
    assert!(soft.gt(0.0).all().int64_value(&[]) == 1 && soft.lt(1.0).all().int64_value(&[]) == 1);

    tch::manual_seed(1);
    let st = RelaxedBernoulli::from_logits(0.5, &logits)
        .expect("relaxed")
        .straight_through();
    let hard = st.rsample(&[5]).expect("draw");
    let rounded = hard.round();
    assert!(
        hard.equal(&rounded),
        "straight-through draws are 0 or 1: {hard:?}"
    );
    // Same seed, same relaxed draw: log_prob of the hard draw is that of the relaxed one.
    tch::manual_seed(1);
    let soft = plain.rsample(&[5]).expect("draw");
    let lp_hard = st.log_prob(&hard).expect("lp");
    let lp_soft = plain.log_prob(&soft).expect("lp");
    assert!(lp_hard.allclose(&lp_soft, 1e-12, 1e-12, false));
    // The gradient is the relaxed draw's.
    let g_hard = Tensor::run_backward(&[hard.sum(Kind::Double)], &[&logits], false, false);
    let g_soft = Tensor::run_backward(&[soft.sum(Kind::Double)], &[&logits], false, false);
    assert!(g_hard[0].allclose(&g_soft[0], 1e-12, 1e-12, false));
    assert!(g_hard[0].abs().sum(Kind::Double).double_value(&[]) > 0.0);

    let probs = Tensor::from_slice(&[0.2f64, 0.3, 0.5]);
    let cat = RelaxedOneHotCategorical::new(0.3, &probs)
        .expect("relaxed")
        .straight_through();
    let one_hot = cat.rsample(&[4]).expect("draw");
    assert_eq!(one_hot.size(), [4, 3]);
    let sums = one_hot.sum_dim_intlist([-1i64].as_slice(), false, Kind::Double);
    assert!(sums.allclose(
        &Tensor::ones([4], (Kind::Double, Device::Cpu)),
        1e-12,
        1e-12,
        false
    ));
    assert!(
        one_hot
            .eq(0.0)
            .logical_or(&one_hot.eq(1.0))
            .all()
            .int64_value(&[])
            == 1
    );
    assert!(
        cat.log_prob(&one_hot)
            .expect("lp")
            .isfinite()
            .all()
            .int64_value(&[])
            == 1
    );
}

/// Issue 17's reparameterized families: the per-draw gradients of `x` through `rsample` average
/// to the gradient of the closed-form mean (taken by autograd), each parameter within 5
/// standard errors.
#[test]
fn rsample_gradients_of_new_families_match_their_means() {
    type Build = fn(&[Tensor]) -> ppl::Result<DistRef>;
    let cases: Vec<(&str, Vec<f64>, Build)> = vec![
        ("Pareto", vec![1.5, 4.0], |p| {
            Ok(Pareto::new(&p[0], &p[1])?.boxed())
        }),
        ("Logistic", vec![0.5, 2.0], |p| {
            Ok(Logistic::new(&p[0], &p[1])?.boxed())
        }),
        ("SoftLaplace", vec![0.5, 2.0], |p| {
            Ok(SoftLaplace::new(&p[0], &p[1])?.boxed())
        }),
        ("AsymmetricLaplace", vec![0.5, 2.0, 1.5], |p| {
            Ok(AsymmetricLaplace::new(&p[0], &p[1], &p[2])?.boxed())
        }),
        ("SkewLogistic", vec![0.5, 2.0, 1.5], |p| {
            Ok(SkewLogistic::new(&p[0], &p[1], &p[2])?.boxed())
        }),
        ("LogUniform", vec![0.5, 4.0], |p| {
            Ok(LogUniform::new(&p[0], &p[1])?.boxed())
        }),
        ("Kumaraswamy", vec![2.0, 3.0], |p| {
            Ok(Kumaraswamy::new(&p[0], &p[1])?.boxed())
        }),
        ("FisherSnedecor", vec![4.0, 12.0], |p| {
            Ok(FisherSnedecor::new(&p[0], &p[1])?.boxed())
        }),
        ("TruncatedNormal", vec![0.5, 1.5, -1.0, 2.0], |p| {
            Ok(TruncatedNormal::new(&p[0], &p[1], &p[2], &p[3])?.boxed())
        }),
        ("ContinuousBernoulli", vec![0.3], |p| {
            Ok(ContinuousBernoulli::new(&p[0])?.boxed())
        }),
    ];
    ppl::set_rng_seed(5);
    for (name, values, build) in cases {
        let leaves: Vec<Tensor> = values.iter().map(|v| leaf(*v)).collect();
        let d = build(&leaves).expect("d");
        assert!(d.has_rsample(), "{name}");
        let x = d.rsample(&[]).expect("rsample");
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let g = grads(&x, &refs);
        // The closed form's gradient, per parameter copy (all copies equal).
        let scalars: Vec<Tensor> = values
            .iter()
            .map(|v| Tensor::from(*v).set_requires_grad(true))
            .collect();
        let m = build(&scalars).expect("d").mean().expect("mean");
        let srefs: Vec<&Tensor> = scalars.iter().collect();
        let want = Tensor::run_backward(&[m], &srefs, false, true);
        for (i, w) in want.iter().enumerate() {
            let w = if w.defined() {
                w.double_value(&[])
            } else {
                0.0
            };
            check_grad(&format!("{name} d/dparam{i} E[x]"), &g[i], w);
        }
    }
}
