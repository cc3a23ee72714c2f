//! The compiled potential (Pyro's `jit_compile=True`): the same `U(z)` as [`Potential`], run as a
//! host [`Program`] with its own reverse-mode gradient, so that an evaluation costs no libtorch
//! dispatch at all.

use tch::{Device, Kind};

use super::kernel::PotentialFn;
use super::model_spec::ModelSpec;
use super::potential::Potential;
use crate::error::{Error, Result};
use crate::jit::{compile_traced, verify, Evaluation, Program};

/// A potential compiled into a host program: libtorch's tracer records the eager potential's
/// log-density once, ppl compiles the recording (see [`crate::jit`]), and every evaluation runs
/// the program. It holds no reference to the model.
#[derive(Clone, Debug)]
pub struct CompiledPotential {
    spec: ModelSpec,
    program: Program,
    num_grad_evals: usize,
}

impl CompiledPotential {
    /// Traces `eager`'s log-density at `z` and compiles it.
    ///
    /// The program is checked against libtorch's value and gradient at `z` and at two other
    /// points ([`crate::jit::verify`]); a model whose ops depend on the values of its latent
    /// sites (a branch on a sampled value, say) fails the check and gets an error saying so, as
    /// does a model on a GPU or one that uses an op the compiler does not know. `eager` is left
    /// as it was and can still be used.
    pub fn new<R>(eager: &mut Potential<'_, R>, z: &[f64]) -> Result<CompiledPotential> {
        let spec = eager.spec().clone();
        if spec.device != Device::Cpu {
            return Err(Error::JitRefused {
                reason: format!(
                    "the model's values are on {:?}; compiled potentials run on the host, for \
                     models on the CPU",
                    spec.device
                ),
            });
        }
        let leaves = eager.leaves(z)?;
        let (program, _) = compile_traced(&leaves, false, |ins| {
            Ok(vec![eager.log_density_of_parts(ins)?])
        })?;
        let compiled = CompiledPotential {
            spec,
            program,
            num_grad_evals: 0,
        };
        // Check the program against libtorch at z and two nearby points.
        let n = z.len();
        let mut g_eager = vec![0.0; n];
        let mut g_jit = vec![0.0; n];
        for k in 0..3 {
            let zk: Vec<f64> = z
                .iter()
                .enumerate()
                .map(|(i, &x)| x + 0.3 * k as f64 * ((i + 1) as f64 * 1.7 + k as f64).sin())
                .collect();
            let u_eager = eager.value_and_grad_uncounted(&zk, &mut g_eager)?;
            let u_jit = compiled.evaluate(&zk, &mut g_jit)?;
            verify(
                Evaluation {
                    values: &[u_eager],
                    grad: &g_eager,
                },
                Evaluation {
                    values: &[u_jit],
                    grad: &g_jit,
                },
                compiled.spec.kind != Kind::Double,
                "does the model branch on the value of a latent site? Run it without jit_compile",
            )?;
        }
        Ok(compiled)
    }

    /// The latent sites.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The program's input slices: one per site, in the flat vector's layout.
    fn parts<'z>(&self, z: &'z [f64]) -> Result<Vec<&'z [f64]>> {
        if z.len() != self.spec.dim {
            return Err(Error::Shape(format!(
                "the unconstrained vector has {} values, the model's latent sites {}",
                z.len(),
                self.spec.dim
            )));
        }
        Ok(self
            .spec
            .sites
            .iter()
            .map(|s| &z[s.offset..s.offset + s.numel])
            .collect())
    }

    fn evaluate(&self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        if grad.len() != self.spec.dim {
            return Err(Error::Shape(format!(
                "a gradient buffer of {} values for {} unconstrained values",
                grad.len(),
                self.spec.dim
            )));
        }
        let (lp, grads) = self.program.value_and_grad(&self.parts(z)?)?;
        for (s, g) in self.spec.sites.iter().zip(grads) {
            for (o, v) in grad[s.offset..s.offset + s.numel].iter_mut().zip(g) {
                *o = -v;
            }
        }
        Ok(-lp)
    }

    /// `U(z)` without its gradient.
    pub fn value(&mut self, z: &[f64]) -> Result<f64> {
        Ok(-self.program.forward(&self.parts(z)?)?.iter().sum::<f64>())
    }
}

impl PotentialFn for CompiledPotential {
    fn value_and_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.num_grad_evals += 1;
        self.evaluate(z, grad)
    }

    fn num_grad_evals(&self) -> usize {
        self.num_grad_evals
    }
}
