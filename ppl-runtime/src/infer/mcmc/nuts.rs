//! The No-U-Turn sampler as Stan runs it: the trajectory doubles forwards or backwards in time
//! until it makes a U-turn (Betancourt's generalized criterion on the sum of momenta, checked on
//! every merged subtree and across the boundary of each merge), a divergence, or `max_tree_depth`
//! doublings. The next state is drawn from the whole trajectory by multinomial sampling: uniform
//! (weight-proportional) within subtrees, biased towards the newer half at the top level.
//!
//! The extra checks across a merge extend each half by the point of the other half that is
//! adjacent to it. Inside subtrees this is exactly Stan's `build_tree`; at the top level, Stan's
//! `transition` takes the momentum at the far end of the *last added subtree* where the end of
//! the whole old trajectory is meant (they coincide for the first two doublings only); here the
//! trajectory's actual ends are tracked.

use super::ChainRng;

use super::init::InitStrategy;
use super::kernel::{
    leapfrog, log_sum_exp, uniform, KernelOptions, Point, PotentialFn, TransitionStats,
};
use super::mass_matrix::InverseMassMatrix;
use crate::error::Result;

/// The NUTS kernel.
///
/// ```
/// use ppl::infer::mcmc::Nuts;
/// let nuts = Nuts::new().max_tree_depth(8).full_mass(true);
/// assert_eq!(nuts.max_tree_depth, 8);
/// ```
#[derive(Clone, Debug)]
pub struct Nuts {
    /// Settings shared with HMC.
    pub options: KernelOptions,
    /// At most `2^max_tree_depth` leapfrog steps per transition (10).
    pub max_tree_depth: usize,
}

impl Default for Nuts {
    fn default() -> Self {
        Nuts {
            options: KernelOptions::default(),
            max_tree_depth: 10,
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn add_into(acc: &mut [f64], x: &[f64]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

fn sum(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The generalized no-U-turn criterion: the trajectory keeps going while both end velocities
/// point along the summed momentum `rho`.
fn no_u_turn(p_sharp_minus: &[f64], p_sharp_plus: &[f64], rho: &[f64]) -> bool {
    dot(p_sharp_plus, rho) > 0.0 && dot(p_sharp_minus, rho) > 0.0
}

/// The ends of a subtree: momenta and velocities at its first and last points, and the sum of its
/// momenta.
struct Ends {
    p_beg: Vec<f64>,
    p_end: Vec<f64>,
    ps_beg: Vec<f64>,
    ps_end: Vec<f64>,
    rho: Vec<f64>,
}

impl Ends {
    fn zeros(n: usize) -> Ends {
        Ends {
            p_beg: vec![0.0; n],
            p_end: vec![0.0; n],
            ps_beg: vec![0.0; n],
            ps_end: vec![0.0; n],
            rho: vec![0.0; n],
        }
    }
}

struct TreeBuilder<'a> {
    pot: &'a mut dyn PotentialFn,
    inv_mass: &'a InverseMassMatrix,
    eps: f64,
    h0: f64,
    max_delta_h: f64,
    rng: &'a mut ChainRng,
    n_leapfrog: usize,
    sum_metro_prob: f64,
    divergent: bool,
    v: Vec<f64>,
}

impl TreeBuilder<'_> {
    /// Builds a subtree of `2^depth` steps from `z` in direction `sign`; `z` ends at the subtree's
    /// far end, `z_propose` is the subtree's multinomial draw, `ends` its boundary. Returns whether
    /// the subtree is valid (no divergence, no internal U-turn).
    fn build(
        &mut self,
        depth: usize,
        z: &mut Point,
        z_propose: &mut Point,
        ends: &mut Ends,
        sign: f64,
        log_sum_weight: &mut f64,
    ) -> Result<bool> {
        if depth == 0 {
            leapfrog(self.pot, self.inv_mass, z, sign * self.eps, &mut self.v)?;
            self.n_leapfrog += 1;
            let h = z.energy(self.inv_mass);
            // A NaN energy error is a divergence too.
            let err = h - self.h0;
            if err.is_nan() || err > self.max_delta_h {
                self.divergent = true;
            }
            let log_w = self.h0 - h;
            *log_sum_weight = log_sum_exp(*log_sum_weight, log_w);
            self.sum_metro_prob += if log_w > 0.0 { 1.0 } else { log_w.exp() };
            z_propose.copy_from(z);
            self.inv_mass.velocity(&z.p, &mut ends.ps_beg);
            ends.ps_end.clone_from(&ends.ps_beg);
            add_into(&mut ends.rho, &z.p);
            ends.p_beg.clone_from(&z.p);
            ends.p_end.clone_from(&z.p);
            return Ok(!self.divergent);
        }
        let n = z.z.len();
        // The first half.
        let mut init = Ends::zeros(n);
        let mut lsw_init = f64::NEG_INFINITY;
        if !self.build(depth - 1, z, z_propose, &mut init, sign, &mut lsw_init)? {
            return Ok(false);
        }
        // The second half.
        let mut z_propose_final = z.clone();
        let mut fin = Ends::zeros(n);
        let mut lsw_final = f64::NEG_INFINITY;
        if !self.build(
            depth - 1,
            z,
            &mut z_propose_final,
            &mut fin,
            sign,
            &mut lsw_final,
        )? {
            return Ok(false);
        }
        // Multinomial draw between the halves, proportional to their weights.
        let lsw_subtree = log_sum_exp(lsw_init, lsw_final);
        *log_sum_weight = log_sum_exp(*log_sum_weight, lsw_subtree);
        if lsw_final > lsw_subtree || uniform(self.rng) < (lsw_final - lsw_subtree).exp() {
            z_propose.copy_from(&z_propose_final);
        }
        let rho_subtree = sum(&init.rho, &fin.rho);
        add_into(&mut ends.rho, &rho_subtree);
        // U-turn across the merged subtree, and across each half extended by the neighbouring
        // point of the other half.
        let mut persist = no_u_turn(&init.ps_beg, &fin.ps_end, &rho_subtree);
        persist &= no_u_turn(&init.ps_beg, &fin.ps_beg, &sum(&init.rho, &fin.p_beg));
        persist &= no_u_turn(&init.ps_end, &fin.ps_end, &sum(&fin.rho, &init.p_end));
        ends.p_beg = init.p_beg;
        ends.ps_beg = init.ps_beg;
        ends.p_end = fin.p_end;
        ends.ps_end = fin.ps_end;
        Ok(persist)
    }
}

impl Nuts {
    /// Pyro's defaults (Stan's too): tree depth 10, target acceptance 0.8, diagonal mass matrix.
    pub fn new() -> Nuts {
        Nuts::default()
    }
    /// At most `2^depth` leapfrog steps per transition.
    pub fn max_tree_depth(mut self, depth: usize) -> Nuts {
        self.max_tree_depth = depth;
        self
    }
    super::kernel::kernel_option_setters!();

    pub(crate) fn transition(
        &self,
        pot: &mut dyn PotentialFn,
        inv_mass: &InverseMassMatrix,
        step_size: f64,
        state: &mut Point,
        rng: &mut ChainRng,
    ) -> Result<TransitionStats> {
        let n = state.z.len();
        inv_mass.sample_momentum(rng, &mut state.p);
        let h0 = state.energy(inv_mass);

        let mut z_fwd = state.clone();
        let mut z_bck = state.clone();
        let mut z_sample = state.clone();
        let mut z_propose = state.clone();

        // Momenta and velocities at the two ends of the whole trajectory.
        let mut ps0 = vec![0.0; n];
        inv_mass.velocity(&state.p, &mut ps0);
        let (mut p_left, mut ps_left) = (state.p.clone(), ps0.clone());
        let (mut p_right, mut ps_right) = (state.p.clone(), ps0);
        let mut rho = state.p.clone();
        let mut log_sum_weight = 0.0;
        let mut depth = 0;

        let mut tree = TreeBuilder {
            pot,
            inv_mass,
            eps: step_size,
            h0,
            max_delta_h: self.options.max_energy_error,
            rng,
            n_leapfrog: 0,
            sum_metro_prob: 0.0,
            divergent: false,
            v: vec![0.0; n],
        };

        while depth < self.max_tree_depth {
            let mut new = Ends::zeros(n);
            let mut lsw_subtree = f64::NEG_INFINITY;
            let forward = uniform(tree.rng) > 0.5;
            let valid = if forward {
                tree.build(
                    depth,
                    &mut z_fwd,
                    &mut z_propose,
                    &mut new,
                    1.0,
                    &mut lsw_subtree,
                )?
            } else {
                tree.build(
                    depth,
                    &mut z_bck,
                    &mut z_propose,
                    &mut new,
                    -1.0,
                    &mut lsw_subtree,
                )?
            };
            if !valid {
                break;
            }
            depth += 1;
            // Biased progressive sampling: favour the new subtree.
            if lsw_subtree > log_sum_weight
                || uniform(tree.rng) < (lsw_subtree - log_sum_weight).exp()
            {
                z_sample.copy_from(&z_propose);
            }
            log_sum_weight = log_sum_exp(log_sum_weight, lsw_subtree);
            let rho_total = sum(&rho, &new.rho);
            let persist = if forward {
                no_u_turn(&ps_left, &new.ps_end, &rho_total)
                    && no_u_turn(&ps_left, &new.ps_beg, &sum(&rho, &new.p_beg))
                    && no_u_turn(&ps_right, &new.ps_end, &sum(&new.rho, &p_right))
            } else {
                no_u_turn(&new.ps_end, &ps_right, &rho_total)
                    && no_u_turn(&new.ps_beg, &ps_right, &sum(&rho, &new.p_beg))
                    && no_u_turn(&new.ps_end, &ps_left, &sum(&new.rho, &p_left))
            };
            rho = rho_total;
            if forward {
                p_right = new.p_end;
                ps_right = new.ps_end;
            } else {
                p_left = new.p_end;
                ps_left = new.ps_end;
            }
            if !persist {
                break;
            }
        }
        let n_leapfrog = tree.n_leapfrog;
        let accept_prob = if n_leapfrog > 0 {
            tree.sum_metro_prob / n_leapfrog as f64
        } else {
            0.0
        };
        let diverging = tree.divergent;
        let energy = z_sample.energy(inv_mass);
        state.copy_from(&z_sample);
        Ok(TransitionStats {
            accept_prob,
            diverging,
            num_steps: n_leapfrog,
            tree_depth: depth,
            energy,
        })
    }
}
