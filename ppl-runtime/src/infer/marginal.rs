//! `Marginal`: the exact distribution over the return values of a discrete model (Pyro's
//! `HashingMarginal` over a `Search`), for ordinary Rust values, and [`sample_value`], which
//! samples or observes such a value at a site of another model, so marginals nest (the RSA
//! models).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::rc::Rc;

use rand::Rng;
use tch::{Kind, Tensor};

use super::search::{Search, WeightedTrace};
use crate::constraints::Constraint;
use crate::distributions::{Categorical, DistRef, Distribution};
use crate::error::{Error, Result, ResultExt};
use crate::naming::unique_name;
use crate::poutine::runtime::{apply_stack, stack_is_empty, Msg};
use crate::primitives::with_rng;

/// What a [`Marginal`] can range over: any hashable, clonable value.
pub trait MarginalValue: Hash + Eq + Clone + Debug + 'static {}
impl<T: Hash + Eq + Clone + Debug + 'static> MarginalValue for T {}

/// The distribution over a model's return values, found by exhaustive enumeration.
///
/// Runs with equal return values are merged (their weights added); the support keeps the order
/// in which values were first seen.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::Marginal;
///
/// #[model]
/// fn two_coins() -> ppl::Result<u32> {
///     let a = sample!(Bernoulli::new(0.5)?);
///     let b = sample!(Bernoulli::new(0.5)?);
///     Ok((a.double_value(&[]) + b.double_value(&[])) as u32)
/// }
///
/// # fn main() -> ppl::Result<()> {
/// let heads = Marginal::exact(two_coins)?;
/// assert!((heads.prob(&1) - 0.5).abs() < 1e-6);
/// assert!((heads.prob(&2) - 0.25).abs() < 1e-6);
/// assert_eq!(heads.prob(&3), 0.0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Marginal<T> {
    support: Vec<T>,
    log_probs: Vec<f64>,
    index: HashMap<T, usize>,
    dist: DistRef,
}

impl<T: MarginalValue> Marginal<T> {
    /// The marginal of `model`'s return value, by [`Search`].
    pub fn exact(model: impl Fn() -> Result<T>) -> Result<Self> {
        Self::from_traces(Search::new(model).run()?)
    }

    /// The marginal of the values of weighted runs (e.g. [`Search::run`]'s).
    pub fn from_traces(runs: Vec<WeightedTrace<T>>) -> Result<Self> {
        Self::from_weighted(runs.into_iter().map(|r| (r.value, r.log_weight)))
    }

    /// The normalized distribution of `(value, log-weight)` pairs; equal values are merged.
    /// Values whose weight is zero are left out of the support.
    pub fn from_weighted(pairs: impl IntoIterator<Item = (T, f64)>) -> Result<Self> {
        let mut support: Vec<T> = Vec::new();
        let mut logw: Vec<f64> = Vec::new();
        let mut index: HashMap<T, usize> = HashMap::new();
        for (v, lw) in pairs {
            if lw.is_nan() {
                return Err(Error::NonFinite(format!(
                    "Marginal: log-weight NaN for value {v:?}"
                )));
            }
            if lw == f64::NEG_INFINITY {
                continue;
            }
            match index.get(&v) {
                Some(&i) => logw[i] = log_add_exp(logw[i], lw),
                None => {
                    index.insert(v.clone(), support.len());
                    support.push(v);
                    logw.push(lw);
                }
            }
        }
        if support.is_empty() {
            return Err(Error::Invalid(
                "Marginal: no run has positive weight (empty support)".into(),
            ));
        }
        let log_z = logsumexp(&logw);
        let log_probs: Vec<f64> = logw.iter().map(|l| l - log_z).collect();
        let dist: DistRef = Rc::new(Categorical::from_logits(Tensor::from_slice(&log_probs))?);
        Ok(Marginal {
            support,
            log_probs,
            index,
            dist,
        })
    }

    /// A cache of marginals of a model with arguments: `get(&args)` runs the search once per
    /// distinct `args` (Pyro's `memoize(lambda *args: HashingMarginal(Search(fn).run(*args)))`).
    pub fn memoized<'a, A: Hash + Eq + Clone>(
        model: impl Fn(&A) -> Result<T> + 'a,
    ) -> Memoized<'a, A, T> {
        Memoized {
            model: Box::new(model),
            cache: RefCell::new(HashMap::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// The values with positive probability, in the order first seen.
    pub fn enumerate_support(&self) -> Vec<T> {
        self.support.clone()
    }

    /// The support as a slice.
    pub fn support(&self) -> &[T] {
        &self.support
    }

    /// Number of values in the support.
    pub fn len(&self) -> usize {
        self.support.len()
    }

    /// Whether the support is empty (never true for a constructed marginal).
    pub fn is_empty(&self) -> bool {
        self.support.is_empty()
    }

    /// The log-probability of `value`; `-inf` outside the support.
    pub fn log_prob(&self, value: &T) -> f64 {
        self.index
            .get(value)
            .map_or(f64::NEG_INFINITY, |&i| self.log_probs[i])
    }

    /// The probability of `value`; 0 outside the support.
    pub fn prob(&self, value: &T) -> f64 {
        self.log_prob(value).exp()
    }

    /// Each value of the support with its probability.
    pub fn probs(&self) -> Vec<(T, f64)> {
        self.support
            .iter()
            .zip(&self.log_probs)
            .map(|(v, lp)| (v.clone(), lp.exp()))
            .collect()
    }

    /// `E[f(value)]`.
    pub fn expectation(&self, f: impl Fn(&T) -> f64) -> f64 {
        self.support
            .iter()
            .zip(&self.log_probs)
            .map(|(v, lp)| lp.exp() * f(v))
            .sum()
    }

    /// A draw, from this thread's generator (seeded by `set_rng_seed`).
    pub fn sample(&self) -> T {
        let u: f64 = with_rng(|r| r.random::<f64>());
        let mut acc = 0.0;
        for (v, lp) in self.support.iter().zip(&self.log_probs) {
            acc += lp.exp();
            if u < acc {
                return v.clone();
            }
        }
        // Rounding left `acc` just below 1: the last value.
        self.support[self.support.len() - 1].clone()
    }

    /// The position of `value` in the support.
    pub fn index_of(&self, value: &T) -> Option<usize> {
        self.index.get(value).copied()
    }

    /// The value at position `index` (a scalar integer tensor) of the support, as
    /// [`Marginal::index_dist`] samples it.
    pub fn value_at(&self, index: &Tensor) -> Result<T> {
        let i = index.f_int64_value(&[])?;
        usize::try_from(i)
            .ok()
            .and_then(|i| self.support.get(i))
            .cloned()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Marginal: index {i} outside the support of {} values",
                    self.len()
                ))
            })
    }

    /// The distribution over support positions that sites of this marginal carry: a draw is
    /// the (int64) position of a value; position `len()` stands for a value outside the support
    /// and has log-density `-inf`. Use it with `sample!` and decode with [`Marginal::value_at`],
    /// or use [`sample_value`], which does both.
    pub fn index_dist(&self) -> ValueIndex {
        ValueIndex {
            cat: self.dist.clone(),
            k: self.support.len() as i64,
        }
    }

    /// The observation for a site carrying [`Marginal::index_dist`] (`sample!(..., obs = ...)`):
    /// the position of `value`, or `len()` (log-density `-inf`) outside the support.
    pub fn index_obs(&self, value: &T) -> Tensor {
        let i = self.index_of(value).unwrap_or(self.support.len());
        Tensor::from(i as i64)
    }
}

/// Samples a value from `marginal` at a site called `name`, or observes `obs` there, and returns
/// the value. The site records the value's position in the support (see
/// [`Marginal::index_dist`]), so trace, replay, condition, scale and [`Search`] work on it; an
/// observed value outside the support has log-density `-inf`.
pub fn sample_value<T: MarginalValue>(
    name: impl Into<String>,
    marginal: &Marginal<T>,
    obs: Option<&T>,
) -> Result<T> {
    if stack_is_empty() {
        return Ok(match obs {
            Some(v) => v.clone(),
            None => marginal.sample(),
        });
    }
    let obs_index = obs.map(|v| marginal.index_obs(v));
    let mut msg = Msg::sample(
        unique_name(name.into()),
        Rc::new(marginal.index_dist()),
        obs_index,
    );
    apply_stack(&mut msg)?;
    let value = msg.value.as_ref().ok_or_else(|| Error::MissingSite {
        site: msg.name.clone(),
        message: "no value after all handlers ran".into(),
    })?;
    match obs {
        // A value outside the support has no position; return it as observed.
        Some(v) if marginal.index_of(v).is_none() => Ok(v.clone()),
        _ => marginal.value_at(value).at_site(&msg.name),
    }
}

/// The distribution over positions in a [`Marginal`]'s support (see [`Marginal::index_dist`]).
#[derive(Debug, Clone)]
pub struct ValueIndex {
    cat: DistRef,
    k: i64,
}

impl Distribution for ValueIndex {
    fn name(&self) -> &'static str {
        "Marginal"
    }
    fn batch_shape(&self) -> &[i64] {
        self.cat.batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        &[]
    }
    fn support(&self) -> Constraint {
        Constraint::IntegerInterval(0, self.k - 1)
    }
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor> {
        self.cat.sample(sample_shape)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let v = value.f_to_kind(Kind::Int64)?;
        let inside = v.f_ge(0)?.f_logical_and(&v.f_lt(self.k)?)?;
        let lp = self.cat.log_prob(&v.f_clamp(0, self.k - 1)?)?;
        let neg_inf = lp.f_full_like(f64::NEG_INFINITY)?;
        Ok(lp.f_where_self(&inside, &neg_inf)?)
    }
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef> {
        Ok(Rc::new(ValueIndex {
            cat: self.cat.expand(batch_shape)?,
            k: self.k,
        }))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        self.cat.enumerate_support(expand)
    }
}

type ArgModel<'a, A, T> = Box<dyn Fn(&A) -> Result<T> + 'a>;

/// Memoized marginals of a model with arguments (see [`Marginal::memoized`]).
pub struct Memoized<'a, A, T> {
    model: ArgModel<'a, A, T>,
    cache: RefCell<HashMap<A, Rc<Marginal<T>>>>,
    hits: Cell<usize>,
    misses: Cell<usize>,
}

impl<A: Hash + Eq + Clone, T: MarginalValue> Memoized<'_, A, T> {
    /// The marginal of the model at `args`, computed on the first call with these arguments.
    pub fn get(&self, args: &A) -> Result<Rc<Marginal<T>>> {
        let cached = self.cache.borrow().get(args).cloned();
        if let Some(m) = cached {
            self.hits.set(self.hits.get() + 1);
            return Ok(m);
        }
        self.misses.set(self.misses.get() + 1);
        // The borrow is released while the model runs: it may use this cache itself.
        let m = Rc::new(Marginal::exact(|| (self.model)(args))?);
        self.cache.borrow_mut().insert(args.clone(), m.clone());
        Ok(m)
    }

    /// Calls answered from the cache.
    pub fn hits(&self) -> usize {
        self.hits.get()
    }

    /// Calls that ran the search.
    pub fn misses(&self) -> usize {
        self.misses.get()
    }

    /// Number of cached marginals.
    pub fn len(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.cache.borrow().is_empty()
    }

    /// Empties the cache (and resets the counters).
    pub fn clear(&self) {
        self.cache.borrow_mut().clear();
        self.hits.set(0);
        self.misses.set(0);
    }
}

/// `log(exp(a) + exp(b))`, stable.
pub(crate) fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// `log(sum(exp(xs)))`, stable; `-inf` for an empty slice.
pub(crate) fn logsumexp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m.is_infinite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
