use tch::Tensor;

use super::util::{scalar_family, uniform_open};
use super::{broadcast_args, check_positive, extended_shape, Arg, Distribution};
use crate::constraints::Constraint;
use crate::error::Result;

/// Pyro's `AsymmetricLaplace`: a Laplace distribution with different scales left and right of
/// the mode, `left = scale · asymmetry` and `right = scale / asymmetry`.
///
/// Density: `p(x) = exp(-|x - loc| / side) / (left + right)` with `side` the scale of `x`'s side.
/// Parameters: `loc` real, `scale > 0`, `asymmetry > 0`. Support: the reals. Reparameterized.
///
/// ```
/// use ppl::prelude::*;
/// # fn main() -> ppl::Result<()> {
/// let d = AsymmetricLaplace::new(0.0, 1.0, 2.0)?;
/// // Left scale 2, right scale 0.5: p(0) = 1 / 2.5.
/// let lp = d.log_prob(&Tensor::from(0.0f64))?;
/// assert!((lp.double_value(&[]) - 0.4f64.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsymmetricLaplace {
    loc: Tensor,
    scale: Tensor,
    asymmetry: Tensor,
    batch_shape: Vec<i64>,
}

impl AsymmetricLaplace {
    /// `AsymmetricLaplace(loc, scale, asymmetry)`.
    pub fn new(
        loc: impl Into<Arg>,
        scale: impl Into<Arg>,
        asymmetry: impl Into<Arg>,
    ) -> Result<AsymmetricLaplace> {
        let [loc, scale, asymmetry] = broadcast_args(
            "AsymmetricLaplace",
            [loc.into(), scale.into(), asymmetry.into()],
        )?;
        check_positive("AsymmetricLaplace", "scale", &scale)?;
        check_positive("AsymmetricLaplace", "asymmetry", &asymmetry)?;
        let batch_shape = loc.size();
        Ok(AsymmetricLaplace {
            loc,
            scale,
            asymmetry,
            batch_shape,
        })
    }

    fn left(&self) -> Result<Tensor> {
        Ok(self.scale.f_mul(&self.asymmetry)?)
    }

    fn right(&self) -> Result<Tensor> {
        Ok(self.scale.f_div(&self.asymmetry)?)
    }
}

impl Distribution for AsymmetricLaplace {
    scalar_family!("AsymmetricLaplace"; loc, scale, asymmetry);
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        tch::no_grad(|| self.rsample(sample_shape))
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        // loc - left · Exp(1) + right · Exp(1)
        let shape = extended_shape(self, sample_shape);
        let u = uniform_open(&shape, &self.loc)?.f_log()?.f_neg()?;
        let v = uniform_open(&shape, &self.loc)?.f_log()?.f_neg()?;
        Ok(self
            .loc
            .f_sub(&self.left()?.f_mul(&u)?)?
            .f_add(&self.right()?.f_mul(&v)?)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let z = value.f_sub(&self.loc)?;
        let side = self.left()?.f_where_self(&z.f_lt(0.0)?, &self.right()?)?;
        Ok(z.f_abs()?
            .f_div(&side)?
            .f_neg()?
            .f_sub(&self.left()?.f_add(&self.right()?)?.f_log()?)?)
    }
    fn mean(&self) -> Result<Tensor> {
        let (l, r) = (self.left()?, self.right()?);
        Ok(self
            .loc
            .f_add(&r.f_square()?.f_sub(&l.f_square()?)?.f_div(&l.f_add(&r)?)?)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let (l, r) = (self.left()?, self.right()?);
        let total = l.f_add(&r)?;
        let p = l.f_div(&total)?;
        let q = r.f_div(&total)?;
        Ok(p.f_mul(&l.f_square()?)?
            .f_add(&q.f_mul(&r.f_square()?)?)?
            .f_add(&p.f_mul(&q)?.f_mul(&total.f_square()?)?)?)
    }
    fn cdf(&self, value: &Tensor) -> Result<Tensor> {
        let (l, r) = (self.left()?, self.right()?);
        let total = l.f_add(&r)?;
        let z = value.f_sub(&self.loc)?;
        // Left of the mode: l/(l+r) exp(z/l); right: 1 - r/(l+r) exp(-z/r).
        let below = l
            .f_div(&total)?
            .f_mul(&z.f_div(&l)?.f_clamp_max(0.0)?.f_exp()?)?;
        let above = r
            .f_div(&total)?
            .f_mul(&z.f_neg()?.f_div(&r)?.f_clamp_max(0.0)?.f_exp()?)?
            .f_neg()?
            .f_add_scalar(1.0)?;
        Ok(below.f_where_self(&z.f_lt(0.0)?, &above)?)
    }
}
