//! Random draws for compiled programs, and the implicit reparameterization gradient of a
//! standard gamma draw with respect to its concentration.

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Gamma, Poisson, StandardNormal};

use super::array::Arr;
use super::graph::*;
use super::ops::accumulate;
use super::special::{gamma_p, lgamma};
use crate::error::Result;

/// The random ops the compiler draws fresh values for. The C++ tracer records the draws of
/// exactly these (the list is passed to it when tracing begins).
pub(super) const RANDOM_OPS: &[(&str, RandomOp)] = &[
    ("randn", RandomOp::Randn),
    ("randn_like", RandomOp::Randn),
    ("rand", RandomOp::Rand),
    ("rand_like", RandomOp::Rand),
    ("randperm", RandomOp::Randperm),
    ("_standard_gamma", RandomOp::StandardGamma),
    ("bernoulli", RandomOp::Bernoulli),
    ("poisson", RandomOp::Poisson),
    ("exponential_", RandomOp::Exponential),
    ("uniform_", RandomOp::Uniform),
];

/// A random op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum RandomOp {
    Randn,
    Rand,
    Randperm,
    StandardGamma,
    Bernoulli,
    Poisson,
    /// `x.exponential_(lambd)`: Exp(lambd) draws of `x`'s shape.
    Exponential,
    /// `x.uniform_(from, to)`: uniform draws of `x`'s shape.
    Uniform,
}

impl RandomOp {
    /// The random op an aten name (without `aten::`) stands for.
    pub(super) fn of(name: &str) -> Option<RandomOp> {
        RANDOM_OPS.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
    }
}

/// `n` standard normal draws.
pub fn randn(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// `n` uniform draws in [0, 1).
pub fn rand(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random::<f64>()).collect()
}

/// A uniformly random permutation of `0..n` (Fisher-Yates).
pub fn randperm(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let mut p: Vec<f64> = (0..n).map(|i| i as f64).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        p.swap(i, j);
    }
    p
}

/// One Gamma(`alpha`, 1) draw (0 for a non-positive or NaN concentration, as NaN would spread).
pub fn standard_gamma(rng: &mut StdRng, alpha: f64) -> f64 {
    match Gamma::new(alpha, 1.0) {
        Ok(g) => g.sample(rng).max(f64::MIN_POSITIVE),
        Err(_) => f64::NAN,
    }
}

/// One Poisson(`rate`) draw.
pub fn poisson(rng: &mut StdRng, rate: f64) -> f64 {
    if rate <= 0.0 {
        return 0.0;
    }
    match Poisson::new(rate) {
        Ok(p) => p.sample(rng),
        Err(_) => f64::NAN,
    }
}

/// `dx/dα` for a draw `x ~ Gamma(α, 1)` held at a fixed quantile (implicit reparameterization,
/// Figurnov et al. 2018): `-(∂P(α, x)/∂α) / p(x; α)`, with `∂P/∂α` by a central difference of
/// [`gamma_p`] (step 1e-5 α: truncation and rounding errors near 1e-9 relative).
pub fn standard_gamma_grad(x: f64, alpha: f64) -> f64 {
    if !(x > 0.0 && alpha > 0.0) {
        return 0.0;
    }
    let h = 1e-5 * alpha.max(1e-3);
    let dp = (gamma_p(alpha + h, x) - gamma_p(alpha - h, x)) / (2.0 * h);
    let log_density = (alpha - 1.0) * x.ln() - x - lgamma(alpha);
    let g = -dp / log_density.exp();
    if g.is_finite() {
        g
    } else {
        0.0
    }
}

/// Fresh values of a random op.
pub(super) fn draw(r: RandomOp, node: &Node, env: &Env, rng: &mut StdRng) -> Result<Val> {
    let v = |i: usize| -> &Val { env.get(node.ins[i]) };
    let name = node.kind.as_str();
    // The shape of a factory (`randn(size, ...)`) or of its `_like` argument.
    let shape_of = |i: usize| -> Result<Vec<usize>> {
        Ok(if name.ends_with("_like") {
            num(v(i))?.shape.clone()
        } else {
            ints(v(i))?.iter().map(|&d| d.max(0) as usize).collect()
        })
    };
    Ok(Val::T(match r {
        RandomOp::Randn | RandomOp::Rand => {
            let shape = shape_of(0)?;
            let n = shape.iter().product();
            let data = if r == RandomOp::Randn {
                randn(rng, n)
            } else {
                rand(rng, n)
            };
            Arr { shape, data }
        }
        RandomOp::Randperm => {
            let n = int(v(0))?.max(0) as usize;
            Arr {
                shape: vec![n],
                data: randperm(rng, n),
            }
        }
        RandomOp::Exponential | RandomOp::Uniform => {
            let x = arr(v(0))?;
            let u = rand(rng, x.numel());
            let data = if r == RandomOp::Exponential {
                let rate = float(v(1))?;
                u.into_iter().map(|u| -(-u).ln_1p() / rate).collect()
            } else {
                let (lo, hi) = (float(v(1))?, float(v(2))?);
                u.into_iter().map(|u| lo + (hi - lo) * u).collect()
            };
            Arr {
                shape: x.shape.clone(),
                data,
            }
        }
        RandomOp::StandardGamma | RandomOp::Poisson | RandomOp::Bernoulli => {
            use rand::Rng;
            let x = arr(v(0))?;
            // bernoulli(probs) or bernoulli(self, p: float).
            let p_const = match node.ins.get(1).map(|&s| env.get(s)) {
                Some(Val::Float(p)) => Some(*p),
                _ => None,
            };
            let data = x
                .data
                .iter()
                .map(|&a| match r {
                    RandomOp::StandardGamma => standard_gamma(rng, a),
                    RandomOp::Poisson => poisson(rng, a),
                    _ => f64::from(u8::from(rng.random::<f64>() < p_const.unwrap_or(a))),
                })
                .collect();
            Arr {
                shape: x.shape.clone(),
                data,
            }
        }
    }))
}

/// Random ops are never folded: the program draws them when it runs (see [`draw`]).
pub(super) fn forward(_op: RandomOp, node: &Node, _env: &Env) -> Result<Val> {
    Err(bad(format!(
        "`{}`: a random op cannot be folded",
        node.kind
    )))
}

/// The reparameterized gradient of a gamma draw with respect to its concentration (the others'
/// draws carry no gradient).
pub(super) fn backward(
    op: RandomOp,
    node: &Node,
    env: &Env,
    g: Arr,
    grads: &mut [Option<Arr>],
) -> Result<()> {
    if op != RandomOp::StandardGamma || !env.live[node.ins[0]] {
        return Ok(());
    }
    let alpha = arr(env.get(node.ins[0]))?;
    let x = arr(env.get(node.out))?;
    let mut g = g;
    for (gv, (&a, &xv)) in g.data.iter_mut().zip(alpha.data.iter().zip(&x.data)) {
        *gv *= standard_gamma_grad(xv, a);
    }
    g.shape = alpha.shape.clone();
    accumulate(grads, node.ins[0], g);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_gamma_and_its_quantile_derivative() {
        // P(1, x) = 1 - e^-x; P(3, x) = 1 - e^-x (1 + x + x²/2).
        assert!((gamma_p(1.0, 0.7) - (1.0 - (-0.7f64).exp())).abs() < 1e-14);
        assert!((gamma_p(3.0, 2.0) - (1.0 - 5.0 * (-2.0f64).exp())).abs() < 1e-14);
        assert!((gamma_p(3.0, 9.0) - (1.0 - 50.5 * (-9.0f64).exp())).abs() < 1e-14);
        // For α = 1 the quantile is x = -ln(1 - u), independent of α's effect through P(1, x)
        // only via e^-x: dx/dα = -(∂P/∂α) e^x. Check against a finite difference of the
        // quantile itself, found by bisection.
        let quantile = |a: f64, u: f64| {
            let (mut lo, mut hi) = (0.0, 100.0);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if gamma_p(a, mid) < u {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        for &(a, u) in &[(1.0, 0.3), (2.5, 0.5), (15.0, 0.9), (0.4, 0.2)] {
            let x = quantile(a, u);
            let h = 1e-4 * a;
            let fd = (quantile(a + h, u) - quantile(a - h, u)) / (2.0 * h);
            let g = standard_gamma_grad(x, a);
            assert!(
                (g - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                "α {a}: {g} vs {fd}"
            );
        }
    }
}
