//! Each op the JIT compiles, one at a time, against libtorch: the value and the gradient of
//! `Σ w ⊙ op(x)` (fixed weights `w`, so every output element's vector-Jacobian product counts) at
//! float64 inputs. Forward and backward are computed independently (host program vs libtorch's
//! kernels and autograd), so agreement to 1e-9 relative is a check of both.

use ppl::jit::{trace_text, Program};
use tch::{Device, Kind, Tensor};

fn input(shape: &[i64], seed: i64, positive: bool) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let x = ((i * 7 + seed * 13) as f64 * 0.61).sin() * 1.3;
            if positive {
                x.abs() + 0.4
            } else {
                x
            }
        })
        .collect();
    Tensor::from_slice(&v).reshape(shape)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.reshape([-1])).expect("values")
}

/// Compares the compiled and libtorch's `Σ w ⊙ op(inputs)` and its gradient.
fn check(name: &str, inputs: &[Tensor], op: impl Fn(&[Tensor]) -> Tensor) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().to_kind(Kind::Double).set_requires_grad(true))
        .collect();
    let shape = op(&leaves).size();
    let w = input(&shape, 99, false);
    let f = |xs: &[Tensor]| (op(xs) * &w).sum(Kind::Double);
    let (text, outs) = trace_text(&leaves, |xs| Ok(vec![f(xs)])).expect("trace");
    let expected = outs[0].double_value(&[]);
    let grads = Tensor::run_backward(&[&outs[0]], &leaves, false, false);
    let shapes: Vec<Vec<usize>> = leaves
        .iter()
        .map(|t| t.size().iter().map(|&d| d as usize).collect())
        .collect();
    let program = Program::compile(&text, &shapes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let data: Vec<Vec<f64>> = leaves.iter().map(values).collect();
    let refs: Vec<&[f64]> = data.iter().map(|v| v.as_slice()).collect();
    let (value, grad) = program.value_and_grad(&refs).expect("run");
    let tol = |x: f64| 1e-9 * (1.0 + x.abs());
    assert!(
        (value - expected).abs() <= tol(expected),
        "{name}: value {value} against {expected}"
    );
    for (k, (g, e)) in grad.iter().zip(&grads).enumerate() {
        let e = values(e);
        for (i, (a, b)) in g.iter().zip(&e).enumerate() {
            assert!(
                (a - b).abs() <= tol(*b),
                "{name}: d/dx{k}[{i}] {a} against {b}"
            );
        }
    }
}

#[test]
fn elementwise_ops() {
    let x = input(&[2, 3], 1, false);
    let p = input(&[2, 3], 2, true);
    let y = input(&[3], 3, false);
    check("sin cos", &[x.shallow_clone()], |a| a[0].sin() + a[0].cos());
    check("sinh cosh atan", &[x.shallow_clone()], |a| {
        a[0].sinh() * a[0].cosh() + a[0].atan()
    });
    check("erf erfc", &[x.shallow_clone()], |a| {
        a[0].erf() - a[0].erfc() * 0.3
    });
    check("tanh sigmoid", &[x.shallow_clone()], |a| {
        a[0].tanh() * a[0].sigmoid()
    });
    check("softplus log_sigmoid", &[x.shallow_clone()], |a| {
        a[0].softplus() + a[0].log_sigmoid()
    });
    check("exp expm1 log1p", &[x.shallow_clone()], |a| {
        a[0].exp() + a[0].expm1() * a[0].log1p().nan_to_num(0.0, None, None)
    });
    check("sqrt rsqrt reciprocal log", &[p.shallow_clone()], |a| {
        a[0].sqrt() + a[0].rsqrt() + a[0].reciprocal() * a[0].log()
    });
    check("lgamma digamma", &[p.shallow_clone()], |a| {
        a[0].lgamma() + a[0].digamma()
    });
    check("pow", &[p.shallow_clone(), x.shallow_clone()], |a| {
        a[0].pow(&a[1]) + a[0].pow_tensor_scalar(2.5)
    });
    check("xlogy", &[x.shallow_clone(), p.shallow_clone()], |a| {
        a[0].xlogy(&a[1])
    });
    check(
        "maximum minimum",
        &[x.shallow_clone(), (&x * 0.5 + 0.1)],
        |a| a[0].maximum(&a[1]) - a[0].minimum(&a[1]) * 2.0,
    );
    check("clamp relu abs", &[x.shallow_clone()], |a| {
        a[0].clamp(-0.5, 0.8) + a[0].relu() + a[0].abs()
    });
    check("where", &[x.shallow_clone(), p.shallow_clone()], |a| {
        a[0].where_self(&a[0].gt(0.2), &a[1])
    });
    check(
        "broadcast div sub",
        &[x.shallow_clone(), y.shallow_clone()],
        |a| (&a[0] - &a[1]) / (a[1].square() + 1.0),
    );
    check("i0e i1e", &[x.shallow_clone()], |a| {
        a[0].special_i0e() + a[0].special_i1e()
    });
    check("logit", &[p.shallow_clone() / 3.0], |a| a[0].logit(None));
}

#[test]
fn reductions_and_shapes() {
    let x = input(&[2, 3, 4], 4, false);
    let x2 = input(&[3, 4], 5, false);
    check("sum dims keepdim", &[x.shallow_clone()], |a| {
        a[0].sum_dim_intlist([1].as_slice(), true, Kind::Double)
    });
    check("mean", &[x.shallow_clone()], |a| {
        a[0].mean_dim([0, 2].as_slice(), false, Kind::Double)
    });
    check("logsumexp", &[x.shallow_clone()], |a| {
        a[0].logsumexp([2].as_slice(), false)
    });
    check("amax amin", &[x.shallow_clone()], |a| {
        a[0].amax([1].as_slice(), false) + a[0].amin([1].as_slice(), false)
    });
    check("softmax", &[x.shallow_clone()], |a| {
        a[0].softmax(1, Kind::Double)
    });
    check("log_softmax", &[x.shallow_clone()], |a| {
        a[0].log_softmax(-1, Kind::Double)
    });
    check("cumsum cumprod", &[x.shallow_clone()], |a| {
        a[0].cumsum(2, Kind::Double) + a[0].cumprod(1, Kind::Double)
    });
    check("transpose permute-like", &[x.shallow_clone()], |a| {
        a[0].transpose(0, 2).reshape([4, 6])
    });
    check("permute", &[x.shallow_clone()], |a| {
        a[0].permute([2, 0, 1]).reshape([4, 6]) * a[0].permute([1, 2, 0]).reshape([6, 4]).tr()
    });
    check("gather", &[x.shallow_clone()], |a| {
        let idx = Tensor::from_slice(&[2i64, 0, 1, 1])
            .view([1, 1, 4])
            .expand([2, 1, 4], false);
        a[0].gather(1, &idx, false)
    });
    check("squeeze unsqueeze flatten", &[x.shallow_clone()], |a| {
        a[0].unsqueeze(1).flatten(0, 2).squeeze()
    });
    check("select narrow slice", &[x.shallow_clone()], |a| {
        a[0].select(1, 2)
            + a[0].narrow(1, 0, 1).squeeze_dim(1)
            + a[0]
                .slice(2, 1, 4, 2)
                .sum_dim_intlist([1, 2].as_slice(), false, Kind::Double)
                .unsqueeze(-1)
    });
    check("cat stack", &[x2.shallow_clone()], |a| {
        Tensor::cat(&[a[0].shallow_clone(), a[0].exp()], 0)
            + Tensor::stack(&[a[0].shallow_clone(), a[0].sin()], 0).reshape([6, 4])
    });
    check("expand", &[input(&[3, 1], 6, false)], |a| {
        a[0].expand([2, 3, 5], false)
    });
    check("gather index_select", &[x2.shallow_clone()], |a| {
        let idx = Tensor::from_slice(&[2i64, 0, 3, 1, 1, 0, 2, 2, 3, 0, 1, 2]).reshape([3, 4]);
        a[0].gather(1, &idx, false) + a[0].index_select(1, &Tensor::from_slice(&[3i64, 3, 0, 1]))
    });
    check("pad", &[x2.shallow_clone()], |a| {
        a[0].constant_pad_nd([1, 2, 0, 1].as_slice())
    });
    check(
        "tril triu diag_embed diagonal",
        &[x2.narrow(1, 0, 3)],
        |a| a[0].tril(0) - a[0].triu(1) + a[0].diagonal(0, 0, 1).diag_embed(0, -2, -1),
    );
    check(
        "matmul mv dot",
        &[x2.shallow_clone(), input(&[4], 7, false)],
        |a| a[0].matmul(&a[1]) + a[0].mv(&a[1]) * a[1].dot(&a[1]),
    );
    check(
        "matmul mm",
        &[x2.shallow_clone(), input(&[4, 2], 8, false)],
        |a| a[0].matmul(&a[1]),
    );
    check("bce with logits", &[x2.shallow_clone()], |a| {
        a[0].binary_cross_entropy_with_logits::<Tensor>(
            &x2.sigmoid(),
            None,
            None,
            tch::Reduction::None,
        )
    });
}

#[test]
fn linear_algebra() {
    let m = input(&[3, 3], 9, false);
    let spd = || {
        let b = m.to_kind(Kind::Double);
        b.matmul(&b.transpose(0, 1)) + Tensor::eye(3, (Kind::Double, Device::Cpu)) * 2.0
    };
    let a = spd();
    check("cholesky", &[a], |x| {
        // Symmetrize inside, as a model would, so both triangles carry gradient.
        let s = (&x[0] + x[0].transpose(0, 1)) * 0.5;
        s.linalg_cholesky(false)
    });
    let l = spd().linalg_cholesky(false);
    check("solve_triangular", &[l, input(&[3, 2], 10, false)], |x| {
        x[0].tril(0)
            .linalg_solve_triangular(&x[1], false, true, false)
    });
}

/// `tch::nn::Linear` records `aten::linear`; `addmm` is `s + A B`. Both compile as compositions
/// of transpose, matmul and add.
#[test]
fn linear_and_addmm() {
    let x = input(&[4, 3], 1, false);
    let w = input(&[2, 3], 2, false);
    let b = input(&[2], 3, false);
    check(
        "linear",
        &[x.shallow_clone(), w.shallow_clone(), b.shallow_clone()],
        |a| a[0].linear(&a[1], Some(&a[2])),
    );
    check(
        "linear without bias",
        &[x.shallow_clone(), w.shallow_clone()],
        |a| a[0].linear::<&Tensor>(&a[1], None),
    );
    let s = input(&[4, 2], 4, false);
    let m2 = input(&[3, 2], 5, false);
    check(
        "addmm",
        &[s.shallow_clone(), x.shallow_clone(), m2.shallow_clone()],
        |a| a[0].addmm(&a[1], &a[2]),
    );
}

/// Ops whose arguments (offsets, dims, fill values, bounds) are decoded once at compile time.
#[test]
fn ops_with_decoded_arguments() {
    let m = input(&[3, 3], 1, false);
    let b = input(&[2, 3, 3], 2, false);
    let v = input(&[3], 3, false);
    let p = input(&[2, 3], 4, true);
    check("diagonal", &[b.shallow_clone()], |a| {
        a[0].diagonal(1, 1, 2)
            + a[0]
                .diagonal(0, -1, -2)
                .sum_dim_intlist(-1, true, Kind::Double)
    });
    check("tril triu", &[m.shallow_clone()], |a| {
        a[0].tril(-1) * 2.0 + a[0].triu(1)
    });
    check("diag_embed", &[v.shallow_clone()], |a| {
        a[0].diag_embed(1, -2, -1)
    });
    let idx = Tensor::from_slice(&[2i64, 0]);
    check(
        "index_copy",
        &[m.shallow_clone(), input(&[3, 2], 5, false)],
        |a| a[0].index_copy(1, &idx, &a[1]),
    );
    check(
        "masked_fill clamp_min clamp_max",
        &[m.shallow_clone()],
        |a| a[0].masked_fill(&a[0].gt(0.3), 0.25) + a[0].clamp_min(-0.2) * a[0].clamp_max(0.4),
    );
    check("nan_to_num mvlgamma", &[p.shallow_clone() + 1.5], |a| {
        a[0].log().nan_to_num(0.0, Some(1.0), Some(-1.0)) + a[0].mvlgamma(2)
    });
}
