//! KL divergences between different families, the pairs torch registers with a closed form, by
//! `KL(p ‖ q) = -H(p) - E_p[log q]`: each `q` needs a few expectations under `p` (mean and
//! variance for a normal `q`; `E[log x]` for a gamma or beta `q`; `E[exp(-x/β)]` for a Gumbel
//! `q`). Where `p`'s support is not inside `q`'s, the divergence is infinite, as torch returns it.

use std::f64::consts::PI;

use tch::Tensor;

use super::util::{lbeta, EULER_GAMMA};
use super::{Beta, Distribution, Exponential, Gamma, Gumbel, Laplace, Normal, Uniform};
use crate::error::Result;

/// `x log x`, 0 at 0.
fn xlogx(x: &Tensor) -> Result<Tensor> {
    let v = x.f_mul(&x.f_log()?)?;
    Ok(v.f_masked_fill(&x.f_eq(0.0)?, 0.0)?)
}

/// `E[log x]` for `x ~ U(a, b)`, `0 <= a < b`.
fn uniform_e_log(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let w = b.f_sub(a)?;
    Ok(xlogx(b)?.f_sub(&xlogx(a)?)?.f_div(&w)?.f_sub_scalar(1.0)?)
}

/// `E_p[log x]` where `p` is on the positive reals (or `None`).
fn e_log(p: &dyn Distribution) -> Option<Result<Tensor>> {
    let a = p.as_any()?;
    if let Some(p) = a.downcast_ref::<Exponential>() {
        return Some((|| {
            Ok(p.rate().f_log()?.f_neg()?.f_sub_scalar(EULER_GAMMA)?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Gamma>() {
        return Some((|| {
            Ok(p.concentration().f_digamma()?.f_sub(&p.rate().f_log()?)?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Beta>() {
        return Some((|| {
            let (x, y) = (p.concentration1(), p.concentration0());
            Ok(x.f_digamma()?.f_sub(&x.f_add(y)?.f_digamma()?)?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Uniform>() {
        return Some(uniform_e_log(p.low(), p.high()));
    }
    None
}

/// `E_p[exp(-x/β)]` (the moment generating function at `-1/β`).
fn mgf_neg(p: &dyn Distribution, beta: &Tensor) -> Option<Result<Tensor>> {
    let a = p.as_any()?;
    if let Some(p) = a.downcast_ref::<Normal>() {
        return Some((|| {
            let t = beta.f_reciprocal()?;
            Ok(p.loc()
                .f_neg()?
                .f_mul(&t)?
                .f_add(&p.scale().f_mul(&t)?.f_square()?.f_mul_scalar(0.5)?)?
                .f_exp()?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Exponential>() {
        return Some((|| {
            let l = p.rate();
            Ok(l.f_div(&l.f_add(&beta.f_reciprocal()?)?)?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Gamma>() {
        return Some((|| {
            let r = p.rate();
            Ok(r.f_div(&r.f_add(&beta.f_reciprocal()?)?)?
                .f_pow(p.concentration())?)
        })());
    }
    if let Some(p) = a.downcast_ref::<Uniform>() {
        return Some((|| {
            let (lo, hi) = (p.low(), p.high());
            let e = |x: &Tensor| -> Result<Tensor> { Ok(x.f_neg()?.f_div(beta)?.f_exp()?) };
            Ok(e(lo)?.f_sub(&e(hi)?)?.f_mul(beta)?.f_div(&hi.f_sub(lo)?)?)
        })());
    }
    None
}

/// The lower and upper ends of a family's support, for the containment rule.
fn support_ends(d: &dyn Distribution) -> Option<(Tensor, Tensor)> {
    let a = d.as_any()?;
    let full = |lo: f64, hi: f64, like: &Tensor| -> Option<(Tensor, Tensor)> {
        Some((like.f_full_like(lo).ok()?, like.f_full_like(hi).ok()?))
    };
    if let Some(d) = a.downcast_ref::<Normal>() {
        return full(f64::NEG_INFINITY, f64::INFINITY, d.loc());
    }
    if let Some(d) = a.downcast_ref::<Laplace>() {
        return full(f64::NEG_INFINITY, f64::INFINITY, d.loc());
    }
    if let Some(d) = a.downcast_ref::<Gumbel>() {
        return full(f64::NEG_INFINITY, f64::INFINITY, d.loc());
    }
    if let Some(d) = a.downcast_ref::<Exponential>() {
        return full(0.0, f64::INFINITY, d.rate());
    }
    if let Some(d) = a.downcast_ref::<Gamma>() {
        return full(0.0, f64::INFINITY, d.rate());
    }
    if let Some(d) = a.downcast_ref::<Beta>() {
        return full(0.0, 1.0, d.concentration1());
    }
    if let Some(d) = a.downcast_ref::<Uniform>() {
        return Some((d.low().shallow_clone(), d.high().shallow_clone()));
    }
    None
}

/// `-E_p[log q]` for the `q` families handled, or `None`.
fn cross_entropy(p: &dyn Distribution, q: &dyn Distribution) -> Option<Result<Tensor>> {
    let qa = q.as_any()?;
    let half_log_2pi = 0.5 * (2.0 * PI).ln();
    if let Some(q) = qa.downcast_ref::<Normal>() {
        // log σ + ½ log 2π + (Var_p + (E_p x - μ)²) / (2σ²)
        return Some((|| {
            let (mu, sigma) = (q.loc(), q.scale());
            let sq = p.mean()?.f_sub(mu)?.f_square()?.f_add(&p.variance()?)?;
            Ok(sigma
                .f_log()?
                .f_add_scalar(half_log_2pi)?
                .f_add(&sq.f_div(&sigma.f_square()?.f_mul_scalar(2.0)?)?)?)
        })());
    }
    if let Some(q) = qa.downcast_ref::<Gumbel>() {
        // log β + (E_p x - m)/β + e^(m/β) E_p[e^(-x/β)]
        let mgf = mgf_neg(p, q.scale())?;
        return Some((|| {
            let (m, b) = (q.loc(), q.scale());
            Ok(b.f_log()?
                .f_add(&p.mean()?.f_sub(m)?.f_div(b)?)?
                .f_add(&m.f_div(b)?.f_exp()?.f_mul(&mgf?)?)?)
        })());
    }
    if let Some(q) = qa.downcast_ref::<Gamma>() {
        // -α log r + lgamma(α) - (α - 1) E_p[log x] + r E_p[x]
        let el = e_log(p)?;
        return Some((|| {
            let (al, r) = (q.concentration(), q.rate());
            Ok(al
                .f_mul(&r.f_log()?)?
                .f_neg()?
                .f_add(&al.f_lgamma()?)?
                .f_sub(&al.f_sub_scalar(1.0)?.f_mul(&el?)?)?
                .f_add(&r.f_mul(&p.mean()?)?)?)
        })());
    }
    if let Some(q) = qa.downcast_ref::<Exponential>() {
        // -log λ + λ E_p[x]
        return Some((|| {
            Ok(q.rate()
                .f_log()?
                .f_neg()?
                .f_add(&q.rate().f_mul(&p.mean()?)?)?)
        })());
    }
    if let Some(q) = qa.downcast_ref::<Beta>() {
        // lbeta(α, β) - (α - 1) E log x - (β - 1) E log(1 - x), for a uniform p on [a, b].
        let u = p.as_any()?.downcast_ref::<Uniform>()?;
        return Some((|| {
            let (al, be) = (q.concentration1(), q.concentration0());
            let elx = uniform_e_log(u.low(), u.high())?;
            let one_minus = |t: &Tensor| -> Result<Tensor> { Ok(t.f_neg()?.f_add_scalar(1.0)?) };
            let el1mx = uniform_e_log(&one_minus(u.high())?, &one_minus(u.low())?)?;
            Ok(lbeta(al, be)?
                .f_sub(&al.f_sub_scalar(1.0)?.f_mul(&elx)?)?
                .f_sub(&be.f_sub_scalar(1.0)?.f_mul(&el1mx)?)?)
        })());
    }
    if let Some(q) = qa.downcast_ref::<Uniform>() {
        return Some((|| Ok(q.high().f_sub(q.low())?.f_log()?))());
    }
    if let Some(q) = qa.downcast_ref::<Laplace>() {
        // log 2b + E_p|x - m| / b, for a normal p (the folded normal's mean).
        let n = p.as_any()?.downcast_ref::<Normal>()?;
        return Some((|| {
            let (m, b) = (q.loc(), q.scale());
            let d = n.loc().f_sub(m)?;
            let s = n.scale();
            let folded = s
                .f_mul_scalar((2.0 / PI).sqrt())?
                .f_mul(
                    &d.f_square()?
                        .f_div(&s.f_square()?.f_mul_scalar(-2.0)?)?
                        .f_exp()?,
                )?
                .f_add(
                    &d.f_mul(
                        &d.f_div(s)?
                            .f_mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
                            .f_erf()?,
                    )?,
                )?;
            Ok(b.f_mul_scalar(2.0)?.f_log()?.f_add(&folded.f_div(b)?)?)
        })());
    }
    None
}

/// `KL(p ‖ q)` for a pair of different families handled here, or `None`.
pub(super) fn cross_family(p: &dyn Distribution, q: &dyn Distribution) -> Option<Result<Tensor>> {
    let ends = support_ends(p).zip(support_ends(q));
    let Some(ce) = cross_entropy(p, q) else {
        // No closed form; still infinite where p's support leaves q's everywhere.
        let ((pl, ph), (ql, qh)) = ends?;
        return (|| -> Result<Option<Tensor>> {
            let outside = pl.f_lt_tensor(&ql)?.f_logical_or(&ph.f_gt_tensor(&qh)?)?;
            if outside.f_all()?.f_int64_value(&[])? == 0 {
                return Ok(None);
            }
            Ok(Some(
                outside.f_to_kind(pl.kind())?.f_full_like(f64::INFINITY)?,
            ))
        })()
        .transpose();
    };
    Some((|| {
        let kl = ce?.f_sub(&p.entropy()?)?;
        let Some(((pl, ph), (ql, qh))) = ends else {
            return Ok(kl);
        };
        // Infinite where p's support leaves q's.
        let outside = pl.f_lt_tensor(&ql)?.f_logical_or(&ph.f_gt_tensor(&qh)?)?;
        let kl = kl.f_add(&outside.f_zeros_like()?.f_to_kind(kl.kind())?)?;
        Ok(kl.f_masked_fill(&outside, f64::INFINITY)?)
    })())
}
