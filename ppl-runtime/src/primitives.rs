//! The primitives a model calls: `sample`, `param`, `factor`, `deterministic`, `module`, and the
//! global switches `set_rng_seed` and `clear_param_store`.

use std::cell::RefCell;
use std::rc::Rc;

use rand::SeedableRng;
use tch::{Kind, Tensor};

use crate::constraints::Constraint;
use crate::distributions::{Delta, Distribution, DistributionExt, Unit};
use crate::error::{Error, Result, ResultExt};
use crate::naming::unique_name;
use crate::params::with_param_store;
use crate::poutine::runtime::{apply_stack, stack_is_empty, InferConfig, Msg, ParamSpec, SiteKind};

/// Optional arguments of [`sample_with`].
#[derive(Default)]
pub struct SampleOpts {
    /// The observed value.
    pub obs: Option<Tensor>,
    /// Where `obs` is observed (true) and where the value is sampled instead (false).
    pub obs_mask: Option<Tensor>,
    /// Per-site inference settings.
    pub infer: Option<InferConfig>,
}

/// Draws a value from `dist` at a site called `name`, or observes `obs` there.
///
/// With no handler installed this is just a draw (or `obs`); under handlers the site is traced,
/// replayed, conditioned, ... by name.
pub fn sample(
    name: impl Into<String>,
    dist: impl Distribution + 'static,
    obs: Option<Tensor>,
) -> Result<Tensor> {
    if stack_is_empty() {
        return match obs {
            Some(v) => Ok(v),
            None if dist.has_rsample() => dist.rsample(&[]).at_site(&name.into()),
            None => dist.sample(&[]).at_site(&name.into()),
        };
    }
    let mut msg = Msg::sample(unique_name(name.into()), Rc::new(dist), obs);
    apply_stack(&mut msg)?;
    take_value(msg)
}

/// [`sample`] with all options (`obs`, `obs_mask`, `infer`).
pub fn sample_with(
    name: impl Into<String>,
    dist: impl Distribution + 'static,
    opts: SampleOpts,
) -> Result<Tensor> {
    let name = name.into();
    if let Some(mask) = opts.obs_mask {
        return masked_observe(name, dist, opts.obs, &mask, opts.infer);
    }
    if opts.infer.is_none() {
        return sample(name, dist, opts.obs);
    }
    let mut msg = Msg::sample(unique_name(name), Rc::new(dist), opts.obs);
    if let Some(infer) = opts.infer {
        msg.infer = infer;
    }
    apply_stack(&mut msg)?;
    take_value(msg)
}

fn take_value(msg: Msg) -> Result<Tensor> {
    msg.value.ok_or_else(|| Error::MissingSite {
        site: msg.name,
        message: "no value after all handlers ran".into(),
    })
}

/// Partly observed data, as Pyro's `obs_mask`: `{name}_observed` scores `obs` where the mask is
/// true, `{name}_unobserved` is sampled (and scored) where it is false, and a deterministic site
/// `{name}` records the combined value.
fn masked_observe(
    name: String,
    dist: impl Distribution + 'static,
    obs: Option<Tensor>,
    mask: &Tensor,
    infer: Option<InferConfig>,
) -> Result<Tensor> {
    let obs = obs.ok_or_else(|| Error::InvalidSite {
        site: name.clone(),
        message: "obs_mask was given without obs".into(),
    })?;
    let mask = mask.f_to_kind(Kind::Bool)?;
    let event_dim = dist.event_dim();
    let dist: crate::distributions::DistRef = Rc::new(dist);
    let observed = sample_with(
        format!("{name}_observed"),
        dist.clone().mask(&mask)?,
        SampleOpts {
            obs: Some(obs),
            obs_mask: None,
            infer: infer.clone(),
        },
    )?;
    let unobserved = sample_with(
        format!("{name}_unobserved"),
        dist.mask(&mask.f_logical_not()?)?,
        SampleOpts {
            obs: None,
            obs_mask: None,
            infer,
        },
    )?;
    let mut m = mask.shallow_clone();
    for _ in 0..event_dim {
        m = m.f_unsqueeze(-1)?;
    }
    let value = observed.f_where_self(&m, &unobserved)?;
    deterministic(name, &value, event_dim)
}

/// Reads (or creates) the learnable value `name` (see [`crate::params`]).
///
/// `init` runs only when the store does not have `name` yet.
pub fn param<F>(
    name: impl Into<String>,
    init: Option<F>,
    constraint: Constraint,
    event_dim: Option<usize>,
) -> Result<Tensor>
where
    F: FnOnce() -> Result<Tensor>,
{
    let name = name.into();
    let init = match init {
        Some(f) if !with_param_store(|ps| ps.contains(&name)) => Some(f().at_site(&name)?),
        _ => None,
    };
    if stack_is_empty() {
        return with_param_store(|ps| ps.get_or_init(&name, init, &constraint, event_dim));
    }
    let spec = ParamSpec {
        init,
        constraint,
        event_dim,
    };
    let mut msg = Msg::param(name, spec);
    apply_stack(&mut msg)?;
    take_value(msg)
}

/// Adds `log_factor` to the log-density of the program (Pyro's `factor`), as an observed site
/// of the [`Unit`] distribution.
pub fn factor(name: impl Into<String>, log_factor: &Tensor) -> Result<()> {
    let d = Unit::new(log_factor)?;
    let obs = d.sample(&[])?;
    let _ = sample(name, d, Some(obs))?;
    Ok(())
}

/// Records `value` at a site called `name` (Pyro's `deterministic`); it is not scored.
pub fn deterministic(name: impl Into<String>, value: &Tensor, event_dim: usize) -> Result<Tensor> {
    let name = name.into();
    let d = Delta::new(value, event_dim)?;
    let mut msg = Msg::sample(unique_name(name), Rc::new(d), Some(value.shallow_clone()));
    msg.infer.is_deterministic = true;
    if stack_is_empty() {
        return Ok(value.shallow_clone());
    }
    apply_stack(&mut msg)?;
    take_value(msg)
}

/// Registers the variables of a `tch::nn::VarStore` as params named `{prefix}.{variable}` (Pyro's
/// `module`), so that optimizers update them. The module keeps using its own tensors; params
/// loaded into the store under those names are copied into them.
pub fn module(prefix: &str, vs: &tch::nn::VarStore) -> Result<()> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let full = format!("{prefix}.{name}");
        with_param_store(|ps| ps.register_leaf(&full, &var))?;
        if !stack_is_empty() {
            // Let handlers (trace, for the optimizer) see the param site.
            let _ = param(
                full,
                Some(|| Ok(var.shallow_clone())),
                Constraint::Real,
                None,
            )?;
        }
    }
    Ok(())
}

/// ppl's own generator (the same ChaCha12 stream as `rand`'s `StdRng` for a given seed, and its
/// state can be read back, so checkpoints can hold it).
pub type PplRng = rand_chacha::ChaCha12Rng;

thread_local! {
    static RNG: RefCell<PplRng> = RefCell::new(PplRng::from_os_rng());
}

/// Seeds torch's generators (CPU, and CUDA where present) and this thread's `rand` generator.
pub fn set_rng_seed(seed: u64) {
    tch::manual_seed(seed as i64);
    RNG.with(|r| *r.borrow_mut() = PplRng::seed_from_u64(seed));
}

/// The state of ppl's random streams on this thread: torch's CPU generator and this thread's
/// `rand` generator (Pyro's `pyro.util.get_rng_state`). CUDA generators are not included.
#[derive(Clone, Debug)]
pub struct RngState {
    torch: Vec<u8>,
    rand: PplRng,
}

impl RngState {
    /// The state as bytes (what checkpoints hold): torch's state with its length, then the
    /// `rand` generator's seed, stream and word position.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.torch.len() + 56);
        out.extend_from_slice(&(self.torch.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.torch);
        out.extend_from_slice(&self.rand.get_seed());
        out.extend_from_slice(&self.rand.get_stream().to_le_bytes());
        out.extend_from_slice(&self.rand.get_word_pos().to_le_bytes());
        out
    }

    /// The state [`RngState::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<RngState> {
        let bad = || Error::Checkpoint("a random-generator state of the wrong length".into());
        let n = u64::from_le_bytes(
            bytes
                .get(..8)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let rest = bytes.get(8..).ok_or_else(bad)?;
        if rest.len() != n + 56 {
            return Err(bad());
        }
        let (torch, r) = rest.split_at(n);
        let seed: [u8; 32] = r[..32].try_into().map_err(|_| bad())?;
        let stream = u64::from_le_bytes(r[32..40].try_into().map_err(|_| bad())?);
        let word_pos = u128::from_le_bytes(r[40..56].try_into().map_err(|_| bad())?);
        let mut rand = PplRng::from_seed(seed);
        rand.set_stream(stream);
        rand.set_word_pos(word_pos);
        Ok(RngState {
            torch: torch.to_vec(),
            rand,
        })
    }
}

/// The current [`RngState`].
pub fn get_rng_state() -> Result<RngState> {
    Ok(RngState {
        torch: crate::jit::torch_rng_state()?,
        rand: RNG.with(|r| r.borrow().clone()),
    })
}

/// Puts the random streams back to `state` (Pyro's `pyro.util.set_rng_state`): the draws that
/// follow are those that followed when the state was taken.
pub fn set_rng_state(state: &RngState) -> Result<()> {
    crate::jit::set_torch_rng_state(&state.torch)?;
    RNG.with(|r| *r.borrow_mut() = state.rand.clone());
    Ok(())
}

/// Runs `f` with this thread's `rand` generator (seeded by [`set_rng_seed`]).
pub fn with_rng<R>(f: impl FnOnce(&mut PplRng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// Empties this thread's param store.
pub fn clear_param_store() {
    with_param_store(|ps| ps.clear());
}

/// Whether a message is a sample message (helper for handler predicates).
pub fn is_sample(msg: &Msg) -> bool {
    msg.kind == SiteKind::Sample
}

#[cfg(test)]
mod rng_tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::Rng;

    /// `PplRng` is `StdRng`'s stream (so results seeded before the switch are unchanged), and
    /// its state survives `to_bytes`/`from_bytes` mid-stream.
    #[test]
    fn ppl_rng_is_std_rng_and_its_state_round_trips() {
        let mut a = StdRng::seed_from_u64(5);
        let mut b = PplRng::seed_from_u64(5);
        for _ in 0..10 {
            assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
        set_rng_seed(11);
        let _ = with_rng(|r| r.random::<u32>());
        let state = get_rng_state().expect("state");
        let again = RngState::from_bytes(&state.to_bytes()).expect("bytes");
        let x: Vec<u64> = (0..5).map(|_| with_rng(|r| r.random::<u64>())).collect();
        set_rng_state(&again).expect("set");
        let y: Vec<u64> = (0..5).map(|_| with_rng(|r| r.random::<u64>())).collect();
        assert_eq!(x, y);
        assert!(RngState::from_bytes(&[1, 2, 3]).is_err());
    }
}
