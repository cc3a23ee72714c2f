//! Where chains start (Pyro's init strategies): uniform in `(-radius, radius)` in unconstrained
//! space (the default, radius 2), given values, the prior median, or a prior draw. A start whose
//! potential energy or gradient is not finite is redrawn, up to 100 times.

use std::collections::HashMap;

use super::ChainRng;
use rand::Rng;
use tch::{Kind, Tensor};

use super::model_spec::ModelSpec;
use crate::distributions::Distribution;
use crate::error::{Error, Result, ResultExt};
use crate::poutine::runtime::{Handler, Messenger, Msg, SiteKind};
use crate::poutine::{trace, Trace};
use crate::transforms::biject_to;

/// A value given on the host, so that it can be shared between the threads of chains.
#[derive(Clone, Debug, PartialEq)]
pub struct HostValue {
    /// The values, row-major.
    pub data: Vec<f64>,
    /// The shape.
    pub shape: Vec<i64>,
}

impl HostValue {
    /// Copies a tensor to the host.
    pub fn from_tensor(t: &Tensor) -> Result<HostValue> {
        let shape = t.size();
        let flat = t
            .f_detach()?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?
            .f_reshape([-1])?
            .f_contiguous()?;
        let n = flat.size()[0] as usize;
        let mut data = vec![0.0; n];
        flat.f_copy_data(&mut data, n)?;
        Ok(HostValue { data, shape })
    }

    fn to_tensor(&self, (kind, device): (Kind, tch::Device)) -> Result<Tensor> {
        Ok(Tensor::f_from_slice(&self.data)?
            .f_reshape(self.shape.as_slice())?
            .f_to_kind(kind)?
            .f_to_device(device)?)
    }
}

/// How a chain's initial point is chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum InitStrategy {
    /// Each unconstrained value uniform in `(-radius, radius)` (Pyro's `init_to_uniform`).
    Uniform {
        /// The radius (2 by default).
        radius: f64,
    },
    /// The given constrained values at the named sites; the other sites uniform in (-2, 2)
    /// (Pyro's `init_to_value`).
    Value(Vec<(String, HostValue)>),
    /// The median of `num_samples` prior draws of each site, given the values upstream
    /// (Pyro's `init_to_median`, 15 draws).
    Median {
        /// Prior draws per site.
        num_samples: i64,
    },
    /// One prior draw per site (Pyro's `init_to_sample`).
    Sample,
}

impl Default for InitStrategy {
    fn default() -> Self {
        InitStrategy::Uniform { radius: 2.0 }
    }
}

impl InitStrategy {
    /// Uniform in `(-radius, radius)` in unconstrained space.
    pub fn uniform(radius: f64) -> InitStrategy {
        InitStrategy::Uniform { radius }
    }

    /// The given constrained values; other sites start uniform in (-2, 2).
    pub fn value<S: Into<String>>(
        values: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<InitStrategy> {
        let mut out = Vec::new();
        for (k, v) in values {
            let k = k.into();
            let hv = HostValue::from_tensor(&v).at_site(&k)?;
            out.push((k, hv));
        }
        Ok(InitStrategy::Value(out))
    }

    /// The prior median of 15 draws.
    pub fn median() -> InitStrategy {
        InitStrategy::Median { num_samples: 15 }
    }

    /// A prior draw.
    pub fn sample() -> InitStrategy {
        InitStrategy::Sample
    }

    /// Whether it draws from torch's global generator (prior draws): such chains are initialized
    /// one after another on the calling thread.
    pub fn uses_torch_rng(&self) -> bool {
        matches!(self, InitStrategy::Median { .. } | InitStrategy::Sample)
    }
}

/// Gives each latent site its initial value as the model runs.
#[derive(Default)]
struct ChainInitMessenger {
    strategy: Option<InitStrategy>,
    values: HashMap<String, HostValue>,
    rng: Option<ChainRng>,
    kind: Option<(Kind, tch::Device)>,
}

fn uniform_value(
    rng: &mut ChainRng,
    radius: f64,
    d: &dyn Distribution,
    shape: &[i64],
    (kind, device): (Kind, tch::Device),
) -> Result<Tensor> {
    let t = biject_to(&d.support())?;
    let ushape = t.inverse_shape(shape);
    let n: i64 = ushape.iter().product();
    let u: Vec<f64> = (0..n.max(0))
        .map(|_| rng.random_range(-radius..radius))
        .collect();
    let u = Tensor::f_from_slice(&u)?
        .f_reshape(ushape.as_slice())?
        .f_to_kind(kind)?
        .f_to_device(device)?;
    t.forward(&u)
}

impl ChainInitMessenger {
    fn init_value(&mut self, msg: &Msg) -> Result<Tensor> {
        let d = msg.dist()?;
        let shape = crate::distributions::extended_shape(&**d, &[]);
        let strategy = self.strategy.clone().unwrap_or_default();
        let kd = self.kind.unwrap_or((Kind::Float, tch::Device::Cpu));
        match strategy {
            InitStrategy::Uniform { radius } => {
                let rng = self
                    .rng
                    .as_mut()
                    .ok_or_else(|| Error::Internal("no rng".into()))?;
                uniform_value(rng, radius, &**d, &shape, kd)
            }
            InitStrategy::Value(_) => match self.values.get(&msg.name) {
                Some(v) => {
                    let t = v.to_tensor(kd)?;
                    if t.size() != shape {
                        return Err(Error::Shape(format!(
                            "an initial value of shape {:?} for a site of shape {shape:?}",
                            t.size(),
                        )));
                    }
                    Ok(t)
                }
                None => {
                    let rng = self
                        .rng
                        .as_mut()
                        .ok_or_else(|| Error::Internal("no rng".into()))?;
                    uniform_value(rng, 2.0, &**d, &shape, kd)
                }
            },
            InitStrategy::Median { num_samples } => {
                let draws = d.sample(&[num_samples.max(1)])?;
                Ok(draws.f_median_dim(0, false)?.0)
            }
            InitStrategy::Sample => d.sample(&[]),
        }
    }
}

impl Messenger for ChainInitMessenger {
    fn process(&mut self, msg: &mut Msg) -> Result<()> {
        let latent = msg.kind == SiteKind::Sample
            && !msg.is_observed
            && msg.value.is_none()
            && !msg.infer.is_subsample
            && !msg.infer.is_deterministic
            && !msg.infer.do_not_score;
        if !latent {
            return Ok(());
        }
        // Discrete sites are reported by the site discovery; leave them to the default draw.
        if msg.dist()?.support().is_discrete() {
            return Ok(());
        }
        let v = self.init_value(msg).at_site(&msg.name)?;
        msg.value = Some(v);
        Ok(())
    }
}

/// Runs `model` once under `strategy` and returns the trace of that run. `rng` draws the uniform
/// values; prior draws use torch's generator.
pub(crate) fn init_trace<R>(
    model: &dyn Fn() -> Result<R>,
    strategy: &InitStrategy,
    rng: &mut ChainRng,
    spec: &ModelSpec,
) -> Result<Trace> {
    let values = match strategy {
        InitStrategy::Value(v) => v.iter().cloned().collect(),
        _ => HashMap::new(),
    };
    let m = ChainInitMessenger {
        strategy: Some(strategy.clone()),
        values,
        rng: Some(rng.clone()),
        kind: Some((spec.kind, spec.device)),
    };
    let g = m.enter();
    let r = tch::no_grad(|| trace(model));
    let m = g.exit()?;
    if let Some(r) = m.rng {
        *rng = r;
    }
    let (_, tr) = r?;
    Ok(tr)
}

/// The constrained values of the latent sites of a trace, by name.
pub(crate) fn latent_values(tr: &Trace, spec: &ModelSpec) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for s in &spec.sites {
        let v = tr.value(&s.name)?;
        out.insert(s.name.clone(), v.f_detach()?);
    }
    Ok(out)
}
