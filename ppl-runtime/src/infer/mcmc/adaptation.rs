//! Warmup adaptation as Stan does it: step size by Nesterov dual averaging, and the inverse mass
//! matrix from the variance (or covariance) of the draws in a sequence of doubling windows.
//!
//! Stan's constants: dual averaging `γ = 0.05`, `t₀ = 10`, `κ = 0.75`, `μ = log(10 ε)`; windows
//! `init_buffer = 75`, `term_buffer = 50`, `base_window = 25` (when warmup is shorter than their sum:
//! 15% / 75% / 10% of it); each estimate is regularized towards `1e-3 · I` as
//! `(n / (n + 5)) Σ + 1e-3 (5 / (n + 5)) I`.

use super::mass_matrix::InverseMassMatrix;
use crate::error::Result;

/// Nesterov dual averaging of `log ε` towards a target acceptance statistic (Stan's
/// `stepsize_adaptation`).
#[derive(Clone, Debug)]
pub struct DualAveraging {
    /// Target mean acceptance statistic (`δ`, 0.8 by default).
    pub target: f64,
    /// `γ` (0.05).
    pub gamma: f64,
    /// `t₀` (10).
    pub t0: f64,
    /// `κ` (0.75).
    pub kappa: f64,
    mu: f64,
    counter: f64,
    s_bar: f64,
    x_bar: f64,
}

impl DualAveraging {
    /// Stan's constants and the given target.
    pub fn new(target: f64) -> DualAveraging {
        DualAveraging {
            target,
            gamma: 0.05,
            t0: 10.0,
            kappa: 0.75,
            mu: 0.0,
            counter: 0.0,
            s_bar: 0.0,
            x_bar: 0.0,
        }
    }

    /// Restarts around the step size `step_size` (`μ = log(10 ε)`).
    pub fn restart(&mut self, step_size: f64) {
        self.mu = (10.0 * step_size).ln();
        self.counter = 0.0;
        self.s_bar = 0.0;
        self.x_bar = 0.0;
    }

    /// One update with the acceptance statistic of the last transition; returns the next step
    /// size.
    pub fn update(&mut self, accept_stat: f64) -> f64 {
        let accept_stat = if accept_stat.is_nan() {
            0.0
        } else {
            accept_stat.min(1.0)
        };
        self.counter += 1.0;
        let eta = 1.0 / (self.counter + self.t0);
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept_stat);
        let x = self.mu - self.s_bar * self.counter.sqrt() / self.gamma;
        let x_eta = self.counter.powf(-self.kappa);
        self.x_bar = (1.0 - x_eta) * self.x_bar + x_eta * x;
        x.exp()
    }

    /// The final step size: `exp(x̄)`.
    pub fn final_step_size(&self) -> f64 {
        self.x_bar.exp()
    }
}

/// Stan's windowed warmup schedule.
#[derive(Clone, Debug)]
pub struct WindowSchedule {
    num_warmup: usize,
    init_buffer: usize,
    term_buffer: usize,
    base_window: usize,
    counter: usize,
    window_size: usize,
    next_window: usize,
}

impl WindowSchedule {
    /// The schedule for `num_warmup` iterations with Stan's default buffers.
    pub fn new(num_warmup: usize) -> WindowSchedule {
        let (mut init_buffer, mut term_buffer, mut base_window) = (75, 50, 25);
        if num_warmup < 20 {
            // Too short for any metric adaptation (Stan says so too): step size only.
            init_buffer = num_warmup;
            term_buffer = 0;
            base_window = 0;
        } else if init_buffer + base_window + term_buffer > num_warmup {
            init_buffer = (0.15 * num_warmup as f64) as usize;
            term_buffer = (0.1 * num_warmup as f64) as usize;
            base_window = num_warmup - (init_buffer + term_buffer);
        }
        WindowSchedule {
            num_warmup,
            init_buffer,
            term_buffer,
            base_window,
            counter: 0,
            window_size: base_window,
            next_window: (init_buffer + base_window).saturating_sub(1),
        }
    }

    /// `(init_buffer, base_window, term_buffer)`.
    pub fn buffers(&self) -> (usize, usize, usize) {
        (self.init_buffer, self.base_window, self.term_buffer)
    }

    fn in_window(&self) -> bool {
        self.base_window > 0
            && self.counter >= self.init_buffer
            && self.counter < self.num_warmup - self.term_buffer
            && self.counter != self.num_warmup
    }

    fn end_of_window(&self) -> bool {
        self.base_window > 0 && self.counter == self.next_window && self.counter != self.num_warmup
    }

    fn compute_next_window(&mut self) {
        let last = self.num_warmup - self.term_buffer - 1;
        if self.next_window == last {
            return;
        }
        self.window_size *= 2;
        self.next_window = self.counter + self.window_size;
        if self.next_window != last {
            let boundary = self.next_window + 2 * self.window_size;
            if boundary >= self.num_warmup - self.term_buffer {
                self.next_window = last;
            }
        }
    }

    /// Advances one iteration: whether the draw of this iteration goes into the current window's
    /// estimate, and whether the window ends with it.
    fn step(&mut self) -> (bool, bool) {
        let add = self.in_window();
        let end = self.end_of_window();
        if end {
            self.compute_next_window();
        }
        self.counter += 1;
        (add, end)
    }

    /// The ends (iteration indices, from 0) of all windows; for tests and display.
    pub fn window_ends(num_warmup: usize) -> Vec<usize> {
        let mut s = WindowSchedule::new(num_warmup);
        let mut out = Vec::new();
        for i in 0..num_warmup {
            if s.step().1 {
                out.push(i);
            }
        }
        out
    }
}

/// Welford's running mean and (co)variance.
#[derive(Clone, Debug)]
struct Welford {
    n: usize,
    mean: Vec<f64>,
    /// Sums of squared deviations: `dim` of them (diagonal) or `dim²` (dense).
    m2: Vec<f64>,
    dense: bool,
}

impl Welford {
    fn new(dim: usize, dense: bool) -> Welford {
        Welford {
            n: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; if dense { dim * dim } else { dim }],
            dense,
        }
    }

    fn reset(&mut self) {
        self.n = 0;
        self.mean.iter_mut().for_each(|v| *v = 0.0);
        self.m2.iter_mut().for_each(|v| *v = 0.0);
    }

    fn add(&mut self, x: &[f64]) {
        self.n += 1;
        let n = self.n as f64;
        let dim = self.mean.len();
        if self.dense {
            let delta: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
            for (m, d) in self.mean.iter_mut().zip(&delta) {
                *m += d / n;
            }
            for (i, (xi, mi)) in x.iter().zip(&self.mean).enumerate() {
                let di2 = xi - mi;
                let row = &mut self.m2[i * dim..(i + 1) * dim];
                for (r, dj) in row.iter_mut().zip(&delta) {
                    *r += dj * di2;
                }
            }
        } else {
            for ((xi, m), m2) in x.iter().zip(self.mean.iter_mut()).zip(self.m2.iter_mut()) {
                let delta = xi - *m;
                *m += delta / n;
                *m2 += delta * (xi - *m);
            }
        }
    }

    /// Stan's regularized estimate.
    fn regularized(&self) -> Result<InverseMassMatrix> {
        let n = self.n as f64;
        let dim = self.mean.len();
        let w = n / (n + 5.0);
        let shrink = 1e-3 * (5.0 / (n + 5.0));
        let var = |m2: f64| w * m2 / (n - 1.0).max(1.0);
        if self.dense {
            let mut m: Vec<f64> = self.m2.iter().map(|&v| var(v)).collect();
            // Symmetrize against rounding.
            for i in 0..dim {
                for j in 0..i {
                    let a = 0.5 * (m[i * dim + j] + m[j * dim + i]);
                    m[i * dim + j] = a;
                    m[j * dim + i] = a;
                }
                m[i * dim + i] += shrink;
            }
            InverseMassMatrix::dense(m, dim)
        } else {
            Ok(InverseMassMatrix::Diagonal(
                self.m2.iter().map(|&v| var(v) + shrink).collect(),
            ))
        }
    }
}

/// What the warmup did after one iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdaptEvent {
    /// Nothing beyond the step-size update.
    None,
    /// A window ended: the inverse mass matrix changed, so the step size should be re-initialized
    /// (Stan's heuristic) and dual averaging restarted.
    MassMatrixUpdated,
}

/// Step-size and mass-matrix adaptation over the warmup.
#[derive(Clone, Debug)]
pub struct Adapter {
    /// Whether the step size adapts.
    pub adapt_step_size: bool,
    /// Whether the mass matrix adapts.
    pub adapt_mass_matrix: bool,
    dual: DualAveraging,
    schedule: WindowSchedule,
    estimator: Welford,
}

impl Adapter {
    /// The adaptation for `num_warmup` iterations of a `dim`-dimensional target.
    pub fn new(
        num_warmup: usize,
        dim: usize,
        dense: bool,
        target_accept_prob: f64,
        adapt_step_size: bool,
        adapt_mass_matrix: bool,
    ) -> Adapter {
        Adapter {
            adapt_step_size,
            adapt_mass_matrix,
            dual: DualAveraging::new(target_accept_prob),
            schedule: WindowSchedule::new(num_warmup),
            estimator: Welford::new(dim, dense),
        }
    }

    /// Restarts dual averaging around `step_size`.
    pub fn restart_step_size(&mut self, step_size: f64) {
        self.dual.restart(step_size);
    }

    /// One warmup iteration: updates the step size from `accept_stat` and feeds the draw `z` to
    /// the mass-matrix estimate. Returns what changed.
    pub fn update(
        &mut self,
        z: &[f64],
        accept_stat: f64,
        step_size: &mut f64,
        inverse_mass: &mut InverseMassMatrix,
    ) -> Result<AdaptEvent> {
        if self.adapt_step_size {
            *step_size = self.dual.update(accept_stat);
        }
        let (add, end) = self.schedule.step();
        if !self.adapt_mass_matrix {
            return Ok(AdaptEvent::None);
        }
        if add {
            self.estimator.add(z);
        }
        if end {
            *inverse_mass = self.estimator.regularized()?;
            self.estimator.reset();
            return Ok(AdaptEvent::MassMatrixUpdated);
        }
        Ok(AdaptEvent::None)
    }

    /// The step size to sample with after warmup (`exp(x̄)`), when the step size adapted.
    pub fn final_step_size(&self) -> Option<f64> {
        self.adapt_step_size.then(|| self.dual.final_step_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stan_windows_for_1000_warmup() {
        // 75 + 25 + 50 + 100 + 200 + 500 + 50: windows end at 99, 149, 249, 449, 949.
        assert_eq!(
            WindowSchedule::window_ends(1000),
            vec![99, 149, 249, 449, 949]
        );
        // Short warmup: 15% / 75% / 10%.
        let s = WindowSchedule::new(100);
        assert_eq!(s.buffers(), (15, 75, 10));
        assert_eq!(WindowSchedule::window_ends(100), vec![89]);
        assert!(WindowSchedule::window_ends(10).is_empty());
    }

    #[test]
    fn dual_averaging_converges_to_target() {
        // Acceptance decreasing in the step size: a(ε) = exp(-ε); target 0.8 → ε = -ln 0.8.
        let mut d = DualAveraging::new(0.8);
        let mut eps = 1.0;
        d.restart(eps);
        for _ in 0..2000 {
            eps = d.update((-eps).exp());
        }
        let want = -(0.8f64).ln();
        let got = d.final_step_size();
        assert!((got - want).abs() < 0.05 * want, "{got} vs {want}");
    }

    #[test]
    fn welford_regularized_variance() {
        let mut w = Welford::new(2, false);
        let mut wd = Welford::new(2, true);
        let xs = [[1.0, 2.0], [3.0, 1.0], [2.0, 4.0], [6.0, 0.0]];
        for x in &xs {
            w.add(x);
            wd.add(x);
        }
        let mean0 = 3.0;
        let var0 = xs.iter().map(|x| (x[0] - mean0).powi(2)).sum::<f64>() / 3.0;
        let n = 4.0;
        let want = n / (n + 5.0) * var0 + 1e-3 * 5.0 / (n + 5.0);
        let d = w.regularized().expect("ok").diagonal();
        assert!((d[0] - want).abs() < 1e-12);
        let dd = wd.regularized().expect("ok").diagonal();
        assert!((dd[0] - want).abs() < 1e-12);
    }
}
