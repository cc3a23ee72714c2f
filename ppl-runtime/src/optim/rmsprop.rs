//! RMSprop, with the arithmetic of `torch.optim.RMSprop` (single-tensor path).

use indexmap::IndexMap;
use tch::Tensor;

use super::host::{lerp, Bufs, HostBufs, HostFloat};
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
/// centered), the buffers in that order.
pub(crate) struct RmsPropState {
    step: i64,
    bufs: Bufs,
    /// The buffers' names, for saving.
    names: Vec<&'static str>,
}

/// The names of the buffers that `c` calls for, in order.
fn names(c: &RmsPropConfig) -> Vec<&'static str> {
    let mut names = vec!["square_avg"];
    if c.momentum > 0.0 {
        names.push("momentum_buffer");
    }
    if c.centered {
        names.push("grad_avg");
    }
    names
}

/// Where the optional buffers are.
fn slots(c: &RmsPropConfig) -> (Option<usize>, Option<usize>) {
    let momentum = (c.momentum > 0.0).then_some(1);
    let grad_avg = c.centered.then_some(1 + usize::from(c.momentum > 0.0));
    (momentum, grad_avg)
}

/// torch's arithmetic on the host for a small CPU param (see `host.rs`).
fn host_update<T: HostFloat>(
    c: &RmsPropConfig,
    lr: f64,
    h: &mut HostBufs<T>,
    p: &mut Tensor,
    grad: &Tensor,
) -> Result<()> {
    h.read(p, grad)?;
    let (momentum_at, grad_avg_at) = slots(c);
    let weight_decay = T::of(c.weight_decay);
    let alpha = T::of(c.alpha);
    let w = T::of(1.0 - c.alpha);
    let minus_one = T::of(-1.0);
    let eps = T::of(c.eps);
    let momentum = T::of(c.momentum);
    let neg_lr = T::of(-lr);
    let wd = c.weight_decay != 0.0;
    for i in 0..h.p.len() {
        let p = h.p[i];
        let mut g = h.g[i];
        if wd {
            g = g + weight_decay * p;
        }
        let sq = h.bufs[0][i] * alpha;
        let sq = sq + w * g * g;
        h.bufs[0][i] = sq;
        let avg = match grad_avg_at {
            Some(j) => {
                let ga = lerp(h.bufs[j][i], g, w);
                h.bufs[j][i] = ga;
                (sq + minus_one * ga * ga).sqrt()
            }
            None => sq.sqrt(),
        };
        let avg = avg + eps;
        h.p[i] = match momentum_at {
            Some(j) => {
                let buf = h.bufs[j][i] * momentum;
                let buf = buf + g / avg;
                h.bufs[j][i] = buf;
                p + neg_lr * buf
            }
            None => p + neg_lr * g / avg,
        };
    }
    h.write(p)
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
        let names = names(c);
        Ok(RmsPropState {
            step: 0,
            bufs: Bufs::new(p, &vec![0.0; names.len()])?,
            names,
        })
    }

    fn update(
        c: &RmsPropConfig,
        lr: f64,
        st: &mut RmsPropState,
        p: &mut Tensor,
        grad: Tensor,
    ) -> Result<()> {
        st.bufs.place(p, &grad)?;
        st.step += 1;
        let ts = match &mut st.bufs {
            Bufs::F32(h) => return host_update(c, lr, h, p, &grad),
            Bufs::F64(h) => return host_update(c, lr, h, p, &grad),
            Bufs::Tensors(ts) => ts,
        };
        let (momentum_at, grad_avg_at) = slots(c);
        let mut grad = grad;
        if c.weight_decay != 0.0 {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
        let square_avg = &mut ts[0];
        let _ = square_avg.f_mul_scalar_(c.alpha)?;
        let _ = square_avg.f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - c.alpha)?)?;
        let square_avg = ts[0].shallow_clone();
        let mut avg = match grad_avg_at {
            Some(j) => {
                let grad_avg = &mut ts[j];
                let _ = grad_avg.f_lerp_(&grad, 1.0 - c.alpha)?;
                let mut v = square_avg.f_addcmul(&grad_avg.f_neg()?, grad_avg)?;
                let _ = v.f_sqrt_()?;
                v
            }
            None => square_avg.f_sqrt()?,
        };
        let _ = avg.f_add_scalar_(c.eps)?;
        match momentum_at {
            Some(j) => {
                let buf = &mut ts[j];
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
        let mut out = vec![("step", scalar_i64(st.step))];
        out.extend(st.names.iter().copied().zip(st.bufs.tensors()?));
        Ok(out)
    }

    fn load(c: &RmsPropConfig, fields: &mut IndexMap<String, Tensor>) -> Result<RmsPropState> {
        let names = names(c);
        let bufs = names
            .iter()
            .map(|n| take(fields, n))
            .collect::<Result<Vec<_>>>()?;
        Ok(RmsPropState {
            step: take_step(fields)?,
            bufs: Bufs::Tensors(bufs),
            names,
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
