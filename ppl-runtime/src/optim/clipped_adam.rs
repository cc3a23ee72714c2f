//! Pyro's ClippedAdam (`pyro.optim.ClippedAdam`).

use indexmap::IndexMap;
use tch::Tensor;

use super::adam::AdamState;
use super::host::{Bufs, HostBufs, HostFloat};
use super::per_param::{per_param_optimizer, Rule};
use crate::error::Result;

/// Settings of [`ClippedAdam`]; the defaults are Pyro's.
#[derive(Clone, Debug, PartialEq)]
pub struct ClippedAdamConfig {
    /// Initial learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the square root of the second moment (default `1e-8`).
    pub eps: f64,
    /// L2 penalty: `weight_decay * param` is added to the (clipped) gradient (default `0`).
    pub weight_decay: f64,
    /// Each gradient is clamped elementwise to `[-clip_norm, clip_norm]` (default `10`).
    pub clip_norm: f64,
    /// Learning-rate decay: every step multiplies the learning rate by `lrd`, before the update
    /// (default `1`, no decay). After `n` steps the rate is `lr * lrd^n`.
    pub lrd: f64,
}

impl Default for ClippedAdamConfig {
    fn default() -> Self {
        ClippedAdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 10.0,
            lrd: 1.0,
        }
    }
}

pub(crate) struct ClippedAdamRule;

/// Pyro's arithmetic on the host for a small CPU param (see `host.rs`).
fn host_update<T: HostFloat>(
    c: &ClippedAdamConfig,
    step_size: f64,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let weight_decay = T::of(c.weight_decay);
    let (b1, b2) = c.betas;
    let (beta1, w1) = (T::of(b1), T::of(1.0 - b1));
    let (beta2, w2) = (T::of(b2), T::of(1.0 - b2));
    let eps = T::of(c.eps);
    let neg_step = T::of(-step_size);
    let wd = c.weight_decay != 0.0;
    let (exp_avg, exp_avg_sq) = h.bufs.split_at_mut(1);
    let (exp_avg, exp_avg_sq) = (&mut exp_avg[0], &mut exp_avg_sq[0]);
    for i in 0..h.p.len() {
        let p = h.p[i];
        let mut g = h.g[i];
        if wd {
            g = g + weight_decay * p;
        }
        let m = exp_avg[i] * beta1;
        let m = m + w1 * g;
        exp_avg[i] = m;
        let v = exp_avg_sq[i] * beta2;
        let v = v + w2 * g * g;
        exp_avg_sq[i] = v;
        let denom = v.sqrt() + eps;
        h.p[i] = p + neg_step * m / denom;
    }
    h.write(p)
}

impl Rule for ClippedAdamRule {
    type Config = ClippedAdamConfig;
    type State = AdamState;
    const NAME: &'static str = "ClippedAdam";

    fn lr(config: &ClippedAdamConfig) -> f64 {
        config.lr
    }

    fn before_step(config: &ClippedAdamConfig, lr: &mut f64) {
        *lr *= config.lrd;
    }

    fn init(_config: &ClippedAdamConfig, p: &Tensor) -> Result<AdamState> {
        AdamState::new(p, false)
    }

    fn update(
        c: &ClippedAdamConfig,
        lr: f64,
        st: &mut AdamState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        // Pyro clamps the param's gradient in place.
        let mut grad = grad;
        let _ = grad.f_clamp_(-c.clip_norm, c.clip_norm)?;
        st.bufs.place(p, &grad)?;
        st.step += 1;
        let (b1, b2) = c.betas;
        // Pyro keeps `step` as a Python int.
        let step = st.step as f64;
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let step_size = lr * bias_correction2.sqrt() / bias_correction1;
        let (exp_avg, exp_avg_sq) = match &mut st.bufs {
            Bufs::F32(h) => return host_update(c, step_size, h, p, &grad),
            Bufs::F64(h) => return host_update(c, step_size, h, p, &grad),
            Bufs::Tensors(ts) => ts.split_at_mut(1),
        };
        let (exp_avg, exp_avg_sq) = (&mut exp_avg[0], &mut exp_avg_sq[0]);
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        let _ = exp_avg.f_mul_scalar_(b1)?;
        let _ = exp_avg.f_add_(&grad.f_mul_scalar(1.0 - b1)?)?;
        let _ = exp_avg_sq.f_mul_scalar_(b2)?;
        let _ = exp_avg_sq.f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - b2)?)?;
        let mut denom = exp_avg_sq.f_sqrt()?;
        let _ = denom.f_add_scalar_(c.eps)?;
        let _ = p.f_addcdiv_(&exp_avg.f_mul_scalar(-step_size)?, &denom)?;
        Ok(())
    }

    fn save(st: &AdamState) -> Result<Vec<(&'static str, Tensor)>> {
        st.save()
    }

    fn load(
        _config: &ClippedAdamConfig,
        fields: &mut IndexMap<String, Tensor>,
    ) -> Result<AdamState> {
        AdamState::load(fields, false)
    }
}

per_param_optimizer!(
    /// Pyro's ClippedAdam: Adam with each gradient clamped elementwise to `±clip_norm` and the
    /// learning rate multiplied by `lrd` at every step, with the arithmetic of
    /// `pyro/optim/clipped_adam.py` (the bias corrections are folded into the step size and `eps`
    /// is added to the uncorrected `sqrt(exp_avg_sq)`). One state and learning rate per param
    /// name; the rate decays on every step the param takes part in, even without a gradient, as in
    /// Pyro.
    ClippedAdam,
    ClippedAdamRule,
    ClippedAdamConfig
);
