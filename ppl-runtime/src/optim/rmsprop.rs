//! RMSprop, with the arithmetic of `torch.optim.RMSprop` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::per_param::{per_param_optimizer, scalar_i64, take, take_step, Rule};
use crate::error::Result;

/// Settings of [`RmsProp`]; the defaults are torch's.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Smoothing constant of the running average of squared gradients (default `0.99`).
    pub alpha: f64,
    /// Added to the denominator for numerical stability (default `1e-8`).
    pub eps: f64,
    /// L2 penalty: `weight_decay * param` is added to the gradient (default `0`).
    pub weight_decay: f64,
    /// Momentum factor (default `0`).
    pub momentum: f64,
    /// Normalize by an estimate of the gradient's variance instead of its second moment
    /// (default `false`).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// torch's `step`, `square_avg`, `momentum_buffer` (when `momentum > 0`) and `grad_avg` (when
/// centered).
pub(crate) struct RmsPropState {
    step: i64,
    square_avg: Tensor,
    momentum_buffer: Option<Tensor>,
    grad_avg: Option<Tensor>,
}

pub(crate) struct RmsPropRule;

impl Rule for RmsPropRule {
    type Config = RmsPropConfig;
    type State = RmsPropState;
    const NAME: &'static str = "RMSprop";

    fn lr(config: &RmsPropConfig) -> f64 {
        config.lr
    }

    fn init(c: &RmsPropConfig, p: &Tensor) -> Result<RmsPropState> {
        Ok(RmsPropState {
            step: 0,
            square_avg: p.f_zeros_like()?,
            momentum_buffer: if c.momentum > 0.0 {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
            grad_avg: if c.centered {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
        })
    }

    fn update(
        c: &RmsPropConfig,
        lr: f64,
        st: &mut RmsPropState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        st.step += 1;
        let mut grad = grad;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        let _ = st.square_avg.f_mul_scalar_(c.alpha)?;
        let _ = st
            .square_avg
            .f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - c.alpha)?)?;
        let mut avg = match &mut st.grad_avg {
            Some(grad_avg) => {
                let _ = grad_avg.f_lerp_(&grad, 1.0 - c.alpha)?;
                let mut v = st.square_avg.f_addcmul(&grad_avg.f_neg()?, grad_avg)?;
                let _ = v.f_sqrt_()?;
                v
            }
            None => st.square_avg.f_sqrt()?,
        };
        let _ = avg.f_add_scalar_(c.eps)?;
        match &mut st.momentum_buffer {
            Some(buf) => {
                let _ = buf.f_mul_scalar_(c.momentum)?;
                let _ = buf.f_addcdiv_(&grad, &avg)?;
                let _ = p.f_add_(&buf.f_mul_scalar(-lr)?)?;
            }
            None => {
                let _ = p.f_addcdiv_(&grad.f_mul_scalar(-lr)?, &avg)?;
            }
        }
        Ok(())
    }

    fn save(st: &RmsPropState) -> Result<Vec<(&'static str, Tensor)>> {
        let mut out = vec![
            ("step", scalar_i64(st.step)),
            ("square_avg", st.square_avg.shallow_clone()),
        ];
        if let Some(b) = &st.momentum_buffer {
            out.push(("momentum_buffer", b.shallow_clone()));
        }
        if let Some(g) = &st.grad_avg {
            out.push(("grad_avg", g.shallow_clone()));
        }
        Ok(out)
    }

    fn load(c: &RmsPropConfig, fields: &mut IndexMap<String, Tensor>) -> Result<RmsPropState> {
        Ok(RmsPropState {
            step: take_step(fields)?,
            square_avg: take(fields, "square_avg")?,
            momentum_buffer: if c.momentum > 0.0 {
                Some(take(fields, "momentum_buffer")?)
            } else {
                None
            },
            grad_avg: if c.centered {
                Some(take(fields, "grad_avg")?)
            } else {
                None
            },
        })
    }
}

per_param_optimizer!(
    /// RMSprop (Hinton): divides the gradient by a running root mean square of recent gradients;
    /// optionally centered and with momentum; the arithmetic of `torch.optim.RMSprop`. One state
    /// per param name.
    RmsProp,
    RmsPropRule,
    RmsPropConfig
);
