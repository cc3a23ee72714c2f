//! The shared machinery of all handlers: the message, the thread-local handler stack and
//! `apply_stack`.
//!
//! Stack order: the *innermost* handler is the one entered last. `apply_stack` calls `process` from
//! the innermost handler outwards, stopping early at a handler that sets `msg.stop`; then, unless a
//! handler set `msg.done`, it runs the default behaviour (draw a sample, read the param store);
//! then it calls `postprocess` back from the outermost handler reached to the innermost.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use tch::Tensor;

use crate::constraints::Constraint;
use crate::distributions::DistRef;
use crate::error::{Error, Result, ResultExt};
use crate::params;

/// What kind of site a message describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// A random choice (`sample!`), including observations, factors and deterministic sites.
    Sample,
    /// A learnable value (`param!`).
    Param,
}

/// How a discrete site is enumerated (Pyro's `infer={"enumerate": ...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enumerate {
    /// One run per value.
    Sequential,
    /// All values at once, in a new batch dimension.
    Parallel,
}

/// Per-site inference settings (Pyro's `infer` dict).
#[derive(Debug, Default)]
pub struct InferConfig {
    /// Enumerate this discrete site.
    pub enumerate: Option<Enumerate>,
    /// Expand enumerated values to the full batch shape.
    pub expand: bool,
    /// An auxiliary guide site that the model does not have.
    pub is_auxiliary: bool,
    /// Set by `deterministic`: the site records a value and is not scored.
    pub is_deterministic: bool,
    /// Set on the site that draws a subsampling plate's indices; it is not scored.
    pub is_subsample: bool,
    /// Set by `do`: the intervened site is not scored.
    pub do_not_score: bool,
    /// A data-dependent baseline for the score-function term of this site (TraceGraphElbo).
    pub baseline_value: Option<Tensor>,
    /// Decay of the running-average baseline of this site (TraceGraphElbo).
    pub baseline_beta: Option<f64>,
    /// Use a decaying-average baseline at this site (TraceGraphElbo).
    pub use_decaying_avg_baseline: bool,
    /// A neural-network baseline at this site (TraceGraphElbo): `module.forward(input)`; its
    /// params (registered with `module`) are trained to predict the downstream cost.
    pub nn_baseline: Option<NnBaseline>,
    /// Set by [`markov`](crate::poutine::markov) contexts: how deeply the site is nested in them
    /// and which earlier sites are still in its scope. Read by the enum handler.
    #[doc(hidden)]
    pub markov: Option<MarkovScope>,
    /// Set by the enum handler (Pyro's `_enumerate_dim`): the dim this site's own values were
    /// enumerated in.
    #[doc(hidden)]
    pub enum_dim: Option<i64>,
    /// Set by the enum handler (Pyro's `_dim_to_id`): every enumeration dim the site's
    /// log-density may carry, with the id of the enumerated variable that holds it there. Dims
    /// are recycled by `markov`, ids never are.
    #[doc(hidden)]
    pub dim_to_id: Vec<(i64, usize)>,
}

/// The `markov` bookkeeping of one site (Pyro's `_markov_depth` and `_markov_scope`).
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct MarkovScope {
    /// The number of markov contexts the site is inside.
    pub depth: usize,
    /// Earlier sites, each with the number of enclosing contexts whose window shows it. A site is
    /// in scope when that number equals its own depth.
    pub scope: std::collections::HashMap<String, usize>,
}

/// A neural-network baseline and its input.
#[derive(Debug)]
pub struct NnBaseline {
    /// The network.
    pub module: Rc<dyn tch::nn::Module>,
    /// Its input.
    pub input: Tensor,
}

impl Clone for NnBaseline {
    fn clone(&self) -> Self {
        NnBaseline {
            module: self.module.clone(),
            input: self.input.shallow_clone(),
        }
    }
}

impl Clone for InferConfig {
    fn clone(&self) -> Self {
        InferConfig {
            enumerate: self.enumerate,
            expand: self.expand,
            is_auxiliary: self.is_auxiliary,
            is_deterministic: self.is_deterministic,
            is_subsample: self.is_subsample,
            do_not_score: self.do_not_score,
            baseline_value: self.baseline_value.as_ref().map(Tensor::shallow_clone),
            baseline_beta: self.baseline_beta,
            use_decaying_avg_baseline: self.use_decaying_avg_baseline,
            nn_baseline: self.nn_baseline.clone(),
            markov: self.markov.clone(),
            enum_dim: self.enum_dim,
            dim_to_id: self.dim_to_id.clone(),
        }
    }
}

impl InferConfig {
    /// Merges `other` into `self`: fields set in `other` win.
    pub fn update(&mut self, other: &InferConfig) {
        if other.enumerate.is_some() {
            self.enumerate = other.enumerate;
        }
        self.expand |= other.expand;
        self.is_auxiliary |= other.is_auxiliary;
        self.is_deterministic |= other.is_deterministic;
        self.is_subsample |= other.is_subsample;
        self.do_not_score |= other.do_not_score;
        if let Some(b) = &other.baseline_value {
            self.baseline_value = Some(b.shallow_clone());
        }
        if other.baseline_beta.is_some() {
            self.baseline_beta = other.baseline_beta;
        }
        self.use_decaying_avg_baseline |= other.use_decaying_avg_baseline;
        if other.nn_baseline.is_some() {
            self.nn_baseline = other.nn_baseline.clone();
        }
    }
}

/// One conditional-independence frame: a plate the site is inside.
#[derive(Clone, Debug, PartialEq)]
pub struct CondIndepFrame {
    /// The plate's name.
    pub name: Rc<str>,
    /// Its batch dimension (negative) for a vectorized plate; `None` for a sequential one.
    pub dim: Option<i64>,
    /// Its size for broadcasting: the subsample size when subsampling.
    pub size: i64,
    /// The full size of the data the plate ranges over.
    pub full_size: i64,
    /// The iteration index of a sequential plate (0 for a vectorized one).
    pub counter: usize,
}

impl CondIndepFrame {
    /// Whether the frame is a vectorized plate.
    pub fn vectorized(&self) -> bool {
        self.dim.is_some()
    }
}

/// The initial (constrained) value of a param site, present only when the store does not have
/// the param yet (the `param!` initializer runs at most once per name).
pub type ParamInit = Tensor;

/// The extra fields of a param message.
pub struct ParamSpec {
    /// The initial value; `None` when the param is already stored (or must be).
    pub init: Option<ParamInit>,
    /// The constraint of the constrained value.
    pub constraint: Constraint,
    /// How many rightmost dimensions form one event (for lifting and autoguides).
    pub event_dim: Option<usize>,
}

impl fmt::Debug for ParamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamSpec")
            .field("constraint", &self.constraint)
            .field("event_dim", &self.event_dim)
            .finish_non_exhaustive()
    }
}

/// A message: one site's request travelling through the handler stack.
#[derive(Debug)]
pub struct Msg {
    /// Sample or param.
    pub kind: SiteKind,
    /// The site's unique name in this run.
    pub name: String,
    /// The distribution of a sample site.
    pub dist: Option<DistRef>,
    /// The value: given (observed, replayed, conditioned) or filled in by the default behaviour.
    pub value: Option<Tensor>,
    /// Whether the value is an observation.
    pub is_observed: bool,
    /// Multiplier of the site's log-density (from `scale` and subsampling plates).
    pub scale: f64,
    /// Boolean mask of the site's log-density, broadcast against its batch shape.
    pub mask: Option<Tensor>,
    /// The plates the site is inside, innermost last.
    pub cond_indep_stack: Vec<CondIndepFrame>,
    /// Per-site inference settings.
    pub infer: InferConfig,
    /// Set by a handler to hide the message from the handlers outside it.
    pub stop: bool,
    /// Set by a handler that has produced the value: the default behaviour is skipped.
    pub done: bool,
    /// Param-site fields.
    pub param: Option<ParamSpec>,
}

impl Msg {
    /// A new sample message.
    pub fn sample(name: String, dist: DistRef, obs: Option<Tensor>) -> Msg {
        Msg {
            kind: SiteKind::Sample,
            name,
            dist: Some(dist),
            is_observed: obs.is_some(),
            value: obs,
            scale: 1.0,
            mask: None,
            cond_indep_stack: Vec::new(),
            infer: InferConfig::default(),
            stop: false,
            done: false,
            param: None,
        }
    }

    /// A new param message.
    pub fn param(name: String, spec: ParamSpec) -> Msg {
        Msg {
            kind: SiteKind::Param,
            name,
            dist: None,
            value: None,
            is_observed: false,
            scale: 1.0,
            mask: None,
            cond_indep_stack: Vec::new(),
            infer: InferConfig::default(),
            stop: false,
            done: false,
            param: Some(spec),
        }
    }

    /// The distribution of a sample message (an error for a param message).
    pub fn dist(&self) -> Result<&DistRef> {
        self.dist.as_ref().ok_or_else(|| {
            Error::Internal(format!(
                "site `{}`: a sample message has no distribution",
                self.name
            ))
        })
    }
}

/// An effect handler: it sees every message sent while it is on the stack.
///
/// Handlers come in three faces: the struct (`TraceMessenger`), the RAII guard
/// (`let _g = TraceMessenger::new().enter();`) and the closure form (`poutine::trace(|| ...)`).
pub trait Messenger: 'static {
    /// Called when the handler is entered (Pyro's `__enter__`).
    fn on_enter(&mut self) {}
    /// Called on the way in, from the innermost handler outwards.
    fn process(&mut self, _msg: &mut Msg) -> Result<()> {
        Ok(())
    }
    /// Called on the way out, from the outermost handler reached back to the innermost.
    fn postprocess(&mut self, _msg: &mut Msg) -> Result<()> {
        Ok(())
    }
}

type Frame = Rc<RefCell<dyn Messenger>>;

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Number of handlers on this thread's stack.
pub fn stack_depth() -> usize {
    STACK.with(|s| s.borrow().len())
}

/// Whether any handler is installed on this thread.
pub fn stack_is_empty() -> bool {
    STACK.with(|s| s.borrow().is_empty())
}

/// Pushes a handler and returns its position.
pub(crate) fn push(frame: Frame) -> usize {
    STACK.with(|s| {
        let mut s = s.borrow_mut();
        s.push(frame);
        s.len() - 1
    })
}

/// Removes the handler at `pos` and everything entered after it (what an unwinding panic left).
pub(crate) fn truncate(pos: usize) {
    // Take the frames out first and drop them after the borrow ends: dropping a handler may run
    // arbitrary code.
    let removed: Vec<Frame> = STACK.with(|s| {
        let mut s = s.borrow_mut();
        if pos < s.len() {
            s.split_off(pos)
        } else {
            Vec::new()
        }
    });
    drop(removed);
}

fn frame_at(i: usize) -> Option<Frame> {
    STACK.with(|s| s.borrow().get(i).cloned())
}

/// Sends `msg` through the handler stack and runs the default behaviour.
///
/// The stack is not borrowed while a handler runs, so handlers may call primitives themselves
/// (nested inference). A handler that is already running further up this thread's call chain is
/// skipped by such a nested message.
pub fn apply_stack(msg: &mut Msg) -> Result<()> {
    let depth = stack_depth();
    let mut reached = 0;
    for i in (0..depth).rev() {
        reached = i;
        let Some(frame) = frame_at(i) else { continue };
        let Ok(mut h) = frame.try_borrow_mut() else {
            continue;
        };
        h.process(msg)?;
        if msg.stop {
            break;
        }
    }
    if depth == 0 {
        return default_process(msg);
    }
    default_process(msg)?;
    for i in reached..depth {
        let Some(frame) = frame_at(i) else { continue };
        let Ok(mut h) = frame.try_borrow_mut() else {
            continue;
        };
        h.postprocess(msg)?;
    }
    Ok(())
}

/// The behaviour when no handler has produced a value: draw from the distribution (`rsample`
/// where it is reparameterized, so gradients flow) or read the param store.
pub fn default_process(msg: &mut Msg) -> Result<()> {
    if msg.done || msg.value.is_some() {
        return Ok(());
    }
    match msg.kind {
        SiteKind::Sample => {
            let d = msg.dist()?;
            let v = if d.has_rsample() {
                d.rsample(&[])
            } else {
                d.sample(&[])
            }
            .at_site(&msg.name)?;
            msg.value = Some(v);
        }
        SiteKind::Param => {
            let spec = msg.param.as_mut().ok_or_else(|| {
                Error::Internal(format!(
                    "site `{}`: a param message has no param spec",
                    msg.name
                ))
            })?;
            let v = params::with_param_store(|ps| {
                ps.get_or_init(
                    &msg.name,
                    spec.init.take(),
                    &spec.constraint,
                    spec.event_dim,
                )
            })?;
            msg.value = Some(v);
        }
    }
    msg.done = true;
    Ok(())
}

/// The RAII guard of an entered handler: dropping it removes the handler (and, after a panic,
/// everything entered after it). Guards are `!Send`: a handler belongs to one thread's stack.
#[must_use = "the handler is removed as soon as the guard is dropped"]
pub struct HandlerGuard<M: Messenger> {
    handler: Rc<RefCell<M>>,
    pos: usize,
    active: bool,
}

impl<M: Messenger> HandlerGuard<M> {
    /// Runs `f` with mutable access to the handler's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        f(&mut self.handler.borrow_mut())
    }

    /// Removes the handler from the stack and returns it, with whatever state it gathered.
    ///
    /// Fails only if something else still holds the handler, which this API does not allow
    /// (the stack's own reference is gone once the handler is removed).
    pub fn exit(mut self) -> Result<M> {
        self.active = false;
        truncate(self.pos);
        let rc = self.handler.clone();
        drop(self);
        Rc::try_unwrap(rc).map(RefCell::into_inner).map_err(|_| {
            Error::Internal("a handler left the stack while something still held it".into())
        })
    }
}

impl<M: Messenger> Drop for HandlerGuard<M> {
    fn drop(&mut self) {
        if self.active {
            truncate(self.pos);
        }
    }
}

/// Entering and running handlers; implemented for every [`Messenger`].
pub trait Handler: Messenger + Sized {
    /// Puts the handler on this thread's stack until the guard is dropped.
    fn enter(mut self) -> HandlerGuard<Self> {
        self.on_enter();
        let handler = Rc::new(RefCell::new(self));
        let pos = push(handler.clone());
        HandlerGuard {
            handler,
            pos,
            active: true,
        }
    }

    /// Runs `f` under the handler; the handler's state is discarded.
    fn run<R>(self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        let _g = self.enter();
        f()
    }

    /// Runs `f` under the handler and returns the handler too, with the state it gathered.
    fn run_with<R>(self, f: impl FnOnce() -> Result<R>) -> Result<(R, Self)> {
        let g = self.enter();
        let r = f()?;
        Ok((r, g.exit()?))
    }

    /// A deferred form: wraps a one-argument model (use a tuple for several) into a function that
    /// runs it under a fresh copy of this handler each time it is called.
    fn wrap<A, R>(self, f: impl Fn(A) -> Result<R>) -> impl Fn(A) -> Result<R>
    where
        Self: Clone,
    {
        move |a| self.clone().run(|| f(a))
    }
}

impl<M: Messenger> Handler for M {}
