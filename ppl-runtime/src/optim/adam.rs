//! Adam, with the arithmetic of `torch.optim.Adam` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

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

/// Adam's per-param state (torch's `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).
pub(crate) struct AdamState {
    step: i64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Option<Tensor>,
}

impl AdamState {
    pub(crate) fn new(p: &Tensor, amsgrad: bool) -> Result<Self> {
        Ok(AdamState {
            step: 0,
            exp_avg: p.f_zeros_like()?,
            exp_avg_sq: p.f_zeros_like()?,
            max_exp_avg_sq: if amsgrad {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
        })
    }

    pub(crate) fn save(&self) -> Vec<(&'static str, Tensor)> {
        let mut out = vec![
            ("step", scalar_i64(self.step)),
            ("exp_avg", self.exp_avg.shallow_clone()),
            ("exp_avg_sq", self.exp_avg_sq.shallow_clone()),
        ];
        if let Some(m) = &self.max_exp_avg_sq {
            out.push(("max_exp_avg_sq", m.shallow_clone()));
        }
        out
    }

    pub(crate) fn load(fields: &mut IndexMap<String, Tensor>, amsgrad: bool) -> Result<Self> {
        Ok(AdamState {
            step: take_step(fields)?,
            exp_avg: take(fields, "exp_avg")?,
            exp_avg_sq: take(fields, "exp_avg_sq")?,
            max_exp_avg_sq: if amsgrad {
                Some(take(fields, "max_exp_avg_sq")?)
            } else {
                None
            },
        })
    }
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
    st.step += 1;
    let mut grad = grad;
    if c.weight_decay != 0.0 {
        if decoupled {
            let _ = p.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
        } else {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
    }
    let (b1, b2) = c.betas;
    let _ = st.exp_avg.f_lerp_(&grad, 1.0 - b1)?;
    let _ = st.exp_avg_sq.f_mul_scalar_(b2)?;
    let _ = st
        .exp_avg_sq
        .f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - b2)?)?;
    // torch keeps `step` as a float tensor and computes these in Python floats.
    let step = st.step as f64;
    let bias_correction1 = 1.0 - b1.powf(step);
    let bias_correction2 = 1.0 - b2.powf(step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);
    let second = match &st.max_exp_avg_sq {
        Some(m) => {
            let _ = m.f_maximum_out(m, &st.exp_avg_sq)?;
            m
        }
        None => &st.exp_avg_sq,
    };
    let mut denom = second.f_sqrt()?;
    let _ = denom.f_div_scalar_(bias_correction2_sqrt)?;
    let _ = denom.f_add_scalar_(c.eps)?;
    // `addcdiv_(exp_avg, denom, value=-step_size)` computes `p + (value * exp_avg) / denom`.
    let _ = p.f_addcdiv_(&st.exp_avg.f_mul_scalar(-step_size)?, &denom)?;
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

    fn save(state: &AdamState) -> Vec<(&'static str, Tensor)> {
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
