use std::collections::HashMap;

use tch::Tensor;

use super::Optimizer;
use crate::error::Result;

/// Settings of [`Adam`] (torch's defaults).
#[derive(Clone, Debug)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

struct State {
    step: i32,
    m: Tensor,
    v: Tensor,
}

/// Adam (Kingma and Ba), with the arithmetic of `torch.optim.Adam`; state is kept per param name.
pub struct Adam {
    config: AdamConfig,
    state: HashMap<String, State>,
}

impl Adam {
    /// Adam with `config`.
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            state: HashMap::new(),
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        let _ng = tch::no_grad_guard();
        let c = &self.config;
        for (name, p) in params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let g = if c.weight_decay != 0.0 {
                g.f_add(&p.f_mul_scalar(c.weight_decay)?)?
            } else {
                g
            };
            let st = match self.state.get_mut(name) {
                Some(s) => s,
                None => {
                    let s = State {
                        step: 0,
                        m: p.f_zeros_like()?,
                        v: p.f_zeros_like()?,
                    };
                    self.state.entry(name.clone()).or_insert(s)
                }
            };
            st.step += 1;
            let (b1, b2) = c.betas;
            let _ = st.m.f_lerp_(&g, 1.0 - b1)?;
            let _ = st.v.f_mul_scalar_(b2)?;
            let _ = st.v.f_addcmul_(&g, &g.f_mul_scalar(1.0 - b2)?)?;
            let bc1 = 1.0 - b1.powi(st.step);
            let bc2 = 1.0 - b2.powi(st.step);
            let denom =
                st.v.f_sqrt()?
                    .f_div_scalar(bc2.sqrt())?
                    .f_add_scalar(c.eps)?;
            let mut p = p.shallow_clone();
            let _ = p.f_addcdiv_(&st.m.f_mul_scalar(-c.lr / bc1)?, &denom)?;
        }
        Ok(())
    }
}
