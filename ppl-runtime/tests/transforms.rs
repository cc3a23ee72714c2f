//! Transforms: `inverse(forward(x)) = x`, and `log_abs_det_jacobian` against the log-determinant
//! of the autograd Jacobian, on random inputs; the registries land in their constraints.

use std::rc::Rc;

use ppl::constraints::{self, Constraint};
use ppl::transforms::*;
use tch::{Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d < tol, "{what}: max |diff| = {d}\n{a}\n{b}");
}

/// The Jacobian of `f` (a vector of outputs per input vector) at `x`, row i = ∂out_i/∂x.
fn jacobian(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    let y = f(&x);
    let rows: Vec<Tensor> = (0..y.size()[0])
        .map(|i| Tensor::run_backward(&[y.get(i)], &[&x], true, false).remove(0))
        .collect();
    Tensor::stack(&rows, 0)
}

fn logdet(j: &Tensor) -> f64 {
    let (_, l) = Tensor::linalg_slogdet(j);
    l.double_value(&[])
}

#[test]
fn elementwise_roundtrip_and_derivative() {
    tch::manual_seed(0);
    let ts: Vec<(&str, TransformRef)> = vec![
        ("identity", Rc::new(IdentityTransform)),
        ("exp", Rc::new(ExpTransform)),
        ("sigmoid", Rc::new(SigmoidTransform)),
        ("affine", Rc::new(AffineTransform::new(1.0, -2.0))),
        ("softplus", Rc::new(SoftplusTransform)),
    ];
    let x = Tensor::randn([7], OPTS) * 3.0;
    for (name, t) in ts {
        let y = t.forward(&x).expect("forward");
        assert_close(&t.inverse(&y).expect("inverse"), &x, 1e-8, name);
        let xg = x.detach().set_requires_grad(true);
        let dy = Tensor::run_backward(
            &[t.forward(&xg).expect("f").sum(Kind::Double)],
            &[&xg],
            false,
            false,
        );
        let ladj = t.log_abs_det_jacobian(&x, &y).expect("ladj");
        assert_close(&ladj, &dy[0].abs().log(), 1e-8, name);
    }
}

#[test]
fn stick_breaking_logdet_matches_autograd() {
    tch::manual_seed(1);
    let t = StickBreakingTransform;
    let x = Tensor::randn([4], OPTS);
    let y = t.forward(&x).expect("forward");
    assert_close(
        &t.inverse(&y).expect("inverse"),
        &x,
        1e-8,
        "stick-breaking roundtrip",
    );
    // The simplex has K-1 free coordinates: the Jacobian of x -> y[..K-1] is square.
    let j = jacobian(&|x| t.forward(x).expect("f").narrow(0, 0, 4), &x);
    let ladj = t
        .log_abs_det_jacobian(&x, &y)
        .expect("ladj")
        .double_value(&[]);
    assert!((ladj - logdet(&j)).abs() < 1e-8, "{ladj} vs {}", logdet(&j));
}

/// The strictly-lower (`offset` -1) or lower (`0`) entries of a square matrix, row by row.
fn tril_entries(m: &Tensor, offset: i64) -> Tensor {
    let n = m.size()[0];
    let ij = Tensor::tril_indices(n, n, offset, (Kind::Int64, Device::Cpu));
    m.reshape([-1])
        .index_select(0, &(ij.get(0) * n + ij.get(1)))
}

#[test]
fn matrix_transforms_roundtrip_and_logdet() {
    tch::manual_seed(2);
    let cases: Vec<(&str, TransformRef, i64, i64)> = vec![
        ("lower_cholesky", Rc::new(LowerCholeskyTransform), 6, 0),
        (
            "positive_definite",
            Rc::new(PositiveDefiniteTransform),
            6,
            0,
        ),
        ("corr_cholesky", Rc::new(CorrCholeskyTransform), 6, -1),
    ];
    for (name, t, m, offset) in cases {
        for _ in 0..3 {
            let x = Tensor::randn([m], OPTS);
            let y = t.forward(&x).expect("forward");
            assert_close(&t.inverse(&y).expect("inverse"), &x, 1e-8, name);
            assert!(
                bool::try_from(t.codomain().check(&y).expect("check")).expect("bool"),
                "{name}: {y}"
            );
            let j = jacobian(&|x| tril_entries(&t.forward(x).expect("f"), offset), &x);
            let ladj = t
                .log_abs_det_jacobian(&x, &y)
                .expect("ladj")
                .double_value(&[]);
            assert!(
                (ladj - logdet(&j)).abs() < 1e-8,
                "{name}: {ladj} vs {}",
                logdet(&j)
            );
        }
        // Batched: [2, m] -> [2, n, n], log-det per batch member.
        let x = Tensor::randn([2, m], OPTS);
        let y = t.forward(&x).expect("forward");
        assert_eq!(y.size(), t.forward_shape(&[2, m]), "{name}");
        assert_eq!(t.inverse_shape(&y.size()), vec![2, m], "{name}");
        assert_eq!(
            t.log_abs_det_jacobian(&x, &y).expect("ladj").size(),
            vec![2],
            "{name}"
        );
    }
}

#[test]
fn registries_land_in_their_constraints() {
    tch::manual_seed(3);
    let cs: Vec<(Constraint, Vec<i64>)> = vec![
        (constraints::real(), vec![5]),
        (constraints::positive(), vec![5]),
        (constraints::unit_interval(), vec![5]),
        (constraints::interval(-1.0, 3.0), vec![5]),
        (constraints::greater_than(2.0), vec![5]),
        (constraints::less_than(-2.0), vec![5]),
        (constraints::simplex(), vec![2, 4]),
        (constraints::lower_cholesky(), vec![2, 6]),
        (constraints::positive_definite(), vec![2, 6]),
        (constraints::corr_cholesky(), vec![2, 6]),
    ];
    for (c, shape) in cs {
        for bijective in [true, false] {
            let t = if bijective {
                biject_to(&c)
            } else {
                transform_to(&c)
            }
            .expect("registered");
            let x = Tensor::randn(shape.as_slice(), OPTS);
            let y = t.forward(&x).expect("forward");
            let ok = c.check(&y).expect("check").all();
            assert!(
                bool::try_from(ok).expect("bool"),
                "{c} (bijective {bijective}): {y}"
            );
            let back = t
                .forward(&t.inverse(&y).expect("inverse"))
                .expect("forward");
            assert_close(&back, &y, 1e-8, &format!("{c} roundtrip"));
        }
    }
    // They differ for the simplex, as in Pyro: softmax keeps K coordinates.
    let x = Tensor::randn([4], OPTS);
    assert_eq!(
        transform_to(&constraints::simplex())
            .expect("t")
            .inverse(&x.softmax(-1, Kind::Double))
            .expect("inv")
            .size(),
        vec![4]
    );
    assert_eq!(
        biject_to(&constraints::simplex())
            .expect("t")
            .inverse(&x.softmax(-1, Kind::Double))
            .expect("inv")
            .size(),
        vec![3]
    );
}

#[test]
fn transformed_distribution_through_a_matrix_transform() {
    use ppl::distributions::{Distribution, DistributionExt, Normal, TransformedDistribution};
    tch::manual_seed(4);
    // A standard normal on R^6 pushed onto 3x3 lower-Cholesky factors.
    let base = Normal::new(Tensor::zeros([6], OPTS), 1.0)
        .expect("base")
        .to_event(1)
        .expect("event");
    let t: TransformRef = Rc::new(LowerCholeskyTransform);
    let d = TransformedDistribution::new(base.boxed(), vec![t.clone()]).expect("d");
    assert_eq!(
        (d.batch_shape(), d.event_shape()),
        (&[][..], &[3i64, 3][..])
    );
    assert_eq!(d.support(), Constraint::LowerCholesky);
    let y = d.sample(&[5]).expect("sample");
    assert_eq!(y.size(), vec![5, 3, 3]);
    let x = t.inverse(&y).expect("inverse");
    let base = Normal::new(Tensor::zeros([6], OPTS), 1.0)
        .expect("base")
        .to_event(1)
        .expect("event");
    let want = base.log_prob(&x).expect("lp") - t.log_abs_det_jacobian(&x, &y).expect("ladj");
    assert_close(
        &d.log_prob(&y).expect("lp"),
        &want,
        1e-12,
        "change of variables",
    );
}
