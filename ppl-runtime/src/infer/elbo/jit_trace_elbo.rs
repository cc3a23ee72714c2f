//! `JitTraceElbo` (Pyro's `JitTrace_ELBO`): any ELBO that [`Elbo::supports_jit`], compiled.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use super::{Elbo, ElboOutput, LossAndGrads};
use crate::error::{Error, Result};
use crate::jit::{compile_traced, read_f64, verify, write_f64, Draws, Evaluation, Program};
use crate::params::{with_param_store, zero_grads};

/// A compiled ELBO: the first step traces the wrapped loss of model and guide with libtorch's
/// tracer and compiles it into a host [`Program`] with its own reverse-mode gradient and random
/// draws (see [`crate::jit`]); every later step runs that program and writes its gradient into
/// the params' `.grad`, with no libtorch dispatch per op. For small models on the CPU this is
/// several times faster. [`Svi::jit_compile`](crate::infer::Svi::jit_compile) wraps its loss in
/// one.
///
/// Like every tracing JIT, the program replays the ops of the traced run: the model and guide
/// must run the same ops every step (no control flow on sampled values; tensors made from host
/// data must not change between steps). The compiler checks what it can: it traces twice and
/// refuses graphs that differ, and it checks the program's loss and gradient against libtorch's
/// on the traced run's own draws ([`crate::jit::verify`]). Supported losses: those whose
/// [`Elbo::supports_jit`] is true ([`TraceElbo`](super::TraceElbo),
/// [`TraceMeanFieldElbo`](super::TraceMeanFieldElbo),
/// [`TraceEnumElbo`](super::TraceEnumElbo)); params on the CPU.
///
/// [`JitTraceElbo::new`] refuses with an error saying why when it cannot compile;
/// [`JitTraceElbo::auto`] runs the wrapped loss eagerly instead, after a one-line note on stderr.
/// A non-finite compiled loss falls back to an eager step, whose error names the sites. When the
/// param store no longer holds the tensors the program was compiled with (a checkpoint loaded),
/// the next step compiles again.
///
/// Randomness: compiling leaves torch's and ppl's generators as it found them, and every
/// compiled step, the first included, draws from a generator seeded by one number from ppl's
/// generator ([`crate::get_rng_state`]). So a compiled run resumed from a checkpoint (which holds
/// that state) makes the same draws as the run that never stopped, although it compiles again.
///
/// Data passed as arguments ([`Svi::step_with`](crate::infer::Svi::step_with)) are the program's
/// inputs beside the params: a new minibatch of the same shapes runs the same program; new shapes
/// compile again. Data captured by the closures are constants of the program.
pub struct JitTraceElbo<L> {
    /// The wrapped loss.
    pub inner: L,
    mode: Mode,
    state: State,
    /// The tensors among the model's arguments at the next step ([`Elbo::set_inputs`]).
    inputs: Vec<Tensor>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Never compile: the wrapped loss as it is.
    Off,
    /// Compile, or fail with the reason.
    Required,
    /// Compile where supported, otherwise run eagerly with a note.
    Auto,
}

enum State {
    /// Compiles at the next step.
    Pending,
    /// Runs eagerly for good (auto mode, after a refusal).
    Eager,
    Compiled(Box<CompiledStep>),
}

/// The program and the params it reads (unconstrained leaves, in input order).
struct CompiledStep {
    program: Program,
    params: Vec<(String, Tensor)>,
    /// The shapes of the data inputs the program was compiled for (after the params).
    data_shapes: Vec<Vec<i64>>,
    /// The values of the inputs: params, then data.
    values: Vec<Vec<f64>>,
}

impl<L: Elbo> JitTraceElbo<L> {
    /// `inner`, compiled at the first step; a loss or model that cannot be compiled is an error.
    pub fn new(inner: L) -> Self {
        JitTraceElbo {
            inner,
            mode: Mode::Required,
            state: State::Pending,
            inputs: Vec::new(),
        }
    }

    /// `inner`, compiled at the first step where it can be; otherwise it runs eagerly, after a
    /// one-line note on stderr saying why.
    pub fn auto(inner: L) -> Self {
        JitTraceElbo {
            inner,
            mode: Mode::Auto,
            state: State::Pending,
            inputs: Vec::new(),
        }
    }

    /// `inner` run eagerly, never compiled (what `Svi::jit_compile(false)` builds).
    pub fn off(inner: L) -> Self {
        JitTraceElbo {
            inner,
            mode: Mode::Off,
            state: State::Eager,
            inputs: Vec::new(),
        }
    }

    /// Traces and compiles the loss, and checks the program against libtorch on the traced
    /// run's draws. On success the params' `.grad` hold libtorch's gradient of that run (the
    /// caller zeroes them and runs the program).
    fn compile<R1, R2>(
        &mut self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<(CompiledStep, LossAndGrads)> {
        // One eager run creates the params and names them.
        let names = {
            let _ng = tch::no_grad_guard();
            self.inner.loss_and_surrogate(model, guide)?.params
        };
        let params = with_param_store(|ps| ps.leaves(&names));
        for (name, p) in &params {
            if p.device() != Device::Cpu || !matches!(p.kind(), Kind::Float | Kind::Double) {
                return Err(Error::JitRefused {
                    reason: format!(
                        "param `{name}` is a {:?} tensor on {:?}; compiled steps run on the \
                         host, for float32 or float64 params on the CPU",
                        p.kind(),
                        p.device()
                    ),
                });
            }
        }
        for (i, t) in self.inputs.iter().enumerate() {
            if t.device() != Device::Cpu || !matches!(t.kind(), Kind::Float | Kind::Double) {
                return Err(Error::JitRefused {
                    reason: format!(
                        "the model's argument tensor {i} (of shape {:?}) is a {:?} tensor on \
                         {:?}; compiled steps take float32 or float64 data on the CPU as \
                         arguments (pass other data captured in the closures, or run without \
                         jit_compile)",
                        t.size(),
                        t.kind(),
                        t.device()
                    ),
                });
            }
        }
        let mut leaves: Vec<Tensor> = params.iter().map(|(_, p)| p.shallow_clone()).collect();
        leaves.extend(self.inputs.iter().map(|t| t.shallow_clone()));
        let inner = &self.inner;
        let (program, outputs) = compile_traced(&leaves, true, |_| {
            let out: ElboOutput = inner.loss_and_surrogate(model, guide)?;
            Ok(vec![out.surrogate_loss, out.loss_tensor])
        })?;
        zero_grads(&params)?;
        if outputs[0].requires_grad() {
            outputs[0].f_backward()?;
        }
        for (name, p) in &params {
            if !p.grad().defined() {
                return Err(Error::JitRefused {
                    reason: format!(
                        "param `{name}` gets no gradient from the loss: compiled steps need every \
                         param to take part in it"
                    ),
                });
            }
        }
        let mut compiled = CompiledStep {
            program,
            values: leaves.iter().map(|t| vec![0.0; t.numel()]).collect(),
            data_shapes: self.inputs.iter().map(|t| t.size()).collect(),
            params,
        };
        let (outs, grads) = compiled.evaluate(true, &self.inputs)?;
        let eager_values = [
            outputs[0].f_double_value(&[])?,
            outputs[1].f_double_value(&[])?,
        ];
        let mut eager_grad = Vec::new();
        for (_, p) in &compiled.params {
            let mut g = vec![0.0; p.numel()];
            read_f64(&p.grad(), &mut g)?;
            eager_grad.extend(g);
        }
        let single = compiled.params.iter().any(|(_, p)| p.kind() == Kind::Float);
        verify(
            Evaluation {
                values: &eager_values,
                grad: &eager_grad,
            },
            Evaluation {
                values: &outs,
                grad: &grads[..compiled.params.len()].concat(),
            },
            single,
            "do model or guide branch on sampled values (control flow)? Run without jit_compile",
        )?;
        let step = LossAndGrads {
            loss: eager_values[1],
            params: compiled.params.iter().map(|(n, _)| n.clone()).collect(),
            largest_site: 0,
        };
        Ok((compiled, step))
    }
}

impl<L: Elbo> Elbo for JitTraceElbo<L> {
    fn loss_and_surrogate<R1, R2>(
        &self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<ElboOutput> {
        self.inner.loss_and_surrogate(model, guide)
    }

    fn supports_jit(&self) -> bool {
        self.inner.supports_jit()
    }

    fn loss_and_grads<R1, R2>(
        &mut self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<LossAndGrads> {
        if let State::Compiled(c) = &self.state {
            if !c.params_current() || !c.fits(&self.inputs) {
                // The param store changed under the program (a checkpoint loaded, params
                // cleared or re-registered), or the data arguments changed shape: compile again.
                self.state = State::Pending;
            }
        }
        match &mut self.state {
            State::Eager => self.inner.loss_and_grads(model, guide),
            State::Compiled(c) => {
                let (outs, grads) = c.evaluate(false, &self.inputs)?;
                if !outs[1].is_finite() {
                    // libtorch's step names the sites (or, by chance, succeeds).
                    return self.inner.loss_and_grads(model, guide);
                }
                for ((_, p), g) in c.params.iter().zip(&grads) {
                    write_f64(&p.grad(), g)?;
                }
                Ok(LossAndGrads {
                    loss: outs[1],
                    params: c.params.iter().map(|(n, _)| n.clone()).collect(),
                    largest_site: 0,
                })
            }
            State::Pending => {
                let compiled = if self.inner.supports_jit() {
                    // Compiling draws nothing that later steps see.
                    let saved = crate::primitives::get_rng_state()?;
                    let c = self.compile(model, guide);
                    crate::primitives::set_rng_state(&saved)?;
                    c
                } else {
                    Err(Error::JitRefused {
                        reason: "this loss keeps state between steps or weighs particles on the \
                                 host; use TraceEnumElbo, TraceElbo or TraceMeanFieldElbo, or \
                                 run without jit_compile"
                            .into(),
                    })
                };
                match compiled {
                    Ok((c, _traced_step)) => {
                        // This step runs the program too, on fresh draws (as a resumed run's
                        // first step after compiling again does).
                        zero_grads(&c.params)?;
                        self.state = State::Compiled(Box::new(c));
                        self.loss_and_grads(model, guide)
                    }
                    Err(e) if self.mode == Mode::Auto && e.is_jit_refusal() => {
                        eprintln!("ppl: running eagerly: {e}");
                        self.state = State::Eager;
                        let names = with_param_store(|ps| ps.all_leaves());
                        zero_grads(&names)?;
                        self.inner.loss_and_grads(model, guide)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn loss<R1, R2>(
        &mut self,
        model: &mut dyn FnMut() -> Result<R1>,
        guide: &mut dyn FnMut() -> Result<R2>,
    ) -> Result<f64> {
        match &mut self.state {
            State::Compiled(c) if c.params_current() && c.fits(&self.inputs) => {
                Ok(c.evaluate(false, &self.inputs)?.0[1])
            }
            _ => self.inner.loss(model, guide),
        }
    }

    fn is_compiled(&self) -> bool {
        matches!(self.state, State::Compiled(_))
    }

    fn set_inputs(&mut self, inputs: Vec<Tensor>) {
        self.inputs = inputs;
    }
}

impl CompiledStep {
    /// Whether the param store still holds the very tensors the program reads and updates.
    fn params_current(&self) -> bool {
        with_param_store(|ps| {
            self.params.iter().all(|(name, p)| {
                ps.entry(name)
                    .is_some_and(|e| e.unconstrained.data_ptr() == p.data_ptr())
            })
        })
    }

    /// Whether the program was compiled for data arguments of these shapes.
    fn fits(&self, inputs: &[Tensor]) -> bool {
        self.data_shapes.len() == inputs.len()
            && self
                .data_shapes
                .iter()
                .zip(inputs)
                .all(|(s, t)| *s == t.size())
    }

    /// The program's outputs (surrogate loss, loss) at the params' current values and the data
    /// `inputs`, and the surrogate's gradient; on the traced draws when `traced`, fresh ones
    /// otherwise.
    fn evaluate(&mut self, traced: bool, inputs: &[Tensor]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let (pv, dv) = self.values.split_at_mut(self.params.len());
        for ((_, p), v) in self.params.iter().zip(pv) {
            read_f64(p, v)?;
        }
        for (t, v) in inputs.iter().zip(dv) {
            if t.is_contiguous() {
                read_f64(t, v)?;
            } else {
                read_f64(&t.f_contiguous()?, v)?;
            }
        }
        let inputs: Vec<&[f64]> = self.values.iter().map(|v| v.as_slice()).collect();
        // A generator per step, seeded from ppl's (which checkpoints hold).
        let mut rng = StdRng::seed_from_u64(crate::primitives::with_rng(|r| r.random::<u64>()));
        let draws = if traced {
            Draws::Traced
        } else {
            Draws::Fresh(&mut rng)
        };
        self.program.evaluate(&inputs, &[0], draws)
    }
}
