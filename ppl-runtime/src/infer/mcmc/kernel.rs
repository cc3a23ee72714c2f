//! What HMC and NUTS share: the settings, the phase-space point, the leapfrog integrator and
//! Stan's initial step-size heuristic.

use super::ChainRng;
use rand::Rng;

use super::hmc::Hmc;
use super::init::InitStrategy;
use super::mass_matrix::InverseMassMatrix;
use super::nuts::Nuts;
use crate::error::{Error, Result};

/// A potential energy `U(z)` with its gradient: what HMC and NUTS integrate. Two
/// implementations: [`super::Potential`] evaluates the model with libtorch, and
/// [`super::CompiledPotential`] runs it as a compiled host program (`jit_compile`). The chain
/// driver picks one, once.
pub trait PotentialFn {
    /// `U(z)`, with `∇U(z)` written into `grad`.
    fn value_and_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64>;

    /// How many gradients were evaluated so far.
    fn num_grad_evals(&self) -> usize;
}

/// Settings shared by [`Hmc`] and [`Nuts`] (Pyro's defaults).
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// The initial step size (1.0); adapted during warmup unless `adapt_step_size` is off.
    pub step_size: f64,
    /// Adapt the step size by dual averaging during warmup (true).
    pub adapt_step_size: bool,
    /// Adapt the mass matrix in Stan's windows during warmup (true).
    pub adapt_mass_matrix: bool,
    /// A dense mass matrix instead of a diagonal one (false).
    pub full_mass: bool,
    /// The mean acceptance probability that step-size adaptation aims at (0.8).
    pub target_accept_prob: f64,
    /// How the chains start (uniform in (-2, 2) in unconstrained space).
    pub init_strategy: InitStrategy,
    /// A transition whose energy error exceeds this is divergent (1000, as in Stan and Pyro).
    pub max_energy_error: f64,
    /// Compile the potential into a host program once per chain (false; Pyro's `jit_compile`).
    /// See [`super::CompiledPotential`]: valid for models whose ops do not depend on the
    /// values of their latent sites, on the CPU. A model that cannot be compiled is an error.
    pub jit_compile: bool,
    /// Compile the potential where it can be, and otherwise run it on libtorch after a one-line
    /// note on stderr saying why (false). `jit_compile` takes precedence.
    pub auto_compile: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            step_size: 1.0,
            adapt_step_size: true,
            adapt_mass_matrix: true,
            full_mass: false,
            target_accept_prob: 0.8,
            init_strategy: InitStrategy::default(),
            max_energy_error: 1000.0,
            jit_compile: false,
            auto_compile: false,
        }
    }
}

/// An MCMC kernel: [`Hmc`] or [`Nuts`].
#[derive(Clone, Debug)]
pub enum Kernel {
    /// Hamiltonian Monte Carlo with a fixed number of steps (or trajectory length).
    Hmc(Hmc),
    /// The No-U-Turn sampler.
    Nuts(Nuts),
}

impl Kernel {
    /// The shared settings.
    pub fn options(&self) -> &KernelOptions {
        match self {
            Kernel::Hmc(h) => &h.options,
            Kernel::Nuts(n) => &n.options,
        }
    }

    /// One transition from `state`.
    pub(crate) fn transition(
        &self,
        pot: &mut dyn PotentialFn,
        inv_mass: &InverseMassMatrix,
        step_size: f64,
        state: &mut Point,
        rng: &mut ChainRng,
    ) -> Result<TransitionStats> {
        match self {
            Kernel::Hmc(h) => h.transition(pot, inv_mass, step_size, state, rng),
            Kernel::Nuts(n) => n.transition(pot, inv_mass, step_size, state, rng),
        }
    }
}

impl From<Hmc> for Kernel {
    fn from(h: Hmc) -> Kernel {
        Kernel::Hmc(h)
    }
}

impl From<Nuts> for Kernel {
    fn from(n: Nuts) -> Kernel {
        Kernel::Nuts(n)
    }
}

/// What one transition reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TransitionStats {
    /// The acceptance statistic (NUTS: the mean Metropolis probability over the trajectory).
    pub accept_prob: f64,
    /// Whether the trajectory diverged (energy error above the threshold, or not finite).
    pub diverging: bool,
    /// Leapfrog steps taken.
    pub num_steps: usize,
    /// NUTS tree depth (0 for HMC).
    pub tree_depth: usize,
    /// The Hamiltonian at the new state.
    pub energy: f64,
}

/// A point in phase space: position, momentum, potential and its gradient.
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// The unconstrained position.
    pub z: Vec<f64>,
    /// The momentum.
    pub p: Vec<f64>,
    /// `U(z)`.
    pub u: f64,
    /// `∇U(z)`.
    pub grad: Vec<f64>,
}

impl Point {
    /// The point at `z` (momentum zero), evaluating `U` and its gradient.
    pub fn at(pot: &mut dyn PotentialFn, z: Vec<f64>) -> Result<Point> {
        let mut grad = vec![0.0; z.len()];
        let u = pot.value_and_grad(&z, &mut grad)?;
        Ok(Point {
            p: vec![0.0; z.len()],
            z,
            u,
            grad,
        })
    }

    /// Copies `other` into `self`, reusing the buffers.
    pub fn copy_from(&mut self, other: &Point) {
        self.z.clone_from(&other.z);
        self.p.clone_from(&other.p);
        self.u = other.u;
        self.grad.clone_from(&other.grad);
    }

    /// `U + K`; not-a-number counts as infinite.
    pub fn energy(&self, inv_mass: &InverseMassMatrix) -> f64 {
        let h = self.u + inv_mass.kinetic_energy(&self.p);
        if h.is_nan() {
            f64::INFINITY
        } else {
            h
        }
    }
}

/// One leapfrog (velocity Verlet) step of size `eps` (negative: backwards in time). `v` is
/// scratch space of the dimension.
pub(crate) fn leapfrog(
    pot: &mut dyn PotentialFn,
    inv_mass: &InverseMassMatrix,
    pt: &mut Point,
    eps: f64,
    v: &mut [f64],
) -> Result<()> {
    let half = 0.5 * eps;
    for (p, g) in pt.p.iter_mut().zip(&pt.grad) {
        *p -= half * g;
    }
    inv_mass.velocity(&pt.p, v);
    for (z, vi) in pt.z.iter_mut().zip(v.iter()) {
        *z += eps * vi;
    }
    pt.u = pot.value_and_grad(&pt.z, &mut pt.grad)?;
    for (p, g) in pt.p.iter_mut().zip(&pt.grad) {
        *p -= half * g;
    }
    Ok(())
}

/// Stan's heuristic for a first step size: double or halve `eps` until the acceptance probability
/// of one leapfrog step crosses 0.8. Returns the step size and the number of leapfrog steps used.
pub(crate) fn find_reasonable_step_size(
    pot: &mut dyn PotentialFn,
    inv_mass: &InverseMassMatrix,
    start: &Point,
    mut eps: f64,
    rng: &mut ChainRng,
) -> Result<(f64, usize)> {
    if eps.is_nan() || eps <= 0.0 || eps > 1e7 || !eps.is_finite() {
        return Ok((eps, 0));
    }
    let target = 0.8f64.ln();
    let mut pt = start.clone();
    let mut v = vec![0.0; start.z.len()];
    let mut steps = 0;
    let mut direction = 0.0;
    loop {
        pt.copy_from(start);
        inv_mass.sample_momentum(rng, &mut pt.p);
        let h0 = pt.energy(inv_mass);
        leapfrog(pot, inv_mass, &mut pt, eps, &mut v)?;
        steps += 1;
        let delta_h = h0 - pt.energy(inv_mass);
        if direction == 0.0 {
            // As Stan: the first trial picks the direction, the next ones (with fresh momenta)
            // move the step size until the acceptance crosses the target.
            direction = if delta_h > target { 1.0 } else { -1.0 };
            continue;
        }
        let crossed_up = direction == 1.0 && (delta_h.is_nan() || delta_h <= target);
        let crossed_down = direction == -1.0 && (delta_h.is_nan() || delta_h >= target);
        if crossed_up || crossed_down {
            break;
        }
        eps = if direction == 1.0 {
            2.0 * eps
        } else {
            0.5 * eps
        };
        if eps > 1e7 {
            return Err(Error::Invalid(
                "the step size grew above 1e7 while searching for a reasonable one: the posterior \
                 is improper or flat in some direction"
                    .into(),
            ));
        }
        if eps < 1e-12 {
            return Err(Error::NonFinite(
                "the step size shrank below 1e-12 while searching for a reasonable one: the \
                 potential energy or its gradient is not finite near the initial point"
                    .into(),
            ));
        }
    }
    Ok((eps, steps))
}

/// `log(exp(a) + exp(b))`.
pub(crate) fn log_sum_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn uniform(rng: &mut ChainRng) -> f64 {
    rng.random::<f64>()
}

/// The builder setters of the shared [`KernelOptions`], for `impl Hmc` and `impl Nuts`.
macro_rules! kernel_option_setters {
    () => {
        /// The initial step size.
        pub fn step_size(mut self, s: f64) -> Self {
            self.options.step_size = s;
            self
        }
        /// Whether the step size adapts during warmup.
        pub fn adapt_step_size(mut self, on: bool) -> Self {
            self.options.adapt_step_size = on;
            self
        }
        /// Whether the mass matrix adapts during warmup.
        pub fn adapt_mass_matrix(mut self, on: bool) -> Self {
            self.options.adapt_mass_matrix = on;
            self
        }
        /// A dense mass matrix.
        pub fn full_mass(mut self, on: bool) -> Self {
            self.options.full_mass = on;
            self
        }
        /// The acceptance probability that step-size adaptation aims at.
        pub fn target_accept_prob(mut self, p: f64) -> Self {
            self.options.target_accept_prob = p;
            self
        }
        /// How chains start.
        pub fn init_strategy(mut self, s: InitStrategy) -> Self {
            self.options.init_strategy = s;
            self
        }
        /// Compile the potential into a host program (Pyro's `jit_compile`): see
        /// [`crate::infer::mcmc::CompiledPotential`].
        pub fn jit_compile(mut self, on: bool) -> Self {
            self.options.jit_compile = on;
            self
        }
        /// Compile the potential where the model allows it, and run it on libtorch otherwise,
        /// after a one-line note saying why: the speed of `jit_compile` without its refusals.
        pub fn auto_compile(mut self) -> Self {
            self.options.auto_compile = true;
            self
        }
    };
}
pub(crate) use kernel_option_setters;
