//! The mass matrix (Stan's "metric"): kinetic energy `K(p) = ½ pᵀ M⁻¹ p`, momentum draws
//! `p ~ N(0, M)` and velocities `M⁻¹ p`. The sampler adapts the *inverse* mass matrix, which
//! estimates the posterior covariance in unconstrained space.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{Error, Result};

/// The inverse mass matrix, diagonal or dense.
#[derive(Clone, Debug, PartialEq)]
pub enum InverseMassMatrix {
    /// A diagonal matrix: one variance per coordinate.
    Diagonal(Vec<f64>),
    /// A dense matrix (row-major `dim × dim`), with the Cholesky factor of its inverse, used to
    /// draw momenta.
    Dense {
        /// The inverse mass matrix, row-major.
        matrix: Vec<f64>,
        /// `L` with `L Lᵀ = M⁻¹` (row-major, lower triangular).
        chol: Vec<f64>,
        /// The dimension.
        dim: usize,
    },
}

impl InverseMassMatrix {
    /// The identity, diagonal or dense.
    pub fn identity(dim: usize, dense: bool) -> InverseMassMatrix {
        if dense {
            let mut m = vec![0.0; dim * dim];
            for i in 0..dim {
                m[i * dim + i] = 1.0;
            }
            InverseMassMatrix::Dense {
                chol: m.clone(),
                matrix: m,
                dim,
            }
        } else {
            InverseMassMatrix::Diagonal(vec![1.0; dim])
        }
    }

    /// A dense inverse mass matrix (row-major); errors unless it is positive definite.
    pub fn dense(matrix: Vec<f64>, dim: usize) -> Result<InverseMassMatrix> {
        let chol = cholesky(&matrix, dim).ok_or_else(|| {
            Error::Invalid("the inverse mass matrix is not positive definite".into())
        })?;
        Ok(InverseMassMatrix::Dense { matrix, chol, dim })
    }

    /// Whether the matrix is dense.
    pub fn is_dense(&self) -> bool {
        matches!(self, InverseMassMatrix::Dense { .. })
    }

    /// The diagonal.
    pub fn diagonal(&self) -> Vec<f64> {
        match self {
            InverseMassMatrix::Diagonal(d) => d.clone(),
            InverseMassMatrix::Dense { matrix, dim, .. } => {
                (0..*dim).map(|i| matrix[i * dim + i]).collect()
            }
        }
    }

    /// `v = M⁻¹ p`.
    pub fn velocity(&self, p: &[f64], v: &mut [f64]) {
        match self {
            InverseMassMatrix::Diagonal(d) => {
                for ((o, &pi), &di) in v.iter_mut().zip(p).zip(d) {
                    *o = di * pi;
                }
            }
            InverseMassMatrix::Dense { matrix, dim, .. } => {
                for (i, o) in v.iter_mut().enumerate().take(*dim) {
                    let row = &matrix[i * dim..(i + 1) * dim];
                    *o = row.iter().zip(p).map(|(a, b)| a * b).sum();
                }
            }
        }
    }

    /// `½ pᵀ M⁻¹ p`.
    pub fn kinetic_energy(&self, p: &[f64]) -> f64 {
        match self {
            InverseMassMatrix::Diagonal(d) => {
                0.5 * p.iter().zip(d).map(|(pi, di)| pi * pi * di).sum::<f64>()
            }
            InverseMassMatrix::Dense { .. } => {
                let mut v = vec![0.0; p.len()];
                self.velocity(p, &mut v);
                0.5 * p.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>()
            }
        }
    }

    /// Draws `p ~ N(0, M)`.
    pub fn sample_momentum<G: Rng>(&self, rng: &mut G, p: &mut [f64]) {
        match self {
            InverseMassMatrix::Diagonal(d) => {
                for (o, di) in p.iter_mut().zip(d) {
                    let e: f64 = rng.sample(StandardNormal);
                    *o = e / di.sqrt();
                }
            }
            InverseMassMatrix::Dense { chol, dim, .. } => {
                // With L Lᵀ = M⁻¹, p = L⁻ᵀ e has covariance (L Lᵀ)⁻¹ = M.
                let n = *dim;
                let e: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
                for i in (0..n).rev() {
                    let mut s = e[i];
                    for k in i + 1..n {
                        s -= chol[k * n + i] * p[k];
                    }
                    p[i] = s / chol[i * n + i];
                }
            }
        }
    }
}

/// The lower Cholesky factor of a symmetric positive-definite row-major matrix.
pub(crate) fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dense_momentum_has_covariance_m() {
        // M⁻¹ = [[2, 0.6], [0.6, 1]]; M = inv.
        let inv = InverseMassMatrix::dense(vec![2.0, 0.6, 0.6, 1.0], 2).expect("pd");
        let det = 2.0 - 0.36;
        let m = [1.0 / det, -0.6 / det, -0.6 / det, 2.0 / det];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let n = 200_000;
        let mut acc = [0.0; 4];
        let mut p = [0.0; 2];
        for _ in 0..n {
            inv.sample_momentum(&mut rng, &mut p);
            acc[0] += p[0] * p[0];
            acc[1] += p[0] * p[1];
            acc[2] += p[1] * p[0];
            acc[3] += p[1] * p[1];
        }
        for k in 0..4 {
            assert!((acc[k] / n as f64 - m[k]).abs() < 0.02, "{k}: {acc:?}");
        }
        // kinetic energy: ½ pᵀ M⁻¹ p
        let ke = inv.kinetic_energy(&[1.0, 2.0]);
        assert!((ke - 0.5 * (2.0 + 2.0 * 0.6 * 2.0 + 4.0)).abs() < 1e-12);
    }
}
