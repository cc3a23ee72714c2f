//! Stochastic gradient descent, with the arithmetic of `torch.optim.SGD` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::per_param::{per_param_optimizer, Rule};
use crate::error::{Error, Result};

/// Settings of [`Sgd`]; the defaults are torch's.
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Momentum factor (default `0`, plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum: the buffer adds `(1 - dampening) * grad` (default `0`).
    pub dampening: f64,
    /// L2 penalty: `weight_decay * param` is added to the gradient (default `0`).
    pub weight_decay: f64,
    /// Nesterov momentum (default `false`; needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// The momentum buffer, created from the first gradient (torch's `momentum_buffer`).
pub(crate) struct SgdState {
    momentum_buffer: Option<Tensor>,
}

pub(crate) struct SgdRule;

impl Rule for SgdRule {
    type Config = SgdConfig;
    type State = SgdState;
    const NAME: &'static str = "SGD";

    fn lr(config: &SgdConfig) -> f64 {
        config.lr
    }

    fn init(c: &SgdConfig, _p: &Tensor) -> Result<SgdState> {
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::Invalid(
                "SGD: Nesterov momentum requires momentum > 0 and zero dampening".into(),
            ));
        }
        Ok(SgdState {
            momentum_buffer: None,
        })
    }

    fn update(
        c: &SgdConfig,
        lr: f64,
        st: &mut SgdState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        let mut grad = grad;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        if c.momentum != 0.0 {
            let buf = match &mut st.momentum_buffer {
                None => st.momentum_buffer.insert(crate::params::deep_copy(&grad)?),
                Some(buf) => {
                    let _ = buf.f_mul_scalar_(c.momentum)?;
                    let _ = buf.f_add_(&grad.f_mul_scalar(1.0 - c.dampening)?)?;
                    buf
                }
            };
            grad = if c.nesterov {
                grad.f_add(&buf.f_mul_scalar(c.momentum)?)?
            } else {
                buf.shallow_clone()
            };
        }
        let _ = p.f_add_(&grad.f_mul_scalar(-lr)?)?;
        Ok(())
    }

    fn save(st: &SgdState) -> Result<Vec<(&'static str, Tensor)>> {
        // Without a buffer there is nothing to keep: a fresh state is the same.
        Ok(match &st.momentum_buffer {
            Some(b) => vec![("momentum_buffer", b.shallow_clone())],
            None => Vec::new(),
        })
    }

    fn load(_c: &SgdConfig, fields: &mut IndexMap<String, Tensor>) -> Result<SgdState> {
        Ok(SgdState {
            momentum_buffer: Some(super::per_param::take(fields, "momentum_buffer")?),
        })
    }
}

per_param_optimizer!(
    /// Stochastic gradient descent with optional momentum (heavy-ball or Nesterov), dampening and
    /// weight decay, with the arithmetic of `torch.optim.SGD`; one state per param name.
    Sgd,
    SgdRule,
    SgdConfig
);
