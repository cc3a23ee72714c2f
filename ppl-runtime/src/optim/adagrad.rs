//! Adagrad, with the arithmetic of `torch.optim.Adagrad` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::host::{Bufs, HostBufs, HostFloat};
use super::per_param::{per_param_optimizer, scalar_i64, take, take_step, Rule};
use crate::error::Result;

/// Settings of [`Adagrad`]; the defaults are torch's.
#[derive(Clone, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t - 1) * lr_decay)` (default `0`).
    pub lr_decay: f64,
    /// L2 penalty: `weight_decay * param` is added to the gradient (default `0`).
    pub weight_decay: f64,
    /// Starting value of the sum of squared gradients (default `0`).
    pub initial_accumulator_value: f64,
    /// Added to the denominator for numerical stability (default `1e-10`).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// torch's `step` and `sum`.
pub(crate) struct AdagradState {
    step: i64,
    /// `[sum]`.
    bufs: Bufs,
}

/// torch's arithmetic on the host for a small CPU param (see `host.rs`).
fn host_update<T: HostFloat>(
    c: &AdagradConfig,
    clr: f64,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let weight_decay = T::of(c.weight_decay);
    let eps = T::of(c.eps);
    let neg_clr = T::of(-clr);
    let wd = c.weight_decay != 0.0;
    let HostBufs {
        bufs, p: ps, g: gs, ..
    } = &mut *h;
    for ((p, &g), sum) in ps.iter_mut().zip(gs.iter()).zip(bufs[0].iter_mut()) {
        let mut g = g;
        if wd {
            g = g + weight_decay * *p;
        }
        let s = *sum + g * g;
        *sum = s;
        let std = s.sqrt() + eps;
        *p = *p + neg_clr * g / std;
    }
    h.write(p)
}

pub(crate) struct AdagradRule;

impl Rule for AdagradRule {
    type Config = AdagradConfig;
    type State = AdagradState;
    const NAME: &'static str = "Adagrad";

    fn lr(config: &AdagradConfig) -> f64 {
        config.lr
    }

    fn init(c: &AdagradConfig, p: &Tensor) -> Result<AdagradState> {
        Ok(AdagradState {
            step: 0,
            bufs: Bufs::new(p, &[c.initial_accumulator_value])?,
        })
    }

    fn update(
        c: &AdagradConfig,
        lr: f64,
        st: &mut AdagradState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        st.bufs.place(p, &grad)?;
        st.step += 1;
        let clr = lr / (1.0 + (st.step - 1) as f64 * c.lr_decay);
        let sum = match &mut st.bufs {
            Bufs::F32(h) => return host_update(c, clr, h, p, &grad),
            Bufs::F64(h) => return host_update(c, clr, h, p, &grad),
            Bufs::Tensors(ts) => &mut ts[0],
        };
        let mut grad = grad;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        let _ = sum.f_addcmul_(&grad, &grad)?;
        let mut std = sum.f_sqrt()?;
        let _ = std.f_add_scalar_(c.eps)?;
        let _ = p.f_addcdiv_(&grad.f_mul_scalar(-clr)?, &std)?;
        Ok(())
    }

    fn save(st: &AdagradState) -> Result<Vec<(&'static str, Tensor)>> {
        let mut bufs = st.bufs.tensors()?;
        Ok(vec![("step", scalar_i64(st.step)), ("sum", bufs.remove(0))])
    }

    fn load(_c: &AdagradConfig, fields: &mut IndexMap<String, Tensor>) -> Result<AdagradState> {
        Ok(AdagradState {
            step: take_step(fields)?,
            bufs: Bufs::Tensors(vec![take(fields, "sum")?]),
        })
    }
}

per_param_optimizer!(
    /// Adagrad (Duchi et al., 2011): per-coordinate learning rates from the running sum of
    /// squared gradients, with the arithmetic of `torch.optim.Adagrad`. One state per param name.
    Adagrad,
    AdagradRule,
    AdagradConfig
);
