//! Learnable transforms: normalizing flows whose parameters are params in the param store
//! (Pyro's `TransformModule`s in `pyro.distributions.transforms`).
//!
//! A flow is a description ([`TransformModule`]); [`TransformModule::bind`] reads its params
//! (through [`param`], so SVI trains them) and returns an ordinary [`Transform`] to put in a
//! [`TransformedDistribution`](crate::distributions::TransformedDistribution). Bind once per
//! model or guide run.
//!
//! Every bound flow caches its last forward pair `(x, y)` (Pyro's `cache_size=1`): the inverse
//! of the `y` it just produced returns that `x` without computing anything, which is how a flow
//! guide scores its own samples even where the inverse is costly (`AffineAutoregressive`: one
//! network pass per dimension) or has no closed form (`Planar`, `Radial`).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use tch::{Kind, Tensor};

use super::{Transform, TransformRef};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::nn::{AutoRegressiveNN, DenseNN, Mlp, Options};
use crate::primitives::param;

/// A transform with learnable params (Pyro's `TransformModule`).
pub trait TransformModule: fmt::Debug {
    /// The transform at the params' current values; params are created in `opts` (dtype and
    /// device of the values it will transform) on first use.
    fn bind(&self, opts: Options) -> Result<TransformRef>;

    /// The transform at the params' current values, for sampling with gradients (HMC through
    /// [`NeuTraReparam`](crate::infer::reparam::NeuTraReparam)): where [`bind`](Self::bind)
    /// clamps a log-scale in value only and keeps the unclamped gradient (Pyro's
    /// `clamp_preserve_gradients`, which helps training), this clamps both, so the gradient is
    /// the gradient of the value. HMC needs that: with the training form its step size collapses
    /// wherever a trajectory reaches the clamp.
    fn bind_exact(&self, opts: Options) -> Result<TransformRef> {
        self.bind(opts)
    }
}

/// A fixed transform is a module without params.
impl TransformModule for TransformRef {
    fn bind(&self, _opts: Options) -> Result<TransformRef> {
        Ok(self.clone())
    }
}

/// A shared transform module.
pub type TransformModuleRef = Rc<dyn TransformModule>;

/// The last `(x, y)` a bound flow computed, with whatever else its log-Jacobian needs.
#[derive(Debug, Default)]
struct Cache(RefCell<Option<(Tensor, Tensor, Option<Tensor>)>>);

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.data_ptr() == b.data_ptr() && a.size() == b.size() && a.stride() == b.stride()
}

impl Cache {
    fn put(&self, x: &Tensor, y: &Tensor, extra: Option<&Tensor>) {
        *self.0.borrow_mut() = Some((
            x.shallow_clone(),
            y.shallow_clone(),
            extra.map(Tensor::shallow_clone),
        ));
    }
    /// The `x` of a cached `y`.
    fn x_of(&self, y: &Tensor) -> Option<Tensor> {
        self.0
            .borrow()
            .as_ref()
            .filter(|(_, cy, _)| same(cy, y))
            .map(|(x, _, _)| x.shallow_clone())
    }
    /// The extra value cached with `x`.
    fn extra_of(&self, x: &Tensor) -> Option<Tensor> {
        self.0
            .borrow()
            .as_ref()
            .filter(|(cx, _, _)| same(cx, x))
            .and_then(|(_, _, e)| e.as_ref().map(Tensor::shallow_clone))
    }

    /// `log |det J|` of an affine flow at `x`: its log-scales summed over the last dim, the ones
    /// cached with `x` when it is the last input, else `recompute()`'s.
    fn sum_log_scale(
        &self,
        x: &Tensor,
        recompute: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Tensor> {
        let log_scale = match self.extra_of(x) {
            Some(l) => l,
            None => recompute()?,
        };
        Ok(log_scale.f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?)
    }
}

/// A log-scale clamped to `[-5, 3]`: in value only, keeping the gradient of `x` (Pyro's
/// `clamp_preserve_gradients`, for training), or in both when `exact`
/// ([`TransformModule::bind_exact`]).
fn clamp_log_scale(x: &Tensor, exact: bool) -> Result<Tensor> {
    let c = x.f_clamp(-5.0, 3.0)?;
    if exact {
        return Ok(c);
    }
    Ok(x.f_add(&c.f_sub(x)?.f_detach()?)?)
}

fn last_dim(x: &Tensor) -> Result<i64> {
    x.size()
        .last()
        .copied()
        .ok_or_else(|| Error::Shape("a flow needs values with at least one dim".into()))
}

fn check_width(what: &str, x: &Tensor, want: i64) -> Result<()> {
    let d = last_dim(x)?;
    if d != want {
        return Err(Error::Shape(format!(
            "{what} transforms vectors of {want} values, got shape {:?}",
            x.size()
        )));
    }
    Ok(())
}

fn no_inverse(what: &str) -> Error {
    Error::Unsupported(format!(
        "{what} has no closed-form inverse; only values it produced itself (cached) can be \
         inverted, as in Pyro"
    ))
}

/// `TransformModule` for an affine flow with a clamped log-scale and a
/// `bound(opts, exact)` method: `bind` clamps in value only, `bind_exact` in value and gradient.
macro_rules! clamped_log_scale_module {
    ($t:ty) => {
        impl TransformModule for $t {
            fn bind(&self, opts: Options) -> Result<TransformRef> {
                self.bound(opts, false)
            }
            fn bind_exact(&self, opts: Options) -> Result<TransformRef> {
                self.bound(opts, true)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// AffineAutoregressive (IAF)

/// The inverse autoregressive flow (Pyro's `AffineAutoregressive` over an
/// [`AutoRegressiveNN`], Kingma et al. 2016): `y = loc(x) + exp(log_scale(x)) · x`, where output
/// `i` depends only on inputs before `i` in the network's order, so the Jacobian is triangular
/// and `log |det| = Σ log_scale`. `log_scale` is clamped to `[-5, 3]` in value (gradients kept).
/// Sampling is one network pass; the inverse of a value not produced by the flow takes one pass
/// per dimension.
#[derive(Clone, Debug)]
pub struct AffineAutoregressive {
    arn: AutoRegressiveNN,
}

impl AffineAutoregressive {
    /// The flow `name` on vectors of `input_dim` values, its network with `hidden_dims` (Pyro's
    /// `affine_autoregressive(input_dim, hidden_dims)`; Pyro's default is `[3 input_dim + 1]`).
    /// Params `{name}.arn.layers.{i}.{weight,bias}`.
    pub fn new(name: &str, input_dim: i64, hidden_dims: &[i64]) -> Result<AffineAutoregressive> {
        Ok(AffineAutoregressive {
            arn: AutoRegressiveNN::new(format!("{name}.arn"), input_dim, hidden_dims, 2)?,
        })
    }

    /// The flow over a given network (with 2 params per input).
    pub fn from_arn(arn: AutoRegressiveNN) -> AffineAutoregressive {
        AffineAutoregressive { arn }
    }

    /// The conditioner.
    pub fn arn(&self) -> &AutoRegressiveNN {
        &self.arn
    }
}

impl AffineAutoregressive {
    fn bound(&self, opts: Options, exact: bool) -> Result<TransformRef> {
        Ok(Rc::new(BoundAffineAutoregressive {
            net: self.arn.bind(opts)?,
            permutation: self.arn.permutation().to_vec(),
            input_dim: self.arn.input_dim(),
            exact,
            cache: Cache::default(),
        }))
    }
}

clamped_log_scale_module!(AffineAutoregressive);

#[derive(Debug)]
struct BoundAffineAutoregressive {
    net: Mlp,
    permutation: Vec<i64>,
    input_dim: i64,
    exact: bool,
    cache: Cache,
}

impl BoundAffineAutoregressive {
    fn loc_log_scale(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let out = self.net.forward(x)?;
        Ok((
            out[0].shallow_clone(),
            clamp_log_scale(&out[1], self.exact)?,
        ))
    }
}

impl Transform for BoundAffineAutoregressive {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_width("AffineAutoregressive", x, self.input_dim)?;
        let (loc, log_scale) = self.loc_log_scale(x)?;
        let y = log_scale.f_exp()?.f_mul(x)?.f_add(&loc)?;
        self.cache.put(x, &y, Some(&log_scale));
        Ok(y)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        if let Some(x) = self.cache.x_of(y) {
            return Ok(x);
        }
        check_width("AffineAutoregressive", y, self.input_dim)?;
        // Input k of the order depends on inputs before it: solve one at a time.
        let mut x = y.f_zeros_like()?;
        for &i in &self.permutation {
            let (loc, log_scale) = self.loc_log_scale(&x)?;
            let xi = y
                .f_select(-1, i)?
                .f_sub(&loc.f_select(-1, i)?)?
                .f_mul(&log_scale.f_select(-1, i)?.f_neg()?.f_exp()?)?;
            let onehot = Tensor::f_zeros([self.input_dim], (y.kind(), y.device()))?.f_index_fill(
                0,
                &Tensor::from_slice(&[i]).f_to_device(y.device())?,
                1.0,
            )?;
            x = x.f_add(&xi.f_unsqueeze(-1)?.f_mul(&onehot)?)?;
        }
        let (_, log_scale) = self.loc_log_scale(&x)?;
        self.cache.put(&x, y, Some(&log_scale));
        Ok(x)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        self.cache.sum_log_scale(x, || Ok(self.loc_log_scale(x)?.1))
    }
}

// ---------------------------------------------------------------------------------------------
// AffineCoupling (RealNVP)

/// The affine coupling layer (Pyro's `AffineCoupling`, Dinh et al. 2017): the first
/// `split_dim` values pass through; the rest become `loc(x₁) + exp(log_scale(x₁)) · x₂` with
/// `(loc, log_scale)` from a [`DenseNN`] of the first part (`log_scale` clamped to `[-5, 3]` in
/// value). Sampling and inverting both take one network pass. Alternate it with [`Permute`] so
/// that every dim gets transformed.
#[derive(Clone, Debug)]
pub struct AffineCoupling {
    split_dim: i64,
    input_dim: i64,
    hypernet: DenseNN,
}

impl AffineCoupling {
    /// The coupling layer `name` on vectors of `input_dim` values, conditioning on the first
    /// `split_dim`, with a network of `hidden_dims` (params `{name}.nn.layers.{i}.*`).
    pub fn new(
        name: &str,
        input_dim: i64,
        split_dim: i64,
        hidden_dims: &[i64],
    ) -> Result<AffineCoupling> {
        if !(1..input_dim).contains(&split_dim) {
            return Err(Error::Config(format!(
                "AffineCoupling `{name}`: split_dim must lie in 1..{input_dim}, got {split_dim}"
            )));
        }
        let rest = input_dim - split_dim;
        Ok(AffineCoupling {
            split_dim,
            input_dim,
            hypernet: DenseNN::new(format!("{name}.nn"), split_dim, hidden_dims, &[rest, rest])?,
        })
    }
}

impl AffineCoupling {
    fn bound(&self, opts: Options, exact: bool) -> Result<TransformRef> {
        Ok(Rc::new(BoundAffineCoupling {
            net: self.hypernet.bind(opts)?,
            split_dim: self.split_dim,
            input_dim: self.input_dim,
            exact,
            cache: Cache::default(),
        }))
    }
}

clamped_log_scale_module!(AffineCoupling);

#[derive(Debug)]
struct BoundAffineCoupling {
    net: Mlp,
    split_dim: i64,
    input_dim: i64,
    exact: bool,
    cache: Cache,
}

impl BoundAffineCoupling {
    fn parts(&self, v: &Tensor) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        check_width("AffineCoupling", v, self.input_dim)?;
        let a = v.f_narrow(-1, 0, self.split_dim)?;
        let b = v.f_narrow(-1, self.split_dim, self.input_dim - self.split_dim)?;
        let out = self.net.forward(&a)?;
        let log_scale = clamp_log_scale(&out[1], self.exact)?;
        Ok((a, b, out[0].shallow_clone(), log_scale))
    }
}

impl Transform for BoundAffineCoupling {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (x1, x2, loc, log_scale) = self.parts(x)?;
        let y2 = log_scale.f_exp()?.f_mul(&x2)?.f_add(&loc)?;
        let y = Tensor::f_cat(&[x1, y2], -1)?;
        self.cache.put(x, &y, Some(&log_scale));
        Ok(y)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        if let Some(x) = self.cache.x_of(y) {
            return Ok(x);
        }
        let (y1, y2, loc, log_scale) = self.parts(y)?;
        let x2 = y2.f_sub(&loc)?.f_mul(&log_scale.f_neg()?.f_exp()?)?;
        let x = Tensor::f_cat(&[y1, x2], -1)?;
        self.cache.put(&x, y, Some(&log_scale));
        Ok(x)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        self.cache.sum_log_scale(x, || Ok(self.parts(x)?.3))
    }
}

// ---------------------------------------------------------------------------------------------
// Permute

/// Reorders the last dim: `y[..., k] = x[..., permutation[k]]` (Pyro's `Permute`); no params,
/// log-Jacobian 0.
#[derive(Clone, Debug)]
pub struct Permute {
    permutation: Vec<i64>,
    inverse: Vec<i64>,
}

impl Permute {
    /// The reordering by `permutation` (a permutation of `0..n`).
    pub fn new(permutation: Vec<i64>) -> Result<Permute> {
        let n = permutation.len();
        let mut inverse = vec![-1i64; n];
        for (k, &p) in permutation.iter().enumerate() {
            if p < 0 || p as usize >= n || inverse[p as usize] >= 0 {
                return Err(Error::Config(format!(
                    "Permute: {permutation:?} is not a permutation of 0..{n}"
                )));
            }
            inverse[p as usize] = k as i64;
        }
        Ok(Permute {
            permutation,
            inverse,
        })
    }

    /// The reversal of `n` values.
    pub fn reverse(n: i64) -> Permute {
        let p: Vec<i64> = (0..n).rev().collect();
        Permute {
            inverse: p.clone(),
            permutation: p,
        }
    }

    fn apply(&self, v: &Tensor, order: &[i64]) -> Result<Tensor> {
        check_width("Permute", v, order.len() as i64)?;
        let idx = Tensor::f_from_slice(order)?.f_to_device(v.device())?;
        Ok(v.f_index_select(-1, &idx)?)
    }
}

impl Transform for Permute {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, &self.permutation)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.apply(y, &self.inverse)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let mut batch = x.size();
        batch.pop();
        Ok(Tensor::f_zeros(batch.as_slice(), (x.kind(), x.device()))?)
    }
}

// ---------------------------------------------------------------------------------------------
// Planar and Radial

/// Reads `{name}.{field}` of `shape`, initialized uniform in `±1/sqrt(input_dim)` (Pyro's
/// `reset_parameters` of `Planar` and `Radial`).
fn flow_param(
    name: &str,
    field: &str,
    shape: &[i64],
    input_dim: i64,
    opts: Options,
) -> Result<Tensor> {
    let bound = 1.0 / (input_dim as f64).sqrt();
    param(
        format!("{name}.{field}"),
        Some(|| {
            Ok(Tensor::f_rand(shape, opts)?
                .f_mul_scalar(2.0 * bound)?
                .f_sub_scalar(bound)?)
        }),
        Constraint::Real,
        None,
    )
}

/// The planar flow (Pyro's `Planar`, Rezende & Mohamed 2015): `y = x + û tanh(wᵀx + b)`, with
/// `û = u + (softplus(wᵀu) - 1 - wᵀu) w / |w|²` so that it is invertible. Params `{name}.u`,
/// `{name}.w` and `{name}.bias`. No closed-form inverse (only its own outputs can be scored).
#[derive(Clone, Debug)]
pub struct Planar {
    name: String,
    input_dim: i64,
}

impl Planar {
    /// The planar flow `name` on vectors of `input_dim` values.
    pub fn new(name: impl Into<String>, input_dim: i64) -> Planar {
        Planar {
            name: name.into(),
            input_dim,
        }
    }
}

impl TransformModule for Planar {
    fn bind(&self, opts: Options) -> Result<TransformRef> {
        let d = self.input_dim;
        let u = flow_param(&self.name, "u", &[d], d, opts)?;
        let w = flow_param(&self.name, "w", &[d], d, opts)?;
        let bias = flow_param(&self.name, "bias", &[1], d, opts)?;
        let wu = w.f_dot(&u)?;
        let m = wu.f_softplus()?.f_sub_scalar(1.0)?;
        let u_hat = u.f_add(&m.f_sub(&wu)?.f_mul(&w)?.f_div(&w.f_dot(&w)?)?)?;
        Ok(Rc::new(BoundPlanar {
            u_hat,
            w,
            bias,
            input_dim: d,
            cache: Cache::default(),
        }))
    }
}

#[derive(Debug)]
struct BoundPlanar {
    u_hat: Tensor,
    w: Tensor,
    bias: Tensor,
    input_dim: i64,
    cache: Cache,
}

impl BoundPlanar {
    /// `tanh(wᵀx + b)`, shape `[..., 1]`.
    fn act(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_matmul(&self.w.f_unsqueeze(-1)?)?
            .f_add(&self.bias)?
            .f_tanh()?)
    }
}

impl Transform for BoundPlanar {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_width("Planar", x, self.input_dim)?;
        let y = x.f_add(&self.act(x)?.f_mul(&self.u_hat)?)?;
        self.cache.put(x, &y, None);
        Ok(y)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.cache.x_of(y).ok_or_else(|| no_inverse("Planar"))
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // ψ = (1 - tanh²) w; log |1 + ûᵀψ|.
        let a = self.act(x)?.f_squeeze_dim(-1)?;
        let dtanh = a.f_square()?.f_neg()?.f_add_scalar(1.0)?;
        let uw = self.u_hat.f_dot(&self.w)?;
        Ok(dtanh.f_mul(&uw)?.f_add_scalar(1.0)?.f_abs()?.f_log()?)
    }
}

/// The radial flow (Pyro's `Radial`, Rezende & Mohamed 2015):
/// `y = x + β h(α, r) (x - x₀)` with `r = |x - x₀|`, `h = 1 / (α + r)`, `α = softplus(α')` and
/// `β = -α + softplus(β')` (so that it is invertible). Params `{name}.x0`, `{name}.alpha_prime`
/// and `{name}.beta_prime`. No closed-form inverse (only its own outputs can be scored).
#[derive(Clone, Debug)]
pub struct Radial {
    name: String,
    input_dim: i64,
}

impl Radial {
    /// The radial flow `name` on vectors of `input_dim` values.
    pub fn new(name: impl Into<String>, input_dim: i64) -> Radial {
        Radial {
            name: name.into(),
            input_dim,
        }
    }
}

impl TransformModule for Radial {
    fn bind(&self, opts: Options) -> Result<TransformRef> {
        let d = self.input_dim;
        let x0 = flow_param(&self.name, "x0", &[d], d, opts)?;
        let alpha_prime = flow_param(&self.name, "alpha_prime", &[1], d, opts)?;
        let beta_prime = flow_param(&self.name, "beta_prime", &[1], d, opts)?;
        let alpha = alpha_prime.f_softplus()?;
        let beta = alpha.f_neg()?.f_add(&beta_prime.f_softplus()?)?;
        Ok(Rc::new(BoundRadial {
            x0,
            alpha,
            beta,
            input_dim: d,
            cache: Cache::default(),
        }))
    }
}

#[derive(Debug)]
struct BoundRadial {
    x0: Tensor,
    alpha: Tensor,
    beta: Tensor,
    input_dim: i64,
    cache: Cache,
}

impl BoundRadial {
    /// `(x - x₀, r [..., 1], h [..., 1])`.
    fn parts(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        check_width("Radial", x, self.input_dim)?;
        let diff = x.f_sub(&self.x0)?;
        let r = diff
            .f_square()?
            .f_sum_dim_intlist([-1i64].as_slice(), true, None::<Kind>)?
            .f_sqrt()?;
        let h = self.alpha.f_add(&r)?.f_reciprocal()?;
        Ok((diff, r, h))
    }
}

impl Transform for BoundRadial {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (diff, _, h) = self.parts(x)?;
        let y = x.f_add(&self.beta.f_mul(&h)?.f_mul(&diff)?)?;
        self.cache.put(x, &y, None);
        Ok(y)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.cache.x_of(y).ok_or_else(|| no_inverse("Radial"))
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // (d - 1) log(1 + βh) + log(1 + βh + β h' r), h' = -h².
        let (_, r, h) = self.parts(x)?;
        let bh = self.beta.f_mul(&h)?;
        let dh = h.f_square()?.f_neg()?;
        let first = bh.f_log1p()?.f_mul_scalar((self.input_dim - 1) as f64)?;
        let second = bh.f_add(&self.beta.f_mul(&dh)?.f_mul(&r)?)?.f_log1p()?;
        Ok(first.f_add(&second)?.f_squeeze_dim(-1)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Rational-quadratic splines

const MIN_BIN_WIDTH: f64 = 1e-3;
const MIN_BIN_HEIGHT: f64 = 1e-3;
const MIN_DERIVATIVE: f64 = 1e-3;

/// Monotone rational-quadratic spline on `[-bound, bound]`, identity outside (Durkan et al. 2019,
/// "Neural Spline Flows", with linear tails). Parameters broadcast to `x.shape + [K]`
/// (`widths`, `heights`) and `x.shape + [K - 1]` (`derivs`, the inner knots), unnormalized.
/// Returns `(output, log |dy/dx|)` of the forward map, or of the inverse when `inverse`
/// (then the log-derivative is still that of the forward map at the output).
fn rational_quadratic(
    x: &Tensor,
    widths: &Tensor,
    heights: &Tensor,
    derivs: &Tensor,
    bound: f64,
    inverse: bool,
) -> Result<(Tensor, Tensor)> {
    let k = widths.size().last().copied().unwrap_or(0);
    let knots = |u: &Tensor, min: f64| -> Result<(Tensor, Tensor)> {
        let w = u.f_softmax(-1, None::<Kind>)?;
        let w = w.f_mul_scalar(1.0 - min * k as f64)?.f_add_scalar(min)?;
        let cum = w.f_cumsum(-1, None::<Kind>)?;
        let cum = cum.f_constant_pad_nd([1i64, 0].as_slice())?;
        let cum = cum.f_mul_scalar(2.0 * bound)?.f_sub_scalar(bound)?;
        // Pin the ends to ±bound exactly.
        let inner = cum.f_narrow(-1, 1, k - 1)?;
        let lo = cum.f_narrow(-1, 0, 1)?.f_full_like(-bound)?;
        let hi = cum.f_narrow(-1, k, 1)?.f_full_like(bound)?;
        let cum = Tensor::f_cat(&[lo, inner, hi], -1)?;
        let w = cum.f_narrow(-1, 1, k)?.f_sub(&cum.f_narrow(-1, 0, k)?)?;
        Ok((cum, w))
    };
    let (cumwidths, widths) = knots(widths, MIN_BIN_WIDTH)?;
    let (cumheights, heights) = knots(heights, MIN_BIN_HEIGHT)?;
    let d = derivs.f_softplus()?.f_add_scalar(MIN_DERIVATIVE)?;
    let ones = d.f_narrow(-1, 0, 1)?.f_ones_like()?;
    let derivs = Tensor::f_cat(&[ones.shallow_clone(), d, ones], -1)?;

    let inside = x.f_ge(-bound)?.f_logical_and(&x.f_le(bound)?)?;
    let xc = x.f_clamp(-bound, bound)?;
    let expand = |t: &Tensor, n: i64| -> Result<Tensor> {
        let mut s = x.size();
        s.push(n);
        Ok(t.f_expand(s.as_slice(), false)?)
    };
    // The bin of each value: the number of inner knots at or below it.
    let search = if inverse { &cumheights } else { &cumwidths };
    let inner_knots = expand(&search.f_narrow(-1, 1, k - 1)?, k - 1)?;
    let bin = xc
        .f_unsqueeze(-1)?
        .f_ge_tensor(&inner_knots)?
        .f_sum_dim_intlist([-1i64].as_slice(), true, Kind::Int64)?;
    let pick = |t: &Tensor, n: i64, offset: i64| -> Result<Tensor> {
        let idx = if offset == 0 {
            bin.shallow_clone()
        } else {
            bin.f_add_scalar(offset)?
        };
        Ok(expand(t, n)?.f_gather(-1, &idx, false)?.f_squeeze_dim(-1)?)
    };
    let cw = pick(&cumwidths, k + 1, 0)?;
    let bw = pick(&widths, k, 0)?;
    let ch = pick(&cumheights, k + 1, 0)?;
    let bh = pick(&heights, k, 0)?;
    let d0 = pick(&derivs, k + 1, 0)?;
    let d1 = pick(&derivs, k + 1, 1)?;
    let delta = bh.f_div(&bw)?;
    let dsum = d0.f_add(&d1)?.f_sub(&delta.f_mul_scalar(2.0)?)?;

    let (out, theta) = if inverse {
        let yr = xc.f_sub(&ch)?;
        let a = bh.f_mul(&delta.f_sub(&d0)?)?.f_add(&yr.f_mul(&dsum)?)?;
        let b = bh.f_mul(&d0)?.f_sub(&yr.f_mul(&dsum)?)?;
        let c = delta.f_neg()?.f_mul(&yr)?;
        let disc = b
            .f_square()?
            .f_sub(&a.f_mul(&c)?.f_mul_scalar(4.0)?)?
            .f_clamp_min(0.0)?;
        let root = c
            .f_mul_scalar(2.0)?
            .f_div(&b.f_neg()?.f_sub(&disc.f_sqrt()?)?)?;
        (root.f_mul(&bw)?.f_add(&cw)?, root)
    } else {
        let theta = xc.f_sub(&cw)?.f_div(&bw)?;
        let tt = theta.f_mul(&theta.f_neg()?.f_add_scalar(1.0)?)?;
        let num = bh.f_mul(&delta.f_mul(&theta.f_square()?)?.f_add(&d0.f_mul(&tt)?)?)?;
        let den = delta.f_add(&dsum.f_mul(&tt)?)?;
        (ch.f_add(&num.f_div(&den)?)?, theta)
    };
    let tt = theta.f_mul(&theta.f_neg()?.f_add_scalar(1.0)?)?;
    let den = delta.f_add(&dsum.f_mul(&tt)?)?;
    let dnum = delta.f_square()?.f_mul(
        &d1.f_mul(&theta.f_square()?)?
            .f_add(&delta.f_mul(&tt)?.f_mul_scalar(2.0)?)?
            .f_add(&d0.f_mul(&theta.f_neg()?.f_add_scalar(1.0)?.f_square()?)?)?,
    )?;
    let lad = dnum.f_log()?.f_sub(&den.f_log()?.f_mul_scalar(2.0)?)?;
    let out = out.f_where_self(&inside, x)?;
    let lad = lad.f_where_self(&inside, &lad.f_zeros_like()?)?;
    Ok((out, lad))
}

/// The elementwise rational-quadratic spline flow (Pyro's `Spline` with `order="quadratic"`,
/// Durkan et al. 2019): each of `input_dim` values goes through its own monotone spline of
/// `count_bins` bins on `[-bound, bound]` (identity outside). Params
/// `{name}.unnormalized_widths`, `.unnormalized_heights` (`[input_dim, count_bins]`) and
/// `.unnormalized_derivatives` (`[input_dim, count_bins - 1]`), initialized standard normal as
/// Pyro's are. Exact inverse.
#[derive(Clone, Debug)]
pub struct Spline {
    name: String,
    input_dim: i64,
    count_bins: i64,
    bound: f64,
}

impl Spline {
    /// The spline flow `name` on vectors of `input_dim` values (Pyro's defaults: 8 bins, bound 3).
    pub fn new(name: impl Into<String>, input_dim: i64) -> Spline {
        Spline {
            name: name.into(),
            input_dim,
            count_bins: 8,
            bound: 3.0,
        }
    }

    /// The number of bins (at least 2).
    pub fn count_bins(mut self, k: i64) -> Spline {
        self.count_bins = k.max(2);
        self
    }

    /// The half-width of the interval the spline covers.
    pub fn bound(mut self, b: f64) -> Spline {
        self.bound = b;
        self
    }
}

impl TransformModule for Spline {
    fn bind(&self, opts: Options) -> Result<TransformRef> {
        let (d, k) = (self.input_dim, self.count_bins);
        let normal = |field: &str, shape: [i64; 2]| {
            param(
                format!("{}.{field}", self.name),
                Some(|| Ok(Tensor::f_randn(shape, opts)?)),
                Constraint::Real,
                None,
            )
        };
        Ok(Rc::new(BoundSpline {
            widths: normal("unnormalized_widths", [d, k])?,
            heights: normal("unnormalized_heights", [d, k])?,
            derivs: normal("unnormalized_derivatives", [d, k - 1])?,
            bound: self.bound,
            input_dim: d,
        }))
    }
}

#[derive(Debug)]
struct BoundSpline {
    widths: Tensor,
    heights: Tensor,
    derivs: Tensor,
    bound: f64,
    input_dim: i64,
}

impl Transform for BoundSpline {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_width("Spline", x, self.input_dim)?;
        Ok(rational_quadratic(
            x,
            &self.widths,
            &self.heights,
            &self.derivs,
            self.bound,
            false,
        )?
        .0)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        check_width("Spline", y, self.input_dim)?;
        Ok(rational_quadratic(
            y,
            &self.widths,
            &self.heights,
            &self.derivs,
            self.bound,
            true,
        )?
        .0)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(rational_quadratic(
            x,
            &self.widths,
            &self.heights,
            &self.derivs,
            self.bound,
            false,
        )?
        .1)
    }
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
}

/// The rational-quadratic spline coupling layer (Pyro's `SplineCoupling`, Durkan et al. 2019):
/// the first `split_dim` values pass through; each of the others goes through a monotone spline
/// whose knots a [`DenseNN`] computes from the first part. Params `{name}.nn.layers.{i}.*`.
/// Exact inverse in one network pass.
#[derive(Clone, Debug)]
pub struct SplineCoupling {
    split_dim: i64,
    input_dim: i64,
    count_bins: i64,
    bound: f64,
    hypernet: DenseNN,
}

impl SplineCoupling {
    /// The coupling layer `name` on vectors of `input_dim` values, conditioning on the first
    /// `split_dim`, with a network of `hidden_dims`, 8 bins on `[-3, 3]`.
    pub fn new(
        name: &str,
        input_dim: i64,
        split_dim: i64,
        hidden_dims: &[i64],
    ) -> Result<SplineCoupling> {
        if !(1..input_dim).contains(&split_dim) {
            return Err(Error::Config(format!(
                "SplineCoupling `{name}`: split_dim must lie in 1..{input_dim}, got {split_dim}"
            )));
        }
        let (rest, k) = (input_dim - split_dim, 8);
        Ok(SplineCoupling {
            split_dim,
            input_dim,
            count_bins: k,
            bound: 3.0,
            hypernet: DenseNN::new(
                format!("{name}.nn"),
                split_dim,
                hidden_dims,
                &[rest * k, rest * k, rest * (k - 1)],
            )?,
        })
    }
}

impl TransformModule for SplineCoupling {
    fn bind(&self, opts: Options) -> Result<TransformRef> {
        Ok(Rc::new(BoundSplineCoupling {
            net: self.hypernet.bind(opts)?,
            split_dim: self.split_dim,
            input_dim: self.input_dim,
            count_bins: self.count_bins,
            bound: self.bound,
        }))
    }
}

#[derive(Debug)]
struct BoundSplineCoupling {
    net: Mlp,
    split_dim: i64,
    input_dim: i64,
    count_bins: i64,
    bound: f64,
}

impl BoundSplineCoupling {
    fn apply(&self, v: &Tensor, inverse: bool) -> Result<(Tensor, Tensor)> {
        check_width("SplineCoupling", v, self.input_dim)?;
        let rest = self.input_dim - self.split_dim;
        let a = v.f_narrow(-1, 0, self.split_dim)?;
        let b = v.f_narrow(-1, self.split_dim, rest)?;
        let out = self.net.forward(&a)?;
        let shape = |n: i64| -> Vec<i64> {
            let mut s = b.size();
            s.push(n);
            s
        };
        let k = self.count_bins;
        let w = out[0].f_reshape(shape(k).as_slice())?;
        let h = out[1].f_reshape(shape(k).as_slice())?;
        let d = out[2].f_reshape(shape(k - 1).as_slice())?;
        let (b2, lad) = rational_quadratic(&b, &w, &h, &d, self.bound, inverse)?;
        let lad = lad.f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?;
        Ok((Tensor::f_cat(&[a, b2], -1)?, lad))
    }
}

impl Transform for BoundSplineCoupling {
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.apply(x, false)?.0)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(self.apply(y, true)?.0)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(self.apply(x, false)?.1)
    }
}

// ---------------------------------------------------------------------------------------------
// BatchNorm

/// Running statistics of a [`BatchNorm`] flow (Pyro keeps them as module buffers).
#[derive(Debug)]
struct Moving {
    mean: Option<Tensor>,
    var: Option<Tensor>,
}

/// Batch normalization as a flow (Pyro's `BatchNorm`, Dinh et al. 2017), for density
/// estimation with stacked flows. The normalizing direction is the inverse: in training mode
/// (the default) `x = (y - mean(y)) · γ / sqrt(var(y) + ε) + β` with the batch's own mean and
/// variance (over dim 0), which also update running averages (momentum 0.1); in evaluation mode
/// ([`BatchNorm::train`]`(false)`) the running averages are used both ways. The forward
/// (sampling) direction always uses the running averages. `γ = relu(gamma) + 1e-6`. Params
/// `{name}.gamma` (ones) and `{name}.beta` (zeros); the running averages live in the module (not
/// in the param store or checkpoints).
#[derive(Clone, Debug)]
pub struct BatchNorm {
    name: String,
    input_dim: i64,
    momentum: f64,
    epsilon: f64,
    training: Rc<std::cell::Cell<bool>>,
    moving: Rc<RefCell<Moving>>,
}

impl BatchNorm {
    /// The flow `name` on vectors of `input_dim` values, in training mode.
    pub fn new(name: impl Into<String>, input_dim: i64) -> BatchNorm {
        BatchNorm {
            name: name.into(),
            input_dim,
            momentum: 0.1,
            epsilon: 1e-5,
            training: Rc::new(std::cell::Cell::new(true)),
            moving: Rc::new(RefCell::new(Moving {
                mean: None,
                var: None,
            })),
        }
    }

    /// Training mode (batch statistics in the inverse) or evaluation mode (running averages).
    /// Clones share the mode and the running averages.
    pub fn train(&self, on: bool) {
        self.training.set(on);
    }

    /// The running mean and variance (zeros and ones before any training batch).
    pub fn moving_stats(&self, opts: Options) -> Result<(Tensor, Tensor)> {
        let m = self.moving.borrow();
        let mean = match &m.mean {
            Some(t) => t.shallow_clone(),
            None => Tensor::f_zeros([self.input_dim], opts)?,
        };
        let var = match &m.var {
            Some(t) => t.shallow_clone(),
            None => Tensor::f_ones([self.input_dim], opts)?,
        };
        Ok((mean, var))
    }
}

impl TransformModule for BatchNorm {
    fn bind(&self, opts: Options) -> Result<TransformRef> {
        let d = self.input_dim;
        let gamma = param(
            format!("{}.gamma", self.name),
            Some(|| Ok(Tensor::f_ones([d], opts)?)),
            Constraint::Real,
            None,
        )?;
        let beta = param(
            format!("{}.beta", self.name),
            Some(|| Ok(Tensor::f_zeros([d], opts)?)),
            Constraint::Real,
            None,
        )?;
        Ok(Rc::new(BoundBatchNorm {
            gamma: gamma.f_relu()?.f_add_scalar(1e-6)?,
            beta,
            module: self.clone(),
            opts,
        }))
    }
}

#[derive(Debug)]
struct BoundBatchNorm {
    gamma: Tensor,
    beta: Tensor,
    module: BatchNorm,
    opts: Options,
}

impl BoundBatchNorm {
    fn batch_stats(y: &Tensor) -> Result<(Tensor, Tensor)> {
        if y.dim() < 2 || y.size()[0] < 2 {
            return Err(Error::Shape(format!(
                "BatchNorm in training mode normalizes a batch (dim 0, at least 2 rows), got \
                 shape {:?}; call train(false) to use the running averages",
                y.size()
            )));
        }
        let mean = y.f_mean_dim([0i64].as_slice(), false, None::<Kind>)?;
        let var = y.f_var_dim([0i64].as_slice(), true, false)?;
        Ok((mean, var))
    }
}

impl Transform for BoundBatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_width("BatchNorm", x, self.module.input_dim)?;
        let (mean, var) = self.module.moving_stats(self.opts)?;
        Ok(x.f_sub(&self.beta)?
            .f_div(&self.gamma)?
            .f_mul(&var.f_add_scalar(self.module.epsilon)?.f_sqrt()?)?
            .f_add(&mean)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        check_width("BatchNorm", y, self.module.input_dim)?;
        let (mean, var) = if self.module.training.get() {
            let (mean, var) = Self::batch_stats(y)?;
            let (old_mean, old_var) = self.module.moving_stats(self.opts)?;
            let m = self.module.momentum;
            tch::no_grad(|| -> Result<()> {
                let mut mv = self.module.moving.borrow_mut();
                mv.mean = Some(
                    old_mean
                        .f_mul_scalar(1.0 - m)?
                        .f_add(&mean.f_mul_scalar(m)?)?
                        .f_detach()?,
                );
                mv.var = Some(
                    old_var
                        .f_mul_scalar(1.0 - m)?
                        .f_add(&var.f_mul_scalar(m)?)?
                        .f_detach()?,
                );
                Ok(())
            })?;
            (mean, var)
        } else {
            self.module.moving_stats(self.opts)?
        };
        Ok(y.f_sub(&mean)?
            .f_mul(&self.gamma)?
            .f_div(&var.f_add_scalar(self.module.epsilon)?.f_sqrt()?)?
            .f_add(&self.beta)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let var = if self.module.training.get() {
            Self::batch_stats(y)?.1
        } else {
            self.module.moving_stats(self.opts)?.1
        };
        let l = var
            .f_add_scalar(self.module.epsilon)?
            .f_log()?
            .f_mul_scalar(0.5)?
            .f_sub(&self.gamma.f_log()?)?;
        Ok(l.f_expand(x.size().as_slice(), false)?)
    }
}
