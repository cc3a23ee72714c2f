//! Transforms built from others or from shapes: inverse, independent, reshape, cat and stack;
//! ordered vectors; a distribution's CDF; normalization; and the orthonormal spectral transforms
//! (discrete cosine, Haar) that Pyro uses to reparameterize time series.

use tch::{Kind, Tensor};

use super::basic::sum_rightmost;
use super::{Transform, TransformRef};
use crate::constraints::{Bound, Constraint};
use crate::distributions::DistRef;
use crate::error::{Error, Result};

/// Counts `dim` from the right: `-1` is the last dim.
fn neg_dim(dim: i64, ndim: usize) -> i64 {
    if dim >= 0 {
        dim - ndim as i64
    } else {
        dim
    }
}

/// `f⁻¹` as a transform (torch's `t.inv`): forward and inverse swapped, the log-Jacobian negated.
#[derive(Debug, Clone)]
pub struct InverseTransform {
    base: TransformRef,
}

impl InverseTransform {
    /// The inverse of `base`.
    pub fn new(base: TransformRef) -> Self {
        InverseTransform { base }
    }
}

impl Transform for InverseTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.base.inverse(x)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.base.forward(y)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(self.base.log_abs_det_jacobian(y, x)?.f_neg()?)
    }
    fn domain_event_dim(&self) -> usize {
        self.base.codomain_event_dim()
    }
    fn codomain_event_dim(&self) -> usize {
        self.base.domain_event_dim()
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.base.inverse_shape(shape)
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.base.forward_shape(shape)
    }
    fn sign(&self) -> Option<f64> {
        self.base.sign()
    }
}

/// `base` applied to events of `n` more dims: the log-Jacobian is summed over them (torch's
/// `IndependentTransform`).
#[derive(Debug, Clone)]
pub struct IndependentTransform {
    base: TransformRef,
    n: usize,
}

impl IndependentTransform {
    /// `base` with `reinterpreted_batch_ndims = n`.
    pub fn new(base: TransformRef, n: usize) -> Self {
        IndependentTransform { base, n }
    }
}

impl Transform for IndependentTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.base.forward(x)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.base.inverse(y)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        sum_rightmost(&self.base.log_abs_det_jacobian(x, y)?, self.n)
    }
    fn domain_event_dim(&self) -> usize {
        self.base.domain_event_dim() + self.n
    }
    fn codomain_event_dim(&self) -> usize {
        self.base.codomain_event_dim() + self.n
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.base.forward_shape(shape)
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        self.base.inverse_shape(shape)
    }
    fn sign(&self) -> Option<f64> {
        self.base.sign()
    }
    fn codomain(&self) -> Constraint {
        Constraint::Independent(Box::new(self.base.codomain()), self.n)
    }
}

/// Reshapes the rightmost dims from `in_shape` to `out_shape` (same number of elements; torch's
/// `ReshapeTransform`). Volume-preserving.
#[derive(Debug, Clone)]
pub struct ReshapeTransform {
    in_shape: Vec<i64>,
    out_shape: Vec<i64>,
}

impl ReshapeTransform {
    /// Events of `in_shape` to events of `out_shape`.
    pub fn new(in_shape: &[i64], out_shape: &[i64]) -> Result<Self> {
        if in_shape.iter().product::<i64>() != out_shape.iter().product::<i64>() {
            return Err(Error::Shape(format!(
                "ReshapeTransform: {in_shape:?} and {out_shape:?} hold different numbers of \
                 elements"
            )));
        }
        Ok(ReshapeTransform {
            in_shape: in_shape.to_vec(),
            out_shape: out_shape.to_vec(),
        })
    }

    fn swap(x: &Tensor, from: &[i64], to: &[i64]) -> Result<Tensor> {
        let s = x.size();
        if s.len() < from.len() || s[s.len() - from.len()..] != *from {
            return Err(Error::Shape(format!(
                "ReshapeTransform: a value of shape {s:?} does not end in {from:?}"
            )));
        }
        let mut shape = s[..s.len() - from.len()].to_vec();
        shape.extend_from_slice(to);
        Ok(x.f_reshape(shape.as_slice())?)
    }
}

impl Transform for ReshapeTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Self::swap(x, &self.in_shape, &self.out_shape)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Self::swap(y, &self.out_shape, &self.in_shape)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let s = x.size();
        let batch = &s[..s.len().saturating_sub(self.in_shape.len())];
        Ok(Tensor::f_zeros(batch, (x.kind(), x.device()))?)
    }
    fn domain_event_dim(&self) -> usize {
        self.in_shape.len()
    }
    fn codomain_event_dim(&self) -> usize {
        self.out_shape.len()
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape[..shape.len().saturating_sub(self.in_shape.len())].to_vec();
        s.extend_from_slice(&self.out_shape);
        s
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape[..shape.len().saturating_sub(self.out_shape.len())].to_vec();
        s.extend_from_slice(&self.in_shape);
        s
    }
}

/// Transforms pieces of `dim` of the given lengths, each with its own transform (torch's
/// `CatTransform`). Each part must keep the length of its piece along `dim`.
#[derive(Debug, Clone)]
pub struct CatTransform {
    parts: Vec<TransformRef>,
    dim: i64,
    lengths: Vec<i64>,
}

impl CatTransform {
    /// `parts[i]` on the piece of length `lengths[i]` of `dim`.
    pub fn new(parts: Vec<TransformRef>, dim: i64, lengths: Vec<i64>) -> Result<Self> {
        if parts.len() != lengths.len() {
            return Err(Error::Shape(format!(
                "CatTransform: {} transforms for {} lengths",
                parts.len(),
                lengths.len()
            )));
        }
        Ok(CatTransform {
            parts,
            dim,
            lengths,
        })
    }

    fn check(&self, x: &Tensor) -> Result<i64> {
        let d = neg_dim(self.dim, x.dim());
        let total: i64 = self.lengths.iter().sum();
        if -d > x.dim() as i64 || x.size()[(x.dim() as i64 + d) as usize] != total {
            return Err(Error::Shape(format!(
                "CatTransform: a value of shape {:?} does not split into pieces of {:?} along \
                 dim {}",
                x.size(),
                self.lengths,
                self.dim
            )));
        }
        Ok(d)
    }

    fn map(
        &self,
        x: &Tensor,
        f: impl Fn(&TransformRef, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let d = self.check(x)?;
        let mut out = Vec::with_capacity(self.parts.len());
        let mut start = 0;
        for (t, &len) in self.parts.iter().zip(&self.lengths) {
            out.push(f(t, &x.f_narrow(d, start, len)?)?);
            start += len;
        }
        Ok(Tensor::f_cat(&out, d)?)
    }
}

impl Transform for CatTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.map(x, |t, p| t.forward(p))
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.map(y, |t, p| t.inverse(p))
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let d = self.check(x)?;
        let event = self.domain_event_dim();
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut start = 0;
        for (t, &len) in self.parts.iter().zip(&self.lengths) {
            let l =
                t.log_abs_det_jacobian(&x.f_narrow(d, start, len)?, &y.f_narrow(d, start, len)?)?;
            parts.push(sum_rightmost(&l, event - t.domain_event_dim())?);
            start += len;
        }
        let within_batch = d + event as i64;
        if within_batch < 0 {
            // The pieces split a batch dim: their log-Jacobians join along it.
            Ok(Tensor::f_cat(&parts, within_batch)?)
        } else {
            let mut total = parts.remove(0);
            for p in parts {
                total = total.f_add(&p)?;
            }
            Ok(total)
        }
    }
    fn domain_event_dim(&self) -> usize {
        self.parts
            .iter()
            .map(|t| t.domain_event_dim())
            .max()
            .unwrap_or(0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::Cat(
            self.parts.iter().map(|t| t.codomain()).collect(),
            self.dim,
            self.lengths.clone(),
        )
    }
}

/// Transforms slices of `dim`, each with its own transform (torch's `StackTransform`).
#[derive(Debug, Clone)]
pub struct StackTransform {
    parts: Vec<TransformRef>,
    dim: i64,
}

impl StackTransform {
    /// `parts[i]` on slice `i` of `dim`.
    pub fn new(parts: Vec<TransformRef>, dim: i64) -> Self {
        StackTransform { parts, dim }
    }

    fn check(&self, x: &Tensor) -> Result<i64> {
        let d = neg_dim(self.dim, x.dim());
        if -d > x.dim() as i64 || x.size()[(x.dim() as i64 + d) as usize] != self.parts.len() as i64
        {
            return Err(Error::Shape(format!(
                "StackTransform: a value of shape {:?} has not {} slices along dim {}",
                x.size(),
                self.parts.len(),
                self.dim
            )));
        }
        Ok(d)
    }

    fn map(
        &self,
        x: &Tensor,
        f: impl Fn(&TransformRef, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let d = self.check(x)?;
        let out = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, t)| f(t, &x.f_select(d, i as i64)?))
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Tensor::f_stack(&out, d)?)
    }
}

impl Transform for StackTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.map(x, |t, p| t.forward(p))
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.map(y, |t, p| t.inverse(p))
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let d = self.check(x)?;
        let parts = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.log_abs_det_jacobian(&x.f_select(d, i as i64)?, &y.f_select(d, i as i64)?)
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let inner = self
            .parts
            .iter()
            .map(|t| t.domain_event_dim())
            .max()
            .unwrap_or(0) as i64;
        if d + inner < 0 {
            // A batch dim: stacked back along it (counted without the parts' event dims).
            Ok(Tensor::f_stack(&parts, d + inner)?)
        } else {
            let mut total = parts[0].shallow_clone();
            for p in &parts[1..] {
                total = total.f_add(p)?;
            }
            Ok(total)
        }
    }
    fn domain_event_dim(&self) -> usize {
        let inner = self
            .parts
            .iter()
            .map(|t| t.domain_event_dim())
            .max()
            .unwrap_or(0);
        if self.dim + (inner as i64) < 0 && self.dim < 0 {
            inner + 1
        } else {
            inner
        }
    }
    fn codomain(&self) -> Constraint {
        Constraint::Stack(self.parts.iter().map(|t| t.codomain()).collect(), self.dim)
    }
}

/// `y = F(x)`, the CDF of a univariate distribution, onto `[0, 1]` (torch's
/// `CumulativeDistributionTransform`); the log-Jacobian is the log-density.
#[derive(Debug, Clone)]
pub struct CumulativeDistributionTransform {
    dist: DistRef,
}

impl CumulativeDistributionTransform {
    /// The CDF of `dist` (which must have `cdf` and `icdf`).
    pub fn new(dist: DistRef) -> Self {
        CumulativeDistributionTransform { dist }
    }
}

impl Transform for CumulativeDistributionTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.dist.cdf(x)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.dist.icdf(y)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        self.dist.log_prob(x)
    }
    fn sign(&self) -> Option<f64> {
        Some(1.0)
    }
    fn codomain(&self) -> Constraint {
        Constraint::UnitInterval
    }
}

/// From real vectors onto strictly increasing ones: `y_0 = x_0`, `y_i = y_(i-1) + exp(x_i)`
/// (Pyro's `OrderedTransform`).
#[derive(Debug, Clone, Copy)]
pub struct OrderedTransform;

impl Transform for OrderedTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = *x.size().last().unwrap_or(&0);
        if n < 2 {
            return Ok(x.shallow_clone());
        }
        let z = Tensor::f_cat(
            &[x.f_narrow(-1, 0, 1)?, x.f_narrow(-1, 1, n - 1)?.f_exp()?],
            -1,
        )?;
        Ok(z.f_cumsum(-1, None::<Kind>)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let n = *y.size().last().unwrap_or(&0);
        if n < 2 {
            return Ok(y.shallow_clone());
        }
        let d = y
            .f_narrow(-1, 1, n - 1)?
            .f_sub(&y.f_narrow(-1, 0, n - 1)?)?;
        Ok(Tensor::f_cat(&[y.f_narrow(-1, 0, 1)?, d.f_log()?], -1)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let n = *x.size().last().unwrap_or(&0);
        Ok(x.f_narrow(-1, 1, (n - 1).max(0))?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn codomain(&self) -> Constraint {
        Constraint::OrderedVector
    }
}

/// From the simplex of `K` entries onto ordered vectors of `K - 1`: `y_i = anchor + logit(s_i)`
/// with `s` the cumulative sums of the first `K - 1` entries (Pyro's `SimplexToOrderedTransform`,
/// which turns category probabilities into `OrderedLogistic` cutpoints). A tensor anchor has the
/// batch shape: one anchor per vector.
#[derive(Debug, Clone)]
pub struct SimplexToOrderedTransform {
    anchor: Bound,
}

impl SimplexToOrderedTransform {
    /// With the anchor point (a number or a tensor).
    pub fn new(anchor: impl Into<Bound>) -> Self {
        SimplexToOrderedTransform {
            anchor: anchor.into(),
        }
    }

    /// The anchor, broadcast along the event dim.
    fn anchor(&self) -> Result<Bound> {
        Ok(match &self.anchor {
            Bound::Scalar(a) => Bound::Scalar(*a),
            Bound::Tensor(t) => t.tensor()?.f_unsqueeze(-1)?.into(),
        })
    }

    fn cumsums(x: &Tensor) -> Result<Tensor> {
        let k = *x.size().last().unwrap_or(&0);
        Ok(x.f_narrow(-1, 0, k - 1)?.f_cumsum(-1, None::<Kind>)?)
    }
}

impl Transform for SimplexToOrderedTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = Self::cumsums(x)?;
        Ok(s.f_logit(None)?.f_add(&self.anchor()?.like(x)?)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let s = y.f_sub(&self.anchor()?.like(y)?)?.f_sigmoid()?;
        let k1 = *s.size().last().unwrap_or(&0);
        let first = s.f_narrow(-1, 0, 1)?;
        let diffs = s
            .f_narrow(-1, 1, k1 - 1)?
            .f_sub(&s.f_narrow(-1, 0, k1 - 1)?)?;
        let last = s.f_narrow(-1, k1 - 1, 1)?.f_neg()?.f_add_scalar(1.0)?;
        Ok(Tensor::f_cat(&[first, diffs, last], -1)?)
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // dy_i/ds_i = 1 / (s_i (1 - s_i)), and s is triangular in x with a unit diagonal.
        let s = Self::cumsums(x)?;
        Ok(s.f_log()?
            .f_add(&s.f_neg()?.f_log1p()?)?
            .f_neg()?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?)
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn forward_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape.to_vec();
        if let Some(l) = s.last_mut() {
            *l -= 1;
        }
        s
    }
    fn inverse_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape.to_vec();
        if let Some(l) = s.last_mut() {
            *l += 1;
        }
        s
    }
    fn codomain(&self) -> Constraint {
        Constraint::OrderedVector
    }
}

/// `y = x / ‖x‖_p` along the last dim, onto the unit sphere for `p = 2` (Pyro's `Normalize`;
/// `transform_to(sphere)`). Not bijective: `inverse` returns `y`, and there is no log-Jacobian.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeTransform {
    p: f64,
}

impl NormalizeTransform {
    /// Normalization in the `p`-norm.
    pub fn new(p: f64) -> Self {
        NormalizeTransform { p }
    }
}

impl Default for NormalizeTransform {
    fn default() -> Self {
        NormalizeTransform { p: 2.0 }
    }
}

impl Transform for NormalizeTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let norm = x
            .f_norm_scalaropt_dim(self.p, [-1i64].as_slice(), true)?
            .f_clamp_min(crate::distributions::finfo_tiny(x.kind()))?;
        Ok(x.f_div(&norm)?)
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.shallow_clone())
    }
    fn log_abs_det_jacobian(&self, _x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Err(Error::Unsupported(
            "NormalizeTransform is not bijective and has no log-Jacobian".into(),
        ))
    }
    fn domain_event_dim(&self) -> usize {
        1
    }
    fn codomain(&self) -> Constraint {
        Constraint::Sphere
    }
}

/// Moves `dim` (negative) to the last place and back.
fn along<F: Fn(&Tensor) -> Result<Tensor>>(x: &Tensor, dim: i64, f: F) -> Result<Tensor> {
    if dim == -1 {
        return f(x);
    }
    Ok(f(&x.f_transpose(dim, -1)?)?.f_transpose(dim, -1)?)
}

/// The orthonormal DCT-II matrix `C[k, n] = s_k cos(π (n + ½) k / N)`.
fn dct_matrix(n: i64, like: &Tensor) -> Result<Tensor> {
    let opts = (Kind::Double, like.device());
    let k = Tensor::f_arange(n, opts)?.f_unsqueeze(1)?;
    let i = Tensor::f_arange(n, opts)?
        .f_add_scalar(0.5)?
        .f_unsqueeze(0)?;
    let c = k
        .f_mul(&i)?
        .f_mul_scalar(std::f64::consts::PI / n as f64)?
        .f_cos()?;
    let mut s = vec![(2.0 / n as f64).sqrt(); n as usize];
    if let Some(s0) = s.first_mut() {
        *s0 = (1.0 / n as f64).sqrt();
    }
    let s = Tensor::f_from_slice(&s)?
        .f_to_device(like.device())?
        .f_unsqueeze(1)?;
    let kind = if crate::distributions::is_float(like.kind()) {
        like.kind()
    } else {
        Kind::Double
    };
    Ok(c.f_mul(&s)?.f_to_kind(kind)?)
}

/// The orthonormal discrete cosine transform of type II along `dim` (Pyro's
/// `DiscreteCosineTransform`). With `smooth` `s`, coefficient `k` is then multiplied by
/// `(k + ½)^s`, normalized to a unit geometric mean so that the Jacobian stays 1: `s = 1` maps
/// Brownian noise to white noise.
#[derive(Debug, Clone, Copy)]
pub struct DiscreteCosineTransform {
    dim: i64,
    smooth: f64,
}

impl DiscreteCosineTransform {
    /// Along `dim` (negative), with smoothing `smooth` (0: plain orthonormal DCT).
    pub fn new(dim: i64, smooth: f64) -> Result<Self> {
        if dim >= 0 {
            return Err(Error::Invalid(format!(
                "DiscreteCosineTransform: dim must be negative (counted from the right), got {dim}"
            )));
        }
        Ok(DiscreteCosineTransform { dim, smooth })
    }

    fn weight(&self, n: i64, like: &Tensor) -> Result<Option<Tensor>> {
        if self.smooth == 0.0 {
            return Ok(None);
        }
        let f = Tensor::f_linspace(0.5, n as f64 - 0.5, n, (like.kind(), like.device()))?
            .f_pow_tensor_scalar(self.smooth)?;
        let gm = f.f_log()?.f_mean(None::<Kind>)?.f_exp()?;
        Ok(Some(f.f_div(&gm)?))
    }
}

impl Transform for DiscreteCosineTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        along(x, self.dim, |x| {
            let n = *x.size().last().unwrap_or(&0);
            let y = x.f_matmul(&dct_matrix(n, x)?.f_transpose(0, 1)?)?;
            match self.weight(n, x)? {
                Some(w) => Ok(y.f_mul(&w)?),
                None => Ok(y),
            }
        })
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        along(y, self.dim, |y| {
            let n = *y.size().last().unwrap_or(&0);
            let y = match self.weight(n, y)? {
                Some(w) => y.f_div(&w)?,
                None => y.shallow_clone(),
            };
            Ok(y.f_matmul(&dct_matrix(n, &y)?)?)
        })
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let s = x.size();
        let event = (-self.dim) as usize;
        Ok(Tensor::f_zeros(
            &s[..s.len().saturating_sub(event)],
            (x.kind(), x.device()),
        )?)
    }
    fn domain_event_dim(&self) -> usize {
        (-self.dim) as usize
    }
}

const ROOT_HALF: f64 = std::f64::consts::FRAC_1_SQRT_2;

fn haar(x: &Tensor) -> Result<Tensor> {
    let n = *x.size().last().unwrap_or(&0) / 2;
    if n == 0 {
        return Ok(x.shallow_clone());
    }
    let even = x.f_slice(-1, 0, 2 * n, 2)?;
    let odd = x.f_slice(-1, 1, 2 * n, 2)?;
    let end = x.f_slice(-1, 2 * n, *x.size().last().unwrap_or(&0), 1)?;
    let hi = even.f_sub(&odd)?.f_mul_scalar(ROOT_HALF)?;
    let mut lo = even.f_add(&odd)?.f_mul_scalar(ROOT_HALF)?;
    if n >= 2 {
        lo = haar(&lo)?;
    }
    Ok(Tensor::f_cat(&[lo, hi, end], -1)?)
}

fn inverse_haar(x: &Tensor) -> Result<Tensor> {
    let len = *x.size().last().unwrap_or(&0);
    let n = len / 2;
    if n == 0 {
        return Ok(x.shallow_clone());
    }
    let mut lo = x.f_narrow(-1, 0, n)?;
    let hi = x.f_narrow(-1, n, n)?;
    let end = x.f_narrow(-1, 2 * n, len - 2 * n)?;
    if n >= 2 {
        lo = inverse_haar(&lo)?;
    }
    let even = lo.f_add(&hi)?.f_mul_scalar(ROOT_HALF)?;
    let odd = lo.f_sub(&hi)?.f_mul_scalar(ROOT_HALF)?;
    let mut shape = even.size();
    if let Some(l) = shape.last_mut() {
        *l *= 2;
    }
    let interleaved = Tensor::f_stack(&[even, odd], -1)?.f_reshape(shape.as_slice())?;
    Ok(Tensor::f_cat(&[interleaved, end], -1)?)
}

/// The orthonormal Haar wavelet transform along `dim` (Pyro's `HaarTransform`); with `flip`, the
/// input is reversed along `dim` first. Volume-preserving.
#[derive(Debug, Clone, Copy)]
pub struct HaarTransform {
    dim: i64,
    flip: bool,
}

impl HaarTransform {
    /// Along `dim` (negative), reversed first if `flip`.
    pub fn new(dim: i64, flip: bool) -> Result<Self> {
        if dim >= 0 {
            return Err(Error::Invalid(format!(
                "HaarTransform: dim must be negative (counted from the right), got {dim}"
            )));
        }
        Ok(HaarTransform { dim, flip })
    }
}

impl Transform for HaarTransform {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        along(x, self.dim, |x| {
            if self.flip {
                haar(&x.f_flip([-1].as_slice())?)
            } else {
                haar(x)
            }
        })
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        along(y, self.dim, |y| {
            let x = inverse_haar(y)?;
            if self.flip {
                Ok(x.f_flip([-1].as_slice())?)
            } else {
                Ok(x)
            }
        })
    }
    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let s = x.size();
        let event = (-self.dim) as usize;
        Ok(Tensor::f_zeros(
            &s[..s.len().saturating_sub(event)],
            (x.kind(), x.device()),
        )?)
    }
    fn domain_event_dim(&self) -> usize {
        (-self.dim) as usize
    }
}
