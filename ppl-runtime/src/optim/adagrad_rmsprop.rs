//! Pyro's AdagradRMSProp (`pyro.optim.AdagradRMSProp`).

use indexmap::IndexMap;
use tch::Tensor;

use super::host::{Bufs, HostBufs, HostFloat};
use super::per_param::{per_param_optimizer, scalar_i64, take, take_step, Rule};
use crate::error::Result;

/// Settings of [`AdagradRmsProp`]; the defaults are Pyro's.
#[derive(Clone, Debug, PartialEq)]
pub struct AdagradRmsPropConfig {
    /// Step-size scale (default `1`); this is the rate that learning-rate schedulers change.
    pub eta: f64,
    /// Modulates the exponent of the step-size decay `step^(-1/2 + delta)` (default `1e-16`).
    pub delta: f64,
    /// Weight of the newest squared gradient in the running average (default `0.1`).
    pub t: f64,
}

impl Default for AdagradRmsPropConfig {
    fn default() -> Self {
        AdagradRmsPropConfig {
            eta: 1.0,
            delta: 1e-16,
            t: 0.1,
        }
    }
}

/// Pyro's `step` and `sum`.
pub(crate) struct AdagradRmsPropState {
    step: i64,
    /// `[sum]`.
    bufs: Bufs,
}

/// Pyro's arithmetic on the host for a small CPU param (see `host.rs`).
fn host_update<T: HostFloat>(
    c: &AdagradRmsPropConfig,
    lr: f64,
    first: bool,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let keep = T::of(1.0 - c.t);
    let t = T::of(c.t);
    let one = T::of(1.0);
    let neg_lr = T::of(-lr);
    let HostBufs {
        bufs, p: ps, g: gs, ..
    } = &mut *h;
    for ((p, &g), sum) in ps.iter_mut().zip(gs.iter()).zip(bufs[0].iter_mut()) {
        let s = if first {
            g * g
        } else {
            let s = *sum * keep;
            s + t * g * g
        };
        *sum = s;
        *p = *p + neg_lr * g / (one + s.sqrt());
    }
    h.write(p)
}

pub(crate) struct AdagradRmsPropRule;

impl Rule for AdagradRmsPropRule {
    type Config = AdagradRmsPropConfig;
    type State = AdagradRmsPropState;
    const NAME: &'static str = "AdagradRMSProp";

    fn lr(config: &AdagradRmsPropConfig) -> f64 {
        config.eta
    }

    fn init(_c: &AdagradRmsPropConfig, p: &Tensor) -> Result<AdagradRmsPropState> {
        Ok(AdagradRmsPropState {
            step: 0,
            bufs: Bufs::new(p, &[0.0])?,
        })
    }

    fn update(
        c: &AdagradRmsPropConfig,
        eta: f64,
        st: &mut AdagradRmsPropState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        st.bufs.place(p, &grad)?;
        st.step += 1;
        let first = st.step == 1;
        // Pyro: `eta * step ** (-0.5 + delta)` with an int step.
        let lr = eta * (st.step as f64).powf(-0.5 + c.delta);
        let sum = match &mut st.bufs {
            Bufs::F32(h) => return host_update(c, lr, first, h, p, &grad),
            Bufs::F64(h) => return host_update(c, lr, first, h, p, &grad),
            Bufs::Tensors(ts) => &mut ts[0],
        };
        if first {
            *sum = grad.f_mul(&grad)?;
        } else {
            let _ = sum.f_mul_scalar_(1.0 - c.t)?;
            let _ = sum.f_add_(&grad.f_mul_scalar(c.t)?.f_mul(&grad)?)?;
        }
        let mut denom = sum.f_sqrt()?;
        let _ = denom.f_add_scalar_(1.0)?;
        let _ = p.f_addcdiv_(&grad.f_mul_scalar(-lr)?, &denom)?;
        Ok(())
    }

    fn save(st: &AdagradRmsPropState) -> Result<Vec<(&'static str, Tensor)>> {
        let mut bufs = st.bufs.tensors()?;
        Ok(vec![("step", scalar_i64(st.step)), ("sum", bufs.remove(0))])
    }

    fn load(
        _c: &AdagradRmsPropConfig,
        fields: &mut IndexMap<String, Tensor>,
    ) -> Result<AdagradRmsPropState> {
        Ok(AdagradRmsPropState {
            step: take_step(fields)?,
            bufs: Bufs::Tensors(vec![take(fields, "sum")?]),
        })
    }
}

per_param_optimizer!(
    /// Pyro's AdagradRMSProp (Kucukelbir et al., ADVI, eqs. 10 and 11): a running average of
    /// squared gradients (weight `t`, started at the first squared gradient) and a step size
    /// `eta * step^(-1/2 + delta)`, dividing by `1 + sqrt(average)`; the arithmetic of
    /// `pyro/optim/adagrad_rmsprop.py`. One state per param name. Learning-rate schedulers act on
    /// `eta`.
    AdagradRmsProp,
    AdagradRmsPropRule,
    AdagradRmsPropConfig
);
