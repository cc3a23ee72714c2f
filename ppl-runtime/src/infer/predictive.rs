//! `Predictive` (Pyro's `pyro.infer.Predictive`): posterior predictive draws.

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use tch::Tensor;

use crate::error::{Error, Result, ResultExt};
use crate::poutine::{self, Enumerate, Handler, Plate, SiteKind, Trace};

/// The name of the outer plate of vectorized predictive draws.
pub const PREDICTIVE_PLATE: &str = "_num_predictive_samples";

type Program<'a> = Box<dyn FnMut() -> Result<()> + 'a>;

/// Posterior predictive draws: runs the model `num_samples` times with its latents taken from a
/// guide's draws or from given posterior samples, and stacks the values of the return sites in
/// a new leading dimension of size `num_samples`.
///
/// - [`Predictive::with_guide`]: each run draws the guide and conditions the model on every
///   value the guide sampled (subsample indices included). By default all sample sites of the
///   model are returned (latents and observations), as in Pyro.
/// - [`Predictive::with_posterior_samples`]: run `i` conditions the model on slice `i` of each
///   given tensor (leading dim = sample dim). By default the sample sites *not* among the
///   posterior samples are returned.
///
/// Sites observed with data in the model keep their data: to predict them, let the model take
/// `None` for the data (e.g. `sample!("obs", ..., obs = y)` with `y: Option<Tensor>`).
/// [`Predictive::parallel`] draws all samples in one run inside an outer plate
/// `_num_predictive_samples` at dim `-(max_plate_nesting + 1)`; the model must then be
/// vectorizable (broadcast correctly over an extra leading batch dim).
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::{AutoNormal, Predictive};
///
/// fn model(y: Option<&Tensor>) -> ppl::Result<()> {
///     let mu = ppl::sample("mu", Normal::new(0.0, 1.0)?, None)?;
///     let _p = Plate::new("data", 3).enter()?;
///     ppl::sample("y", Normal::new(&mu, 0.5)?, y.map(|t| t.shallow_clone()))?;
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// set_rng_seed(0);
/// let y = Tensor::from_slice(&[1.0f32, 1.2, 0.8]);
/// let guide = AutoNormal::new(|| model(Some(&y)));
/// guide.call()?; // creates the guide's params
/// let pred = Predictive::with_guide(|| model(None), || guide.call(), 50).run()?;
/// assert_eq!(pred["mu"].size(), vec![50]);
/// assert_eq!(pred["y"].size(), vec![50, 3]);
/// # Ok(()) }
/// ```
pub struct Predictive<'a> {
    model: Program<'a>,
    guide: Option<Program<'a>>,
    posterior_samples: Option<HashMap<String, Tensor>>,
    num_samples: usize,
    return_sites: Option<Vec<String>>,
    parallel: bool,
    max_plate_nesting: usize,
    /// `(first_available_dim, temperature)` of [`Predictive::infer_discrete`].
    infer_discrete: Option<(i64, f64)>,
}

fn program<'a, R>(mut f: impl FnMut() -> Result<R> + 'a) -> Program<'a> {
    Box::new(move || f().map(|_| ()))
}

impl<'a> Predictive<'a> {
    /// Posterior predictive draws with latents drawn from `guide`.
    pub fn with_guide<R1, R2>(
        model: impl FnMut() -> Result<R1> + 'a,
        guide: impl FnMut() -> Result<R2> + 'a,
        num_samples: usize,
    ) -> Self {
        Predictive {
            model: program(model),
            guide: Some(program(guide)),
            posterior_samples: None,
            num_samples,
            return_sites: None,
            parallel: false,
            max_plate_nesting: 0,
            infer_discrete: None,
        }
    }

    /// Posterior predictive draws with latents from `samples` (site name to a tensor whose
    /// leading dimension indexes the samples; all must have the same leading size). Takes
    /// [`Mcmc::get_samples`](crate::infer::Mcmc::get_samples) as it comes, or any map or list of
    /// `(name, tensor)` pairs.
    pub fn with_posterior_samples<R>(
        model: impl FnMut() -> Result<R> + 'a,
        samples: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<Self> {
        let samples: HashMap<String, Tensor> = samples.into_iter().collect();
        let mut n: Option<i64> = None;
        for (k, v) in &samples {
            let Some(&m) = v.size().first() else {
                return Err(Error::Shape(
                    "a posterior sample needs a leading sample dimension".into(),
                ))
                .at_site(k);
            };
            if n.is_some_and(|n| n != m) {
                return Err(Error::Shape(format!(
                    "posterior samples have {m} draws here but {} at another site",
                    n.unwrap_or(0)
                )))
                .at_site(k);
            }
            n = Some(m);
        }
        Ok(Predictive {
            model: program(model),
            guide: None,
            posterior_samples: Some(samples),
            num_samples: n.unwrap_or(1) as usize,
            return_sites: None,
            parallel: false,
            max_plate_nesting: 0,
            infer_discrete: None,
        })
    }

    /// Returns only these sites (sample or deterministic sites of the model).
    pub fn return_sites(mut self, sites: &[&str]) -> Self {
        self.return_sites = Some(sites.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The number of draws (with posterior samples: at most their number; the first ones are
    /// used).
    pub fn num_samples(mut self, n: usize) -> Self {
        self.num_samples = n;
        self
    }

    /// Draws all samples in one vectorized run inside an outer plate at dim
    /// `-(max_plate_nesting + 1)`.
    pub fn parallel(mut self, max_plate_nesting: usize) -> Self {
        self.parallel = true;
        self.max_plate_nesting = max_plate_nesting;
        self
    }

    /// Draws the model's discrete sites of finite support from their posterior given each
    /// draw of the other latents and the observations (NumPyro's
    /// `Predictive(infer_discrete=True)`): every such site is enumerated in dims
    /// `first_available_dim` and further left and assigned by [`crate::infer::infer_discrete`]
    /// at `temperature` (1: a posterior sample, 0: the MAP). Not with [`Predictive::parallel`].
    pub fn infer_discrete(mut self, first_available_dim: i64, temperature: f64) -> Self {
        self.infer_discrete = Some((first_available_dim, temperature));
        self
    }

    fn wanted(&self, tr: &Trace, conditioned: &HashMap<String, Tensor>) -> Vec<String> {
        tr.iter()
            .filter(|s| s.kind == SiteKind::Sample && !s.infer.is_subsample)
            .filter(|s| match &self.return_sites {
                Some(r) => r.contains(&s.name),
                None if self.guide.is_some() => true,
                None => !conditioned.contains_key(&s.name),
            })
            .map(|s| s.name.clone())
            .collect()
    }

    fn check_return_sites(&self, tr: &Trace) -> Result<()> {
        if let Some(r) = &self.return_sites {
            for name in r {
                if !tr.contains(name) {
                    return Err(Error::MissingSite {
                        site: name.clone(),
                        message: "a return site that the model does not have".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Latent values drawn by the guide (all its sample sites), for conditioning the model.
    fn guide_draw(guide: &mut Program<'a>) -> Result<HashMap<String, Tensor>> {
        let (_, tr) = poutine::trace(&mut **guide)?;
        Ok(tr
            .iter()
            .filter(|s| s.kind == SiteKind::Sample && !s.is_observed)
            .map(|s| (s.name.clone(), s.value.shallow_clone()))
            .collect())
    }

    fn run_model(&mut self, data: HashMap<String, Tensor>) -> Result<Trace> {
        let data = Rc::new(data);
        let model = &mut self.model;
        let (_, tr) = match self.infer_discrete {
            None => poutine::trace(|| poutine::condition(data, &mut **model))?,
            Some((first, temperature)) => poutine::trace(|| {
                crate::infer::infer_discrete(
                    || {
                        poutine::condition(data.clone(), || {
                            poutine::config_enumerate(Enumerate::Parallel, &mut **model)
                        })
                    },
                    first,
                    temperature,
                )
            })?,
        };
        Ok(tr)
    }

    fn slice(&self, i: i64) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        if let Some(ps) = &self.posterior_samples {
            for (k, v) in ps {
                out.insert(k.clone(), v.f_get(i).at_site(k)?);
            }
        }
        Ok(out)
    }

    /// Runs the draws: site name to the stacked values, `[num_samples, ...site shape]`.
    pub fn run(&mut self) -> Result<IndexMap<String, Tensor>> {
        let _ng = tch::no_grad_guard();
        if let Some(ps) = &self.posterior_samples {
            if let Some(n) = ps.values().next().map(|v| v.size()[0]) {
                if (self.num_samples as i64) > n {
                    return Err(Error::Config(format!(
                        "Predictive: num_samples {} exceeds the {n} posterior samples given",
                        self.num_samples
                    )));
                }
            }
        }
        if self.parallel {
            if self.infer_discrete.is_some() {
                return Err(Error::Config(
                    "Predictive: infer_discrete runs draw by draw; drop parallel()".into(),
                ));
            }
            return self.run_parallel();
        }
        let mut collected: IndexMap<String, Vec<Tensor>> = IndexMap::new();
        // torch's threads by the work of the first draw (one thread for small models).
        let mut threads = crate::infer::threads::ByWork::default();
        for i in 0..self.num_samples {
            let data = match &mut self.guide {
                Some(g) => Self::guide_draw(g)?,
                None => self.slice(i as i64)?,
            };
            let keys: HashMap<String, Tensor> = data
                .iter()
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect();
            let tr = self.run_model(data)?;
            threads.observe(&tr);
            if i == 0 {
                self.check_return_sites(&tr)?;
                for name in self.wanted(&tr, &keys) {
                    collected.insert(name, Vec::with_capacity(self.num_samples));
                }
            }
            for (name, vals) in collected.iter_mut() {
                let v = tr.value(name)?;
                vals.push(v.f_detach()?);
            }
        }
        let mut out = IndexMap::new();
        for (name, vals) in collected {
            let stacked = Tensor::f_stack(&vals, 0).map_err(|e| {
                Error::Shape(format!(
                    "the site's values differ in shape between runs ({e})"
                ))
                .at_site(&name)
            })?;
            out.insert(name, stacked);
        }
        Ok(out)
    }

    fn run_parallel(&mut self) -> Result<IndexMap<String, Tensor>> {
        let n = self.num_samples as i64;
        let dim = -(self.max_plate_nesting as i64) - 1;
        // One unvectorized run gives each site's shape per draw.
        let proto_data = match &mut self.guide {
            Some(g) => Self::guide_draw(g)?,
            None => self.slice(0)?,
        };
        let proto_keys: HashMap<String, Tensor> = proto_data
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        let proto = self.run_model(proto_data)?;
        self.check_return_sites(&proto)?;
        let wanted = self.wanted(&proto, &proto_keys);

        let data: HashMap<String, Tensor> = match &mut self.guide {
            Some(g) => {
                let (_, tr) = poutine::trace(|| {
                    let _p = Plate::new(PREDICTIVE_PLATE, n).dim(dim).enter()?;
                    (g)()
                })?;
                tr.iter()
                    .filter(|s| s.kind == SiteKind::Sample && !s.is_observed)
                    .map(|s| (s.name.clone(), s.value.shallow_clone()))
                    .collect()
            }
            None => {
                let mut d = HashMap::new();
                for (k, v) in self.posterior_samples.iter().flatten() {
                    let v = v.f_narrow(0, 0, n)?;
                    let Some(site) = proto.get(k) else {
                        d.insert(k.clone(), v);
                        continue;
                    };
                    let batch = site.dist.as_ref().map_or(0, |d| d.batch_shape().len());
                    let pad = self.max_plate_nesting.saturating_sub(batch);
                    let mut shape = vec![n];
                    shape.extend(std::iter::repeat_n(1, pad));
                    shape.extend(site.value.size());
                    let v = v.f_reshape(shape.as_slice()).map_err(|e| {
                        Error::Shape(format!(
                            "cannot align the posterior samples with the model ({e}); is \
                             max_plate_nesting right?"
                        ))
                        .at_site(k)
                    })?;
                    d.insert(k.clone(), v);
                }
                d
            }
        };
        let data = Rc::new(data);
        let model = &mut self.model;
        let (_, tr) = poutine::trace(|| {
            let _p = Plate::new(PREDICTIVE_PLATE, n).dim(dim).enter()?;
            poutine::ConditionMessenger::new(data).run(&mut **model)
        })?;
        let mut out = IndexMap::new();
        for name in wanted {
            let per = proto.value(&name)?.size();
            let mut shape = vec![n];
            shape.extend_from_slice(&per);
            let v = tr.value(&name)?.f_detach()?;
            let total: i64 = shape.iter().product();
            let v = if v.numel() as i64 == total {
                v.f_reshape(shape.as_slice())
            } else {
                v.f_expand(shape.as_slice(), false)
                    .and_then(|t| t.f_contiguous())
            }
            .map_err(|e| {
                Error::Shape(format!(
                    "the vectorized value of shape {:?} does not fit {shape:?} ({e}); is the \
                     model vectorizable with max_plate_nesting = {}?",
                    v.size(),
                    self.max_plate_nesting
                ))
                .at_site(&name)
            })?;
            out.insert(name, v);
        }
        Ok(out)
    }
}
