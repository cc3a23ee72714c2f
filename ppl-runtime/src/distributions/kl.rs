//! The KL divergence registry: closed forms `KL(p ‖ q)` for the pairs analytic ELBOs need,
//! dispatched on the concrete types through [`Distribution::as_any`].

use tch::{Kind, Tensor};

use super::multivariate_normal::mahalanobis;
use super::{
    Bernoulli, Beta, Categorical, Delta, Dirichlet, Distribution, Exponential, Gamma, HalfNormal,
    Independent, Laplace, LogNormal, MultivariateNormal, Normal, Poisson,
};
use crate::error::{Error, Result};

/// `KL(p ‖ q) = E_p[log p(x) - log q(x)]`, with shape `broadcast(p.batch_shape, q.batch_shape)`.
///
/// Pairs (each family against itself): Normal, LogNormal, HalfNormal, Laplace, Beta, Gamma,
/// Exponential, Dirichlet, MultivariateNormal, Bernoulli, Categorical, Poisson; across families
/// (torch's registrations with closed forms): Exponential, Gamma, Beta, Laplace, Gumbel and
/// Uniform against Normal; Normal, Exponential, Gamma and Uniform against Gumbel; Exponential,
/// Beta and Uniform against Gamma; Gamma, Beta and Uniform against Exponential; Uniform against
/// Beta; Beta against Uniform; Normal against Laplace; and infinity where `p`'s support leaves
/// `q`'s (Normal against Gamma, say);
/// Independent/Independent (same number of reinterpreted dims, over any of these); and Delta
/// against anything with a log-density (`KL = -log q(v)`, as Pyro). Other pairs are an error.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::distributions::kl_divergence;
/// # fn main() -> ppl::Result<()> {
/// let p = Normal::new(0.0, 1.0)?;
/// let q = Normal::new(1.0, 1.0)?;
/// assert!((kl_divergence(&p, &q)?.double_value(&[]) - 0.5).abs() < 1e-6);
/// # Ok(()) }
/// ```
pub fn kl_divergence(p: &dyn Distribution, q: &dyn Distribution) -> Result<Tensor> {
    let (pa, qa) = (p.as_any(), q.as_any());
    if let Some(d) = pa.and_then(|a| a.downcast_ref::<Delta>()) {
        return Ok(q.log_prob(d.v())?.f_neg()?);
    }
    macro_rules! pair {
        ($t:ty, $f:ident) => {
            if let (Some(p), Some(q)) = (
                pa.and_then(|a| a.downcast_ref::<$t>()),
                qa.and_then(|a| a.downcast_ref::<$t>()),
            ) {
                return $f(p, q);
            }
        };
    }
    pair!(Normal, normal);
    pair!(Beta, beta);
    pair!(Gamma, gamma);
    pair!(Dirichlet, dirichlet);
    pair!(MultivariateNormal, mvn);
    pair!(Independent, independent);
    pair!(LogNormal, log_normal);
    pair!(HalfNormal, half_normal);
    pair!(Laplace, laplace);
    pair!(Exponential, exponential);
    pair!(Poisson, poisson);
    pair!(Bernoulli, bernoulli);
    pair!(Categorical, categorical);
    if let Some(kl) = super::kl_cross::cross_family(p, q) {
        return kl;
    }
    Err(Error::NoKlRule {
        p: p.name(),
        q: q.name(),
    })
}

fn normal(p: &Normal, q: &Normal) -> Result<Tensor> {
    normal_kl(p.loc(), p.scale(), q.loc(), q.scale())
}

fn normal_kl(pm: &Tensor, ps: &Tensor, qm: &Tensor, qs: &Tensor) -> Result<Tensor> {
    let var_ratio = ps.f_div(qs)?.f_square()?;
    let t1 = pm.f_sub(qm)?.f_div(qs)?.f_square()?;
    Ok(var_ratio
        .f_add(&t1)?
        .f_sub_scalar(1.0)?
        .f_sub(&var_ratio.f_log()?)?
        .f_mul_scalar(0.5)?)
}

fn beta(p: &Beta, q: &Beta) -> Result<Tensor> {
    let (pa, pb, qa, qb) = (
        p.concentration1(),
        p.concentration0(),
        q.concentration1(),
        q.concentration0(),
    );
    let (sp, sq) = (pa.f_add(pb)?, qa.f_add(qb)?);
    let t1 = qa
        .f_lgamma()?
        .f_add(&qb.f_lgamma()?)?
        .f_add(&sp.f_lgamma()?)?;
    let t2 = pa
        .f_lgamma()?
        .f_add(&pb.f_lgamma()?)?
        .f_add(&sq.f_lgamma()?)?;
    let t3 = pa.f_sub(qa)?.f_mul(&pa.f_digamma()?)?;
    let t4 = pb.f_sub(qb)?.f_mul(&pb.f_digamma()?)?;
    let t5 = sq.f_sub(&sp)?.f_mul(&sp.f_digamma()?)?;
    Ok(t1.f_sub(&t2)?.f_add(&t3)?.f_add(&t4)?.f_add(&t5)?)
}

fn gamma(p: &Gamma, q: &Gamma) -> Result<Tensor> {
    let (pa, pr, qa, qr) = (p.concentration(), p.rate(), q.concentration(), q.rate());
    let t1 = qa.f_mul(&pr.f_div(qr)?.f_log()?)?;
    let t2 = qa.f_lgamma()?.f_sub(&pa.f_lgamma()?)?;
    let t3 = pa.f_sub(qa)?.f_mul(&pa.f_digamma()?)?;
    let t4 = qr.f_sub(pr)?.f_mul(&pa.f_div(pr)?)?;
    Ok(t1.f_add(&t2)?.f_add(&t3)?.f_add(&t4)?)
}

fn dirichlet(p: &Dirichlet, q: &Dirichlet) -> Result<Tensor> {
    let (a, b) = (p.concentration(), q.concentration());
    let sum = |t: &Tensor, keep| t.f_sum_dim_intlist(-1, keep, None::<Kind>);
    let (sa, sb) = (sum(a, false)?, sum(b, false)?);
    let t1 = sa.f_lgamma()?.f_sub(&sb.f_lgamma()?)?;
    let t2 = sum(&a.f_lgamma()?.f_sub(&b.f_lgamma()?)?, false)?;
    let t4 = a.f_digamma()?.f_sub(&sum(a, true)?.f_digamma()?)?;
    Ok(t1
        .f_sub(&t2)?
        .f_add(&sum(&a.f_sub(b)?.f_mul(&t4)?, false)?)?)
}

fn mvn(p: &MultivariateNormal, q: &MultivariateNormal) -> Result<Tensor> {
    let k = p.event_shape()[0];
    if q.event_shape()[0] != k {
        return Err(Error::Shape(format!(
            "KL between MultivariateNormals of sizes {k} and {}",
            q.event_shape()[0]
        )));
    }
    let (lp, lq) = (p.scale_tril(), q.scale_tril());
    // tr(Σq⁻¹ Σp) = |Lq⁻¹ Lp|²_F; the Mahalanobis term is |Lq⁻¹ (μq - μp)|².
    let m = lq.f_linalg_solve_triangular(lp, false, true, false)?;
    let tr = m
        .f_square()?
        .f_sum_dim_intlist([-2, -1].as_slice(), false, None::<Kind>)?;
    let maha = mahalanobis(lq, &q.loc().f_sub(p.loc())?)?;
    Ok(tr
        .f_add(&maha)?
        .f_sub_scalar(k as f64)?
        .f_mul_scalar(0.5)?
        .f_add(&q.half_log_det()?)?
        .f_sub(&p.half_log_det()?)?)
}

fn independent(p: &Independent, q: &Independent) -> Result<Tensor> {
    let n = p.reinterpreted_batch_ndims();
    if q.reinterpreted_batch_ndims() != n {
        return Err(Error::Unsupported(format!(
            "KL between Independent distributions with {n} and {} reinterpreted dims",
            q.reinterpreted_batch_ndims()
        )));
    }
    let kl = kl_divergence(&**p.base(), &**q.base())?;
    if n == 0 {
        return Ok(kl);
    }
    let nd = kl.dim() as i64;
    let dims: Vec<i64> = (nd - n as i64..nd).collect();
    Ok(kl.f_sum_dim_intlist(dims.as_slice(), false, None::<Kind>)?)
}

fn log_normal(p: &LogNormal, q: &LogNormal) -> Result<Tensor> {
    // KL is invariant under the shared bijection exp.
    normal_kl(p.loc(), p.scale(), q.loc(), q.scale())
}

fn half_normal(p: &HalfNormal, q: &HalfNormal) -> Result<Tensor> {
    let zero = p.scale().f_zeros_like()?;
    normal_kl(&zero, p.scale(), &zero, q.scale())
}

fn laplace(p: &Laplace, q: &Laplace) -> Result<Tensor> {
    let ratio = p.scale().f_div(q.scale())?;
    let d = p.loc().f_sub(q.loc())?.f_abs()?;
    let t3 = ratio.f_mul(&d.f_div(p.scale())?.f_neg()?.f_exp()?)?;
    Ok(ratio
        .f_log()?
        .f_neg()?
        .f_add(&d.f_div(q.scale())?)?
        .f_add(&t3)?
        .f_sub_scalar(1.0)?)
}

fn exponential(p: &Exponential, q: &Exponential) -> Result<Tensor> {
    let ratio = q.rate().f_div(p.rate())?;
    Ok(ratio.f_sub(&ratio.f_log()?)?.f_sub_scalar(1.0)?)
}

fn poisson(p: &Poisson, q: &Poisson) -> Result<Tensor> {
    let (a, b) = (p.rate(), q.rate());
    Ok(a.f_xlogy(a)?.f_sub(&a.f_xlogy(b)?)?.f_sub(&a.f_sub(b)?)?)
}

/// `Σ p log(p / q)` over the last dim (or elementwise), with `0 log 0 = 0` and `p log(p / 0) = ∞`.
fn discrete_kl(pp: &Tensor, pl: &Tensor, qp: &Tensor, ql: &Tensor) -> Result<Tensor> {
    let t = pp.f_mul(&pl.f_sub(ql)?)?;
    let t = t.f_masked_fill(&qp.f_eq(0.0)?, f64::INFINITY)?;
    Ok(t.f_masked_fill(&pp.f_eq(0.0)?, 0.0)?)
}

fn bernoulli(p: &Bernoulli, q: &Bernoulli) -> Result<Tensor> {
    let (pp, qp) = (p.probs(), q.probs());
    let log = |t: &Tensor, neg: bool| -> Result<Tensor> {
        // log σ(±logits), stable: -softplus(∓logits)
        let l = if neg { t.shallow_clone() } else { t.f_neg()? };
        Ok(l.f_softplus()?.f_neg()?)
    };
    let one = |t: &Tensor| -> Result<Tensor> { Ok(t.f_neg()?.f_add_scalar(1.0)?) };
    let t1 = discrete_kl(pp, &log(p.logits(), false)?, qp, &log(q.logits(), false)?)?;
    let t0 = discrete_kl(
        &one(pp)?,
        &log(p.logits(), true)?,
        &one(qp)?,
        &log(q.logits(), true)?,
    )?;
    Ok(t1.f_add(&t0)?)
}

fn categorical(p: &Categorical, q: &Categorical) -> Result<Tensor> {
    let t = discrete_kl(p.probs(), p.logits(), q.probs(), q.logits())?;
    Ok(t.f_sum_dim_intlist(-1, false, None::<Kind>)?)
}
