//! Adam, with the arithmetic of `torch.optim.Adam` (single-tensor path).

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use super::host::{host_kind, lerp, maximum, read, to_tensor, to_vec, write, HostFloat};
use super::per_param::{per_param_optimizer, scalar_i64, take, take_step, Rule};
use crate::error::{Error, Result};

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

/// Adam's moment estimates (torch's `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`), as tensors or,
/// for small CPU params, as host vectors (see `host.rs`).
pub(crate) enum Moments {
    Tensors {
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
        max_exp_avg_sq: Option<Tensor>,
    },
    F32(HostMoments<f32>),
    F64(HostMoments<f64>),
}

pub(crate) struct HostMoments<T> {
    pub(crate) shape: Vec<i64>,
    pub(crate) exp_avg: Vec<T>,
    pub(crate) exp_avg_sq: Vec<T>,
    pub(crate) max_exp_avg_sq: Option<Vec<T>>,
    /// Scratch: the param's and the gradient's values.
    pub(crate) p: Vec<T>,
    pub(crate) g: Vec<T>,
}

impl<T: HostFloat> HostMoments<T> {
    fn zeros(shape: Vec<i64>, n: usize, amsgrad: bool) -> Self {
        let z = vec![T::of(0.0); n];
        HostMoments {
            shape,
            exp_avg: z.clone(),
            exp_avg_sq: z.clone(),
            max_exp_avg_sq: amsgrad.then(|| z.clone()),
            p: Vec::with_capacity(n),
            g: Vec::with_capacity(n),
        }
    }

    fn from_tensors(
        shape: Vec<i64>,
        exp_avg: &Tensor,
        exp_avg_sq: &Tensor,
        max_exp_avg_sq: Option<&Tensor>,
    ) -> Result<Self> {
        let n = exp_avg.numel();
        Ok(HostMoments {
            shape,
            exp_avg: to_vec(exp_avg)?,
            exp_avg_sq: to_vec(exp_avg_sq)?,
            max_exp_avg_sq: max_exp_avg_sq.map(to_vec).transpose()?,
            p: Vec::with_capacity(n),
            g: Vec::with_capacity(n),
        })
    }

    fn tensors(&self) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        Ok((
            to_tensor(&self.exp_avg, &self.shape)?,
            to_tensor(&self.exp_avg_sq, &self.shape)?,
            self.max_exp_avg_sq
                .as_deref()
                .map(|m| to_tensor(m, &self.shape))
                .transpose()?,
        ))
    }

    /// Reads the values of `p` and `grad` into the scratch vectors.
    pub(crate) fn read(&mut self, p: &Tensor, grad: &Tensor) -> Result<()> {
        read(p, &mut self.p)?;
        read(grad, &mut self.g)?;
        if self.p.len() != self.exp_avg.len() || self.g.len() != self.exp_avg.len() {
            return Err(Error::Shape(format!(
                "param of {} and gradient of {} elements for moments of {}",
                self.p.len(),
                self.g.len(),
                self.exp_avg.len()
            )));
        }
        Ok(())
    }

    /// torch's single-tensor Adam on the host, operation by operation.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        c: &AdamConfig,
        decoupled: bool,
        lr: f64,
        step_size: f64,
        bias_correction2_sqrt: f64,
        p: &mut Tensor,
        grad: &Tensor,
    ) -> Result<()> {
        self.read(p, grad)?;
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
        for i in 0..self.p.len() {
            let mut p = self.p[i];
            let mut g = self.g[i];
            if wd {
                if decoupled {
                    p = p * decay;
                } else {
                    g = g + weight_decay * p;
                }
            }
            let m = lerp(self.exp_avg[i], g, w1);
            self.exp_avg[i] = m;
            let v = self.exp_avg_sq[i] * beta2;
            let v = v + w2 * g * g;
            self.exp_avg_sq[i] = v;
            let second = match &mut self.max_exp_avg_sq {
                Some(mx) => {
                    mx[i] = maximum(mx[i], v);
                    mx[i]
                }
                None => v,
            };
            let denom = second.sqrt() / bc2 + eps;
            self.p[i] = p + neg_step * m / denom;
        }
        write(p, &self.p, &self.shape)
    }
}

/// Adam's per-param state: torch's `step` and the moments.
pub(crate) struct AdamState {
    pub(crate) step: i64,
    pub(crate) moments: Moments,
}

impl AdamState {
    pub(crate) fn new(p: &Tensor, amsgrad: bool) -> Result<Self> {
        let moments = match host_kind(p, p) {
            Some(Kind::Float) => Moments::F32(HostMoments::zeros(p.size(), p.numel(), amsgrad)),
            Some(Kind::Double) => Moments::F64(HostMoments::zeros(p.size(), p.numel(), amsgrad)),
            _ => Moments::Tensors {
                exp_avg: p.f_zeros_like()?,
                exp_avg_sq: p.f_zeros_like()?,
                max_exp_avg_sq: if amsgrad {
                    Some(p.f_zeros_like()?)
                } else {
                    None
                },
            },
        };
        Ok(AdamState { step: 0, moments })
    }

    /// The moments as tensors (host vectors are copied into new tensors).
    fn tensors(&self) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        match &self.moments {
            Moments::Tensors {
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
            } => Ok((
                exp_avg.shallow_clone(),
                exp_avg_sq.shallow_clone(),
                max_exp_avg_sq.as_ref().map(Tensor::shallow_clone),
            )),
            Moments::F32(h) => h.tensors(),
            Moments::F64(h) => h.tensors(),
        }
    }

    pub(crate) fn save(&self) -> Result<Vec<(&'static str, Tensor)>> {
        let (exp_avg, exp_avg_sq, max_exp_avg_sq) = self.tensors()?;
        let mut out = vec![
            ("step", scalar_i64(self.step)),
            ("exp_avg", exp_avg),
            ("exp_avg_sq", exp_avg_sq),
        ];
        if let Some(m) = max_exp_avg_sq {
            out.push(("max_exp_avg_sq", m));
        }
        Ok(out)
    }

    pub(crate) fn load(fields: &mut IndexMap<String, Tensor>, amsgrad: bool) -> Result<Self> {
        Ok(AdamState {
            step: take_step(fields)?,
            moments: Moments::Tensors {
                exp_avg: take(fields, "exp_avg")?,
                exp_avg_sq: take(fields, "exp_avg_sq")?,
                max_exp_avg_sq: if amsgrad {
                    Some(take(fields, "max_exp_avg_sq")?)
                } else {
                    None
                },
            },
        })
    }

    /// Moves the moments to where this step computes: the host for a small CPU param (a state
    /// just loaded arrives as tensors), tensors otherwise.
    pub(crate) fn place(&mut self, p: &Tensor, grad: &Tensor) -> Result<()> {
        let kind = host_kind(p, grad);
        let moments = match (&self.moments, kind) {
            (Moments::Tensors { .. }, None)
            | (Moments::F32(_), Some(Kind::Float))
            | (Moments::F64(_), Some(Kind::Double)) => return Ok(()),
            (
                Moments::Tensors {
                    exp_avg,
                    exp_avg_sq,
                    max_exp_avg_sq,
                },
                Some(k),
            ) if exp_avg.kind() == k && exp_avg.device() == tch::Device::Cpu => {
                let shape = p.size();
                if k == Kind::Float {
                    Moments::F32(HostMoments::from_tensors(
                        shape,
                        exp_avg,
                        exp_avg_sq,
                        max_exp_avg_sq.as_ref(),
                    )?)
                } else {
                    Moments::F64(HostMoments::from_tensors(
                        shape,
                        exp_avg,
                        exp_avg_sq,
                        max_exp_avg_sq.as_ref(),
                    )?)
                }
            }
            (Moments::Tensors { .. }, Some(_)) => return Ok(()),
            _ => {
                let (exp_avg, exp_avg_sq, max_exp_avg_sq) = self.tensors()?;
                let device = p.device();
                Moments::Tensors {
                    exp_avg: exp_avg.f_to_device(device)?,
                    exp_avg_sq: exp_avg_sq.f_to_device(device)?,
                    max_exp_avg_sq: max_exp_avg_sq.map(|m| m.f_to_device(device)).transpose()?,
                }
            }
        };
        self.moments = moments;
        Ok(())
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
    st.place(p, &grad)?;
    st.step += 1;
    let (b1, b2) = c.betas;
    // torch keeps `step` as a float tensor and computes these in Python floats.
    let step = st.step as f64;
    let bias_correction1 = 1.0 - b1.powf(step);
    let bias_correction2 = 1.0 - b2.powf(step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);
    let (exp_avg, exp_avg_sq, max_exp_avg_sq) = match &mut st.moments {
        Moments::F32(h) => {
            return h.update(c, decoupled, lr, step_size, bias_correction2_sqrt, p, &grad)
        }
        Moments::F64(h) => {
            return h.update(c, decoupled, lr, step_size, bias_correction2_sqrt, p, &grad)
        }
        Moments::Tensors {
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
        } => (exp_avg, exp_avg_sq, max_exp_avg_sq),
    };
    let mut grad = grad;
    if c.weight_decay != 0.0 {
        if decoupled {
            let _ = p.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
        } else {
            grad = grad.f_add(&p.f_mul_scalar(c.weight_decay)?)?;
        }
    }
    let _ = exp_avg.f_lerp_(&grad, 1.0 - b1)?;
    let _ = exp_avg_sq.f_mul_scalar_(b2)?;
    let _ = exp_avg_sq.f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - b2)?)?;
    let second = match max_exp_avg_sq {
        Some(m) => {
            let _ = m.f_maximum_out(m, exp_avg_sq)?;
            &*m
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
