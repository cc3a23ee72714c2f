//! Hamiltonian Monte Carlo with a fixed number of leapfrog steps (or a fixed trajectory length)
//! and a Metropolis correction (Pyro's `HMC`).

use super::ChainRng;

use super::init::InitStrategy;
use super::kernel::{leapfrog, uniform, KernelOptions, Point, PotentialFn, TransitionStats};
use super::mass_matrix::InverseMassMatrix;
use crate::error::Result;

/// The HMC kernel. Without `num_steps` or `trajectory_length`, the trajectory length is 2π (as
/// in Pyro).
///
/// ```
/// use ppl::infer::mcmc::Hmc;
/// let hmc = Hmc::new().num_steps(10).target_accept_prob(0.9);
/// assert_eq!(hmc.num_steps, Some(10));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Hmc {
    /// Settings shared with NUTS.
    pub options: KernelOptions,
    /// Leapfrog steps per transition.
    pub num_steps: Option<usize>,
    /// Trajectory length (`num_steps = max(1, round(length / step_size))`).
    pub trajectory_length: Option<f64>,
}

impl Hmc {
    /// Pyro's defaults.
    pub fn new() -> Hmc {
        Hmc::default()
    }
    /// A fixed number of leapfrog steps.
    pub fn num_steps(mut self, n: usize) -> Hmc {
        self.num_steps = Some(n);
        self
    }
    /// A fixed trajectory length.
    pub fn trajectory_length(mut self, l: f64) -> Hmc {
        self.trajectory_length = Some(l);
        self
    }
    super::kernel::kernel_option_setters!();

    fn steps_for(&self, step_size: f64) -> usize {
        match (self.num_steps, self.trajectory_length) {
            (Some(n), _) => n.max(1),
            (None, l) => {
                let l = l.unwrap_or(2.0 * std::f64::consts::PI);
                ((l / step_size).round() as usize).clamp(1, 1 << 16)
            }
        }
    }

    pub(crate) fn transition(
        &self,
        pot: &mut dyn PotentialFn,
        inv_mass: &InverseMassMatrix,
        step_size: f64,
        state: &mut Point,
        rng: &mut ChainRng,
    ) -> Result<TransitionStats> {
        inv_mass.sample_momentum(rng, &mut state.p);
        let h0 = state.energy(inv_mass);
        let mut pt = state.clone();
        let mut v = vec![0.0; pt.z.len()];
        let n = self.steps_for(step_size);
        let mut taken = 0;
        let mut diverging = false;
        for _ in 0..n {
            leapfrog(pot, inv_mass, &mut pt, step_size, &mut v)?;
            taken += 1;
            let err = pt.energy(inv_mass) - h0;
            if err.is_nan() || err > self.options.max_energy_error {
                diverging = true;
                break;
            }
        }
        let h1 = pt.energy(inv_mass);
        let accept_prob = if diverging {
            0.0
        } else {
            (h0 - h1).exp().min(1.0)
        };
        let energy = if uniform(rng) < accept_prob {
            state.copy_from(&pt);
            h1
        } else {
            h0
        };
        Ok(TransitionStats {
            accept_prob,
            diverging,
            num_steps: taken,
            tree_depth: 0,
            energy,
        })
    }
}
