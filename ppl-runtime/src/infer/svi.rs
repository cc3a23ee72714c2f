//! Stochastic variational inference.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::infer::Elbo;
use crate::jit::{read_f64, trace_text, write_f64, Draws, Program};
use crate::optim::Optimizer;
use crate::params::with_param_store;

/// SVI: fits a guide's params to a model by stochastic optimization of an ELBO.
pub struct Svi<M, G, O, L> {
    model: M,
    guide: G,
    /// The optimizer.
    pub optim: O,
    /// The loss.
    pub loss: L,
    jit: Jit,
}

/// The state of `jit_compile`.
enum Jit {
    Off,
    /// On; compiled at the next step.
    Pending,
    On(Box<CompiledStep>),
}

/// A compiled ELBO: the program, the params it reads (unconstrained leaves, in input order) and
/// the generator of its random draws.
struct CompiledStep {
    program: Program,
    params: Vec<(String, Tensor)>,
    values: Vec<Vec<f64>>,
    rng: StdRng,
}

impl<M, G, O, L, R1, R2> Svi<M, G, O, L>
where
    M: FnMut() -> Result<R1>,
    G: FnMut() -> Result<R2>,
    O: Optimizer,
    L: Elbo,
{
    /// SVI of `model` with `guide`.
    pub fn new(model: M, guide: G, optim: O, loss: L) -> Self {
        Svi {
            model,
            guide,
            optim,
            loss,
            jit: Jit::Off,
        }
    }

    /// Compiles the loss (Pyro's `JitTrace_ELBO`): the first step runs on libtorch, then the
    /// ELBO of model and guide is traced once by libtorch's tracer and compiled into a host
    /// program with its own reverse-mode gradient and random draws (see [`crate::jit`]); every
    /// later step runs that program and hands its gradients to the optimizer, with no libtorch
    /// dispatch per op. For small models on the CPU this is several times faster.
    ///
    /// Like every tracing JIT, the program replays the ops of the traced run: the model and guide
    /// must run the same ops every step (no control flow on sampled values; tensors made from
    /// host data must not change between steps). The compiler checks what it can: it traces
    /// twice and refuses graphs that differ, and it checks the program's loss and gradient
    /// against libtorch's on the traced run's own draws. Supported losses:
    /// [`TraceElbo`](crate::infer::TraceElbo),
    /// [`TraceMeanFieldElbo`](crate::infer::TraceMeanFieldElbo); params on the CPU. Otherwise the
    /// first step returns an error saying why. A non-finite loss falls back to a libtorch step,
    /// whose error names the sites. When the param store no longer holds the tensors the program
    /// was compiled with (a checkpoint loaded), the next step compiles again.
    ///
    /// ```
    /// use ppl::prelude::*;
    ///
    /// #[model]
    /// fn model(x: &Tensor) -> ppl::Result<()> {
    ///     let loc = sample!(Normal::new(0.0, 1.0)?);
    ///     let _d = plate!("data", x.size()[0]);
    ///     sample!("x", Normal::new(&loc, 1.0)?, obs = x);
    ///     Ok(())
    /// }
    ///
    /// #[guide]
    /// fn guide(_x: &Tensor) -> ppl::Result<()> {
    ///     let loc_q = param!(0.0);
    ///     let scale_q = param!(1.0, constraint = positive);
    ///     let _loc = sample!(Normal::new(&loc_q, &scale_q)?);
    ///     Ok(())
    /// }
    ///
    /// # fn main() -> ppl::Result<()> {
    /// clear_param_store();
    /// set_rng_seed(0);
    /// let x = Tensor::from_slice(&[1.2f32, 0.4, 2.0]);
    /// let adam = Adam::new(AdamConfig { lr: 0.02, ..Default::default() });
    /// let mut svi = Svi::new(|| model(&x), || guide(&x), adam, TraceElbo::default())
    ///     .jit_compile(true);
    /// svi.run(1000)?; // the first step traces and compiles; the rest run the program
    /// assert!(svi.is_compiled());
    /// // The exact posterior is Normal(0.9, 0.5); Adam at lr 0.02 keeps wandering by about 0.1.
    /// assert!((get_param("loc_q")?.double_value(&[]) - 0.9).abs() < 0.3);
    /// # Ok(()) }
    /// ```
    pub fn jit_compile(mut self, on: bool) -> Self {
        self.jit = if on { Jit::Pending } else { Jit::Off };
        self
    }

    /// Whether steps run a compiled program.
    pub fn is_compiled(&self) -> bool {
        matches!(self.jit, Jit::On(_))
    }

    /// One gradient step; returns the loss (`-ELBO` estimate) before the step.
    pub fn step(&mut self) -> Result<f64> {
        match &mut self.jit {
            Jit::Off => self.eager_step(),
            Jit::Pending => {
                if !self.loss.supports_jit() {
                    return Err(Error::Invalid(
                        "jit_compile: this loss keeps state between steps or weighs particles \
                         on the host; use TraceElbo or TraceMeanFieldElbo, or run without \
                         jit_compile"
                            .into(),
                    ));
                }
                let loss = self.eager_step()?;
                let compiled = self.compile()?;
                self.jit = Jit::On(Box::new(compiled));
                Ok(loss)
            }
            Jit::On(c) if !c.params_current() => {
                // The param store changed under the program (a checkpoint loaded, params
                // cleared or re-registered): compile again from a libtorch step.
                self.jit = Jit::Pending;
                self.step()
            }
            Jit::On(c) => {
                let (loss, grads) = c.loss_and_grads()?;
                if !loss.is_finite() {
                    // libtorch's step names the sites (or, by chance, succeeds).
                    return self.eager_step();
                }
                for ((_, p), g) in c.params.iter().zip(&grads) {
                    write_f64(&p.grad(), g)?;
                }
                self.optim.step(&c.params)?;
                Ok(loss)
            }
        }
    }

    fn eager_step(&mut self) -> Result<f64> {
        self.loss
            .step(&mut self.model, &mut self.guide, &mut self.optim)
    }

    /// Traces and compiles the loss (see [`Svi::jit_compile`]).
    fn compile(&mut self) -> Result<CompiledStep> {
        if !self.loss.supports_jit() {
            return Err(Error::Invalid(
                "jit_compile: this loss keeps state between steps or weighs particles on the \
                 host; use TraceElbo or TraceMeanFieldElbo, or run without jit_compile"
                    .into(),
            ));
        }
        let names = self
            .loss
            .loss_and_surrogate(&mut self.model, &mut self.guide)?
            .params;
        let params: Vec<(String, Tensor)> = with_param_store(|ps| {
            names
                .iter()
                .filter_map(|n| {
                    ps.entry(n)
                        .map(|e| (n.clone(), e.unconstrained.shallow_clone()))
                })
                .collect()
        });
        for (name, p) in &params {
            if p.device() != Device::Cpu || !matches!(p.kind(), Kind::Float | Kind::Double) {
                return Err(Error::Invalid(format!(
                    "jit_compile: param `{name}` is a {:?} tensor on {:?}; compiled steps run on \
                     the host, for float32 or float64 params on the CPU",
                    p.kind(),
                    p.device()
                )));
            }
            if !p.grad().defined() {
                return Err(Error::Invalid(format!(
                    "jit_compile: param `{name}` got no gradient in the first step: compiled \
                     steps need every param to take part in the loss"
                )));
            }
        }
        let leaves: Vec<Tensor> = params.iter().map(|(_, p)| p.shallow_clone()).collect();
        let mut traced = || -> Result<(String, Vec<Tensor>)> {
            trace_text(&leaves, |_| {
                let out = self
                    .loss
                    .loss_and_surrogate(&mut self.model, &mut self.guide)?;
                let loss = out.loss_tensor.ok_or_else(|| {
                    Error::Invalid("jit_compile: the loss gave no loss tensor".into())
                })?;
                Ok(vec![out.surrogate_loss, loss])
            })
        };
        let (text, outputs) = traced()?;
        let (again, _) = traced()?;
        let structure = |t: &str| -> String {
            t.lines()
                .filter(|l| !l.starts_with("R "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        crate::jit::debug_print(&text);
        if structure(&text) != structure(&again) {
            return Err(Error::Invalid(
                "jit_compile: model and guide ran different ops (or made different tensors from \
                 host data) in two runs: their control flow depends on sampled values, or data \
                 changes between steps; run without jit_compile"
                    .into(),
            ));
        }
        let shapes: Vec<Vec<usize>> = params
            .iter()
            .map(|(_, p)| p.size().iter().map(|&d| d as usize).collect())
            .collect();
        let program = Program::compile(&text, &shapes)?;
        // Check: on the traced run's draws the program must give libtorch's loss and gradient.
        for (_, p) in &params {
            let _ = p.grad().f_zero_()?;
        }
        outputs[0].f_backward()?;
        let mut compiled = CompiledStep {
            program,
            values: params.iter().map(|(_, p)| vec![0.0; p.numel()]).collect(),
            params,
            rng: StdRng::seed_from_u64(crate::primitives::with_rng(|r| r.random::<u64>())),
        };
        let (outs, grads) = compiled.evaluate(true)?;
        let single = compiled.params.iter().any(|(_, p)| p.kind() == Kind::Float);
        let tol = if single { 1e-3 } else { 1e-8 };
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= tol * scale;
        let surrogate = outputs[0].f_double_value(&[])?;
        let loss = outputs[1].f_double_value(&[])?;
        let mut ok = close(outs[0], surrogate, 1.0 + surrogate.abs())
            && close(outs[1], loss, 1.0 + loss.abs());
        let mut eager_grads = Vec::new();
        for (_, p) in &compiled.params {
            let mut g = vec![0.0; p.numel()];
            read_f64(&p.grad(), &mut g)?;
            eager_grads.push(g);
        }
        let scale = eager_grads
            .iter()
            .flatten()
            .fold(1.0f64, |m: f64, g: &f64| m.max(g.abs()));
        for (a, b) in eager_grads.iter().flatten().zip(grads.iter().flatten()) {
            ok &= close(*a, *b, scale);
        }
        if !ok {
            return Err(Error::Invalid(format!(
                "jit_compile: the compiled loss disagrees with libtorch on the traced run (loss \
                 {} against {loss}, gradient {grads:?} against {eager_grads:?}); run without \
                 jit_compile",
                outs[1]
            )));
        }
        for (_, p) in &compiled.params {
            let _ = p.grad().f_zero_()?;
        }
        Ok(compiled)
    }

    /// Runs `num_steps` steps and returns their losses, with a progress bar showing the loss
    /// (on a terminal; quiet otherwise).
    pub fn run(&mut self, num_steps: usize) -> Result<Vec<f64>> {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(num_steps as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            ) {
                b.set_style(style);
            }
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut losses = Vec::with_capacity(num_steps);
        for i in 0..num_steps {
            let loss = self.step()?;
            losses.push(loss);
            if i % 10 == 0 || i + 1 == num_steps {
                bar.set_position(i as u64 + 1);
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
        bar.finish_and_clear();
        Ok(losses)
    }

    /// The loss without taking a step (no gradients).
    pub fn evaluate_loss(&mut self) -> Result<f64> {
        if let Jit::On(c) = &mut self.jit {
            return Ok(c.evaluate(false)?.0[1]);
        }
        let _ng = tch::no_grad_guard();
        Ok(self
            .loss
            .loss_and_surrogate(&mut self.model, &mut self.guide)?
            .loss)
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

    /// The program's outputs (surrogate loss, loss) at the params' current values and the
    /// surrogate's gradient; on the traced draws when `traced`, fresh ones otherwise.
    fn evaluate(&mut self, traced: bool) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        for ((_, p), v) in self.params.iter().zip(self.values.iter_mut()) {
            read_f64(p, v)?;
        }
        let inputs: Vec<&[f64]> = self.values.iter().map(|v| v.as_slice()).collect();
        let draws = if traced {
            Draws::Traced
        } else {
            Draws::Fresh(&mut self.rng)
        };
        self.program.evaluate(&inputs, &[0], draws)
    }

    /// The loss and the gradient of the surrogate loss, on fresh draws.
    fn loss_and_grads(&mut self) -> Result<(f64, Vec<Vec<f64>>)> {
        let (outs, grads) = self.evaluate(false)?;
        Ok((outs[1], grads))
    }
}
