//! Stochastic gradient descent, with the arithmetic of `torch.optim.SGD` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::host::{Bufs, HostBufs, HostFloat};
use super::per_param::{per_param_optimizer, take, Rule};
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
    momentum_buffer: Option<Bufs>,
}

/// torch's arithmetic on the host for a small CPU param (see `host.rs`); `first`: the momentum
/// buffer is new and takes the gradient's value.
fn host_update<T: HostFloat>(
    c: &SgdConfig,
    lr: f64,
    first: bool,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let weight_decay = T::of(c.weight_decay);
    let momentum = T::of(c.momentum);
    let w = T::of(1.0 - c.dampening);
    let neg_lr = T::of(-lr);
    let wd = c.weight_decay != 0.0;
    for i in 0..h.p.len() {
        let p = h.p[i];
        let mut g = h.g[i];
        if wd {
            g = g + weight_decay * p;
        }
        if let Some(buf) = h.bufs.first_mut() {
            let b = if first {
                g
            } else {
                let b = buf[i] * momentum;
                b + w * g
            };
            buf[i] = b;
            g = if c.nesterov { g + momentum * b } else { b };
        }
        h.p[i] = p + neg_lr * g;
    }
    h.write(p)
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
            return Err(Error::Config(
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
        let first = st.momentum_buffer.is_none();
        // Without momentum the buffers are empty, just marking where the update runs.
        let inits: &[f64] = if c.momentum != 0.0 { &[0.0] } else { &[] };
        let bufs = match &mut st.momentum_buffer {
            Some(b) => b,
            None => st.momentum_buffer.insert(Bufs::new(p, inits)?),
        };
        bufs.place(p, &grad)?;
        let buf = match bufs {
            Bufs::F32(h) => return host_update(c, lr, first, h, p, &grad),
            Bufs::F64(h) => return host_update(c, lr, first, h, p, &grad),
            Bufs::Tensors(ts) => ts.first_mut(),
        };
        let mut grad = grad;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        if let Some(buf) = buf {
            if first {
                *buf = crate::params::deep_copy(&grad)?;
            } else {
                let _ = buf.f_mul_scalar_(c.momentum)?;
                let _ = buf.f_add_(&grad.f_mul_scalar(1.0 - c.dampening)?)?;
            }
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
        // Without a buffer (no momentum, or no step yet) there is nothing to keep.
        Ok(match &st.momentum_buffer {
            Some(b) => b
                .tensors()?
                .into_iter()
                .map(|t| ("momentum_buffer", t))
                .collect(),
            None => Vec::new(),
        })
    }

    fn load(c: &SgdConfig, fields: &mut IndexMap<String, Tensor>) -> Result<SgdState> {
        if c.momentum == 0.0 {
            return Ok(SgdState {
                momentum_buffer: None,
            });
        }
        Ok(SgdState {
            momentum_buffer: Some(Bufs::Tensors(vec![take(fields, "momentum_buffer")?])),
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
