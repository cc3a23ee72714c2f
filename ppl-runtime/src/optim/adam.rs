//! Adam, with the arithmetic of `torch.optim.Adam` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::host::{lerp, maximum, Bufs, HostBufs, HostFloat};
use super::per_param::{per_param_optimizer, scalar_i64, take, take_step, Rule};
use crate::error::Result;

/// Settings of [`Adam`]; the defaults are torch's.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (default `1e-8`).
    pub eps: f64,
    /// L2 penalty: `weight_decay * param` is added to the gradient (default `0`).
    pub weight_decay: f64,
    /// Use the maximum of all second-moment estimates so far (AMSGrad; default `false`).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

/// Adam's per-param state: torch's `step` and the buffers `exp_avg`, `exp_avg_sq` and, with
/// AMSGrad, `max_exp_avg_sq`, in that order.
pub(crate) struct AdamState {
    pub(crate) step: i64,
    pub(crate) bufs: Bufs,
}

const NAMES: [&str; 3] = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

impl AdamState {
    pub(crate) fn new(p: &Tensor, amsgrad: bool) -> Result<Self> {
        let n = if amsgrad { 3 } else { 2 };
        Ok(AdamState {
            step: 0,
            bufs: Bufs::new(p, &[0.0; 3][..n])?,
        })
    }

    pub(crate) fn save(&self) -> Result<Vec<(&'static str, Tensor)>> {
        let mut out = vec![("step", scalar_i64(self.step))];
        out.extend(NAMES.into_iter().zip(self.bufs.tensors()?));
        Ok(out)
    }

    pub(crate) fn load(fields: &mut IndexMap<String, Tensor>, amsgrad: bool) -> Result<Self> {
        let n = if amsgrad { 3 } else { 2 };
        let bufs = NAMES[..n]
            .iter()
            .map(|name| take(fields, name))
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamState {
            step: take_step(fields)?,
            bufs: Bufs::Tensors(bufs),
        })
    }
}

/// torch's single-tensor Adam on the host, operation by operation (see `host.rs`).
#[allow(clippy::too_many_arguments)]
fn host_update<T: HostFloat>(
    c: &AdamConfig,
    decoupled: bool,
    lr: f64,
    step_size: f64,
    bias_correction2_sqrt: f64,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let (b1, b2) = c.betas;
    let weight_decay = T::of(c.weight_decay);
    let decay = T::of(1.0 - lr * c.weight_decay);
    let w1 = T::of(1.0 - b1);
    let beta2 = T::of(b2);
    let w2 = T::of(1.0 - b2);
    let bc2 = T::of(bias_correction2_sqrt);
    let eps = T::of(c.eps);
    let neg_step = T::of(-step_size);
    let wd = c.weight_decay != 0.0;
    let (exp_avg, rest) = h.bufs.split_at_mut(1);
    let (exp_avg, (exp_avg_sq, max_exp_avg_sq)) = (&mut exp_avg[0], rest.split_at_mut(1));
    let (exp_avg_sq, mut max_exp_avg_sq) = (&mut exp_avg_sq[0], max_exp_avg_sq.first_mut());
    for i in 0..h.p.len() {
        let mut p = h.p[i];
        let mut g = h.g[i];
        if wd {
            if decoupled {
                p = p * decay;
            } else {
                g = g + weight_decay * p;
            }
        }
        let m = lerp(exp_avg[i], g, w1);
        exp_avg[i] = m;
        let v = exp_avg_sq[i] * beta2;
        let v = v + w2 * g * g;
        exp_avg_sq[i] = v;
        let second = match &mut max_exp_avg_sq {
            Some(mx) => {
                mx[i] = maximum(mx[i], v);
                mx[i]
            }
            None => v,
        };
        let denom = second.sqrt() / bc2 + eps;
        h.p[i] = p + neg_step * m / denom;
    }
    h.write(p)
}

/// One step of torch's single-tensor Adam/AdamW on `p`. `decoupled`: AdamW's weight decay
/// (`p *= 1 - lr * weight_decay`) instead of the L2 term in the gradient.
pub(crate) fn adam_update(
    c: &AdamConfig,
    decoupled: bool,
    lr: f64,
    st: &mut AdamState,
    p: &mut Tensor,
    grad: Tensor,
) -> Result<()> {
    st.bufs.place(p, &grad)?;
    st.step += 1;
    let (b1, b2) = c.betas;
    // torch keeps `step` as a float tensor and computes these in Python floats.
    let step = st.step as f64;
    let bias_correction1 = 1.0 - b1.powf(step);
    let bias_correction2 = 1.0 - b2.powf(step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);
    let ts = match &mut st.bufs {
        Bufs::F32(h) => {
            return host_update(
                c,
                decoupled,
                lr,
                step_size,
                bias_correction2_sqrt,
                h,
                p,
                &grad,
            )
        }
        Bufs::F64(h) => {
            return host_update(
                c,
                decoupled,
                lr,
                step_size,
                bias_correction2_sqrt,
                h,
                p,
                &grad,
            )
        }
        Bufs::Tensors(ts) => ts,
    };
    let mut grad = grad;
    if c.weight_decay != 0.0 {
        if decoupled {
            let _ = p.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
        } else {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
    }
    let (exp_avg, rest) = ts.split_at_mut(1);
    let (exp_avg, (exp_avg_sq, max_exp_avg_sq)) = (&mut exp_avg[0], rest.split_at_mut(1));
    let exp_avg_sq = &mut exp_avg_sq[0];
    let _ = exp_avg.f_lerp_(&grad, 1.0 - b1)?;
    let _ = exp_avg_sq.f_mul_scalar_(b2)?;
    let _ = exp_avg_sq.f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - b2)?)?;
    let second = match max_exp_avg_sq.first() {
        Some(m) => {
            let _ = m.f_maximum_out(m, exp_avg_sq)?;
            m
        }
        None => &*exp_avg_sq,
    };
    let mut denom = second.f_sqrt()?;
    let _ = denom.f_div_scalar_(bias_correction2_sqrt)?;
    let _ = denom.f_add_scalar_(c.eps)?;
    // `addcdiv_(exp_avg, denom, value=-step_size)` computes `p + (value * exp_avg) / denom`.
    let _ = p.f_addcdiv_(&exp_avg.f_mul_scalar(-step_size)?, &denom)?;
    Ok(())
}

pub(crate) struct AdamRule;

impl Rule for AdamRule {
    type Config = AdamConfig;
    type State = AdamState;
    const NAME: &'static str = "Adam";

    fn lr(config: &AdamConfig) -> f64 {
        config.lr
    }

    fn init(config: &AdamConfig, p: &Tensor) -> Result<AdamState> {
        AdamState::new(p, config.amsgrad)
    }

    fn update(
        config: &AdamConfig,
        lr: f64,
        state: &mut AdamState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        adam_update(config, false, lr, state, p, grad)
    }

    fn save(state: &AdamState) -> Result<Vec<(&'static str, Tensor)>> {
        state.save()
    }

    fn load(config: &AdamConfig, fields: &mut IndexMap<String, Tensor>) -> Result<AdamState> {
        AdamState::load(fields, config.amsgrad)
    }
}

per_param_optimizer!(
    /// Adam (Kingma and Ba, 2015) with the arithmetic of `torch.optim.Adam`, one state per param
    /// name (as Pyro's `pyro.optim.Adam`, which makes one torch optimizer per param).
    ///
    /// ```
    /// use ppl::optim::{Adam, AdamConfig, Optimizer};
    /// use ppl::tch::Tensor;
    ///
    /// # fn main() -> ppl::Result<()> {
    /// // A larger learning rate for baseline params, as in Pyro's `per_param_callable`.
    /// let mut adam = Adam::per_param(|name: &str| AdamConfig {
    ///     lr: if name.starts_with("baseline") { 1e-3 } else { 1e-4 },
    ///     ..Default::default()
    /// });
    /// let x = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
    /// x.square().sum(ppl::tch::Kind::Float).backward();
    /// adam.step(&[("loc".to_string(), x.shallow_clone())])?;
    /// // Adam's first step moves every coordinate by about lr against its gradient's sign.
    /// assert!((x.double_value(&[0]) - (1.0 - 1e-4)).abs() < 1e-6);
    /// # Ok(()) }
    /// ```
    Adam,
    AdamRule,
    AdamConfig
);
