//! The param store: learnable values by name (Pyro's `ParamStore`).
//!
//! Each param is kept as an *unconstrained* leaf tensor (what optimizers update) with its
//! constraint; reading it returns the constrained value `transform_to(constraint)(unconstrained)`,
//! differentiable with respect to the leaf. The store is per thread, like the handler stack.

use std::cell::RefCell;
use std::path::Path;

use indexmap::IndexMap;
use tch::{Kind, Tensor};

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::poutine::runtime::ParamInit;
use crate::transforms::transform_to;

pub(crate) mod tensor_file;
use tensor_file::{TensorFile, TensorFileWriter};

/// The `format` of a param store written as safetensors.
pub(crate) const PARAM_STORE_FORMAT: &str = "ppl-param-store";
/// The `format` of a checkpoint written as safetensors.
pub(crate) const CHECKPOINT_FORMAT: &str = "ppl-checkpoint";

/// One stored param.
#[derive(Debug)]
pub struct ParamEntry {
    /// The leaf tensor optimizers update (requires grad).
    pub unconstrained: Tensor,
    /// The constraint of the value the model sees.
    pub constraint: Constraint,
    /// Event dims, when given.
    pub event_dim: Option<usize>,
}

impl ParamEntry {
    /// The constrained value (differentiable with respect to the leaf).
    pub fn constrained(&self) -> Result<Tensor> {
        if self.constraint == Constraint::Real {
            return Ok(self.unconstrained.shallow_clone());
        }
        transform_to(&self.constraint)?.forward(&self.unconstrained)
    }
}

/// Learnable values by name.
#[derive(Debug, Default)]
pub struct ParamStore {
    entries: IndexMap<String, ParamEntry>,
}

/// A detached deep copy of `t`.
pub(crate) fn deep_copy(t: &Tensor) -> Result<Tensor> {
    let d = t.f_detach()?;
    let mut out = d.f_empty_like()?;
    out.f_copy_(&d)?;
    Ok(out)
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The constrained value of `name`, initializing it from `init` if absent.
    pub fn get_or_init(
        &mut self,
        name: &str,
        init: Option<ParamInit>,
        constraint: &Constraint,
        event_dim: Option<usize>,
    ) -> Result<Tensor> {
        if let Some(e) = self.entries.get(name) {
            return e.constrained();
        }
        let init = init.ok_or_else(|| Error::MissingParam(name.to_string()))?;
        self.set(name, &init, constraint.clone(), event_dim)?;
        self.get(name)
    }

    /// Sets `name` to the constrained `value` (replacing any previous entry).
    pub fn set(
        &mut self,
        name: &str,
        value: &Tensor,
        constraint: Constraint,
        event_dim: Option<usize>,
    ) -> Result<()> {
        let value = if crate::distributions::is_float(value.kind()) {
            value.shallow_clone()
        } else {
            value.f_to_kind(Kind::Float)?
        };
        let unconstrained = tch::no_grad(|| -> Result<Tensor> {
            check_init(name, &value, &constraint)?;
            // Values on the boundary (0 for `positive`) are clamped by the inverse transforms.
            let u = transform_to(&constraint)?.inverse(&value)?;
            deep_copy(&u)
        })?
        .set_requires_grad(true);
        self.entries.insert(
            name.to_string(),
            ParamEntry {
                unconstrained,
                constraint,
                event_dim,
            },
        );
        Ok(())
    }

    /// Registers an existing leaf tensor (e.g. a `tch::nn` variable) under `name`, unconstrained,
    /// sharing its storage. If `name` is already stored with another tensor, the stored value is
    /// copied into `var` first (so loaded params reach the module).
    pub fn register_leaf(&mut self, name: &str, var: &Tensor) -> Result<()> {
        if let Some(e) = self.entries.get(name) {
            if e.unconstrained.data_ptr() == var.data_ptr() {
                return Ok(());
            }
            let mut v = var.shallow_clone();
            tch::no_grad(|| v.f_copy_(&e.unconstrained))?;
        }
        self.entries.insert(
            name.to_string(),
            ParamEntry {
                unconstrained: var.shallow_clone(),
                constraint: Constraint::Real,
                event_dim: None,
            },
        );
        Ok(())
    }

    /// The constrained value of `name`.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.entries
            .get(name)
            .ok_or_else(|| Error::MissingParam(name.to_string()))?
            .constrained()
    }

    /// The entry of `name`.
    pub fn entry(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.get(name)
    }

    /// Whether `name` is stored.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Names in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// `(name, unconstrained leaf)` pairs, what optimizers update.
    pub fn named_parameters(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.as_str(), &e.unconstrained))
    }

    /// `(name, unconstrained leaf)` pairs of the params named, in the order given (names not in
    /// the store are skipped): what an optimizer steps. [`crate::infer::Svi`] collects the params
    /// of a step with it, as Pyro's `SVI.step` does from its param-capturing trace.
    pub fn leaves<S: AsRef<str>>(&self, names: &[S]) -> Vec<(String, Tensor)> {
        names
            .iter()
            .filter_map(|n| {
                let n = n.as_ref();
                self.entries
                    .get(n)
                    .map(|e| (n.to_string(), e.unconstrained.shallow_clone()))
            })
            .collect()
    }

    /// `(name, unconstrained leaf)` pairs of every param, in insertion order.
    pub fn all_leaves(&self) -> Vec<(String, Tensor)> {
        self.entries
            .iter()
            .map(|(n, e)| (n.clone(), e.unconstrained.shallow_clone()))
            .collect()
    }

    /// Number of params.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) -> Option<ParamEntry> {
        self.entries.shift_remove(name)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Saves every param (unconstrained values, constraints, event dims) to `path`. Loading the
    /// file gives back bit-identical tensors.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut meta = String::new();
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(self.entries.len() + 1);
        for (i, (name, e)) in self.entries.iter().enumerate() {
            if name.contains(['\t', '\n']) {
                return Err(Error::Checkpoint(format!(
                    "param name {name:?} contains a tab or newline and cannot be saved"
                )));
            }
            let ed = e.event_dim.map_or("-".to_string(), |d| d.to_string());
            meta.push_str(&format!("{name}\t{}\t{ed}\n", e.constraint));
            named.push((format!("p{i}"), e.unconstrained.f_detach()?));
        }
        named.push(("meta".into(), Tensor::from_slice(meta.as_bytes())));
        Tensor::save_multi(&named, path.as_ref()).map_err(|e| Error::Io {
            path: path.as_ref().display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Saves every param as safetensors: one tensor per param under its own name (the
    /// unconstrained value, as Pyro's param store keeps it), with the constraints and event dims
    /// in the file's metadata (`constraint.NAME`, `event_dim.NAME`; `format` is
    /// `ppl-param-store`). Loading it ([`ParamStore::load_safetensors`]) gives back bit-identical
    /// tensors; `scripts/pyro_param_store.py` turns it into a Pyro param-store file and back.
    /// The file is written to a temporary name and renamed, so it is never half written.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = TensorFileWriter::new(PARAM_STORE_FORMAT);
        self.write_entries(&mut w)?;
        w.write(path.as_ref())
    }

    /// Adds every param to a safetensors file being written (see
    /// [`ParamStore::save_safetensors`]).
    pub(crate) fn write_entries(&self, w: &mut TensorFileWriter) -> Result<()> {
        for (name, e) in &self.entries {
            if !matches!(e.unconstrained.kind(), Kind::Float | Kind::Double) {
                return Err(Error::Checkpoint(format!(
                    "param `{name}` is a {:?} tensor; safetensors export takes float32 and \
                     float64 params",
                    e.unconstrained.kind()
                )));
            }
            w.meta(format!("constraint.{name}"), e.constraint.to_string());
            if let Some(d) = e.event_dim {
                w.meta(format!("event_dim.{name}"), d.to_string());
            }
            w.tensor(name, &e.unconstrained)?;
        }
        Ok(())
    }

    /// Loads params saved by [`ParamStore::save_safetensors`] (or written by
    /// `scripts/pyro_param_store.py` from a Pyro param store), replacing those of the same name.
    /// A checkpoint written as safetensors ([`crate::optim::save_checkpoint`]) loads too: its
    /// params, not its optimizer state. Tensors go to `device` when given, else to the CPU.
    pub fn load_safetensors(
        &mut self,
        path: impl AsRef<Path>,
        device: Option<tch::Device>,
    ) -> Result<()> {
        let f = TensorFile::read(path.as_ref(), &[PARAM_STORE_FORMAT, CHECKPOINT_FORMAT])?;
        self.read_entries(&f, device)
    }

    /// Reads the params of a safetensors file: every tensor with a `constraint.NAME` entry in the
    /// metadata (a param store file must have one for each of its tensors).
    pub(crate) fn read_entries(
        &mut self,
        f: &TensorFile,
        device: Option<tch::Device>,
    ) -> Result<()> {
        let strict = f.format() == PARAM_STORE_FORMAT;
        for name in f.names() {
            let constraint: Constraint = match f.meta(&format!("constraint.{name}")) {
                Some(c) => c.parse()?,
                None if strict => {
                    f.meta_required(&format!("constraint.{name}"))?;
                    continue;
                }
                None => continue,
            };
            let t = f.tensor(name)?;
            if !matches!(t.kind(), Kind::Float | Kind::Double) {
                return Err(Error::Checkpoint(format!(
                    "param `{name}` is {:?}; float32 or float64 expected",
                    t.kind()
                )));
            }
            let t = match device {
                Some(d) => t.f_to_device(d)?,
                None => t,
            };
            let event_dim = match f.meta(&format!("event_dim.{name}")) {
                Some(d) => Some(d.parse().map_err(|_| {
                    Error::Checkpoint(format!("bad event_dim {d:?} of param `{name}`"))
                })?),
                None => None,
            };
            self.entries.insert(
                name.to_string(),
                ParamEntry {
                    unconstrained: t.set_requires_grad(true),
                    constraint,
                    event_dim,
                },
            );
        }
        Ok(())
    }

    /// Loads params saved by [`ParamStore::save`], replacing those of the same name. Tensors go to
    /// `device` when given, else where they were saved from.
    pub fn load(&mut self, path: impl AsRef<Path>, device: Option<tch::Device>) -> Result<()> {
        let p = path.as_ref();
        let io = |e: tch::TchError| Error::Io {
            path: p.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        let loaded = match device {
            Some(d) => Tensor::load_multi_with_device(p, d).map_err(io)?,
            None => Tensor::load_multi(p).map_err(io)?,
        };
        let mut tensors: IndexMap<String, Tensor> = loaded.into_iter().collect();
        let meta = tensors
            .shift_remove("meta")
            .ok_or_else(|| Error::Checkpoint(format!("{}: not a ppl param file", p.display())))?;
        let bytes = Vec::<u8>::try_from(&meta)?;
        let meta = String::from_utf8(bytes)
            .map_err(|_| Error::Checkpoint(format!("{}: corrupt param metadata", p.display())))?;
        for (i, line) in meta.lines().enumerate() {
            let mut parts = line.split('\t');
            let (Some(name), Some(c), Some(ed)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(Error::Checkpoint(format!(
                    "{}: corrupt line {line:?}",
                    p.display()
                )));
            };
            let t = tensors.shift_remove(&format!("p{i}")).ok_or_else(|| {
                Error::Checkpoint(format!("{}: missing tensor for {name}", p.display()))
            })?;
            let event_dim = if ed == "-" {
                None
            } else {
                Some(
                    ed.parse()
                        .map_err(|_| Error::Checkpoint(format!("bad event_dim {ed:?}")))?,
                )
            };
            self.entries.insert(
                name.to_string(),
                ParamEntry {
                    unconstrained: t.set_requires_grad(true),
                    constraint: c.parse()?,
                    event_dim,
                },
            );
        }
        Ok(())
    }
}

thread_local! {
    static STORE: RefCell<ParamStore> = RefCell::new(ParamStore::new());
}

/// Errs, naming the param, the value and the constraint, when `value` is outside `constraint`.
fn check_init(name: &str, value: &Tensor, constraint: &Constraint) -> Result<()> {
    // A constraint without an elementwise check (a few structured ones) is left to the transform.
    let Ok(ok) = constraint.check(value) else {
        return Ok(());
    };
    if bool::try_from(ok.f_all()?)? {
        return Ok(());
    }
    Err(Error::ParamOutsideConstraint {
        param: name.to_string(),
        value: describe(value),
        constraint: constraint.to_string(),
        message: "the store keeps the unconstrained value, which does not exist for it".into(),
    })
}

/// A value for a message: the number, or the shape and the first few numbers.
fn describe(value: &Tensor) -> String {
    let n = value.numel();
    let flat: Vec<f64> = value
        .f_to_kind(Kind::Double)
        .and_then(|v| v.f_reshape([-1]))
        .and_then(|v| v.f_narrow(0, 0, n.min(6) as i64))
        .and_then(|v| Vec::<f64>::try_from(&v))
        .unwrap_or_default();
    match (value.dim(), flat.as_slice()) {
        (0, [x]) => format!("{x}"),
        _ => format!(
            "of shape {:?} ({:?}{})",
            value.size(),
            flat,
            if n > 6 { ", ..." } else { "" }
        ),
    }
}

/// Runs `f` with this thread's param store.
pub fn with_param_store<R>(f: impl FnOnce(&mut ParamStore) -> R) -> R {
    STORE.with(|s| f(&mut s.borrow_mut()))
}

/// Zeroes the gradients of `params` (Pyro's `zero_grads`); params without one are left alone.
pub fn zero_grads(params: &[(String, Tensor)]) -> Result<()> {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_zero_()?;
        }
    }
    Ok(())
}

/// The constrained value of a stored param.
pub fn get_param(name: &str) -> Result<Tensor> {
    with_param_store(|ps| ps.get(name))
}
