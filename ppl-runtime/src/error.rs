//! The one error type of ppl. Every failure says where it happened: a site, a parameter or a shape.
//!
//! The variants come in groups: what a model got wrong (a distribution's arguments, shapes and
//! plates, sites and params), what an inference algorithm was asked that it cannot do (settings,
//! enumeration, compilation), files, and the rest. `Debug` prints the message, as `Display` does,
//! so that `fn main() -> ppl::Result<()>` reports an error in words; libtorch's errors keep their
//! first lines and lose the C++ backtrace.

use std::fmt;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ppl.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- From libtorch ----
    /// An error from libtorch (wrong dtype, device mismatch, out of memory, ...): its message
    /// without the C++ backtrace.
    #[error("libtorch: {0}")]
    Torch(String),

    // ---- A model's distributions, values and shapes ----
    /// A distribution parameter outside its domain.
    #[error("invalid parameter `{param}` of {dist}: expected {expected}")]
    InvalidParameter {
        /// The distribution family, e.g. `Normal`.
        dist: &'static str,
        /// The parameter, e.g. `scale`.
        param: &'static str,
        /// What was expected, e.g. `> 0`.
        expected: String,
    },

    /// A value outside the support of the distribution it is scored under.
    #[error("value outside the support of {dist}: expected {support}")]
    OutsideSupport {
        /// The distribution family.
        dist: &'static str,
        /// The support, e.g. `{0, 1}`.
        support: String,
    },

    /// Shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// A distribution's batch shape that does not fit a vectorized plate.
    #[error(
        "site `{site}`: batch shape {batch_shape:?} does not fit plate `{plate}` of size {size} \
         at dim {dim}: expected size 1 or {size} there"
    )]
    PlateMismatch {
        /// The sample site.
        site: String,
        /// The plate's name.
        plate: String,
        /// The plate's size (its subsample size when subsampling).
        size: i64,
        /// The plate's batch dimension (negative, from the right).
        dim: i64,
        /// The distribution's batch shape.
        batch_shape: Vec<i64>,
    },

    /// An observed value whose shape does not fit a vectorized plate.
    #[error(
        "site `{site}`: the observed value of shape {shape:?} does not fit plate `{plate}` of size \
         {size} at dim {dim}: it has {have} there, expected 1 or {size}"
    )]
    ObservedPlateMismatch {
        /// The sample site.
        site: String,
        /// The plate's name.
        plate: String,
        /// The plate's size (its subsample size when subsampling).
        size: i64,
        /// The plate's batch dimension (negative, from the right of the batch dims).
        dim: i64,
        /// The observed value's shape.
        shape: Vec<i64>,
        /// Its size at the plate's dim.
        have: i64,
    },

    /// An operation a distribution does not provide (e.g. `rsample` of a discrete one).
    #[error("{dist} does not implement {op}")]
    NotImplemented {
        /// The distribution family.
        dist: &'static str,
        /// The missing operation.
        op: &'static str,
    },

    /// No analytic KL divergence is registered for this pair of families.
    #[error("no KL divergence rule for {p} against {q}")]
    NoKlRule {
        /// The first family.
        p: &'static str,
        /// The second family.
        q: &'static str,
    },

    // ---- Sites, params and plates ----
    /// A parameter read before it was initialized.
    #[error("param `{0}` is not in the param store and was given no initial value")]
    MissingParam(String),

    /// A site that one program has and another lacks (e.g. a guide site missing from the model).
    #[error("site `{site}`: {message}")]
    MissingSite {
        /// The site.
        site: String,
        /// What is missing where.
        message: String,
    },

    /// A param's initial value outside its constraint.
    #[error("param `{param}`: the initial value {value} is outside its constraint {constraint}: {message}")]
    ParamOutsideConstraint {
        /// The param.
        param: String,
        /// The value (or its shape and first numbers).
        value: String,
        /// The constraint.
        constraint: String,
        /// Why it cannot be stored.
        message: String,
    },

    /// Two sites of one run with the same name.
    #[error(
        "site `{site}`: the name occurs twice in one run; give repeated sites distinct names \
         (e.g. with format!(\"x_{{i}}\")) or put them in a plate"
    )]
    DuplicateSite {
        /// The site.
        site: String,
    },

    /// A model and a guide (or a replayed trace) that do not agree about a site.
    #[error("site `{site}`: {message}")]
    ModelGuideMismatch {
        /// The site.
        site: String,
        /// How they disagree.
        message: String,
    },

    /// A `sample!` or `param!` statement given arguments that do not go together.
    #[error("site `{site}`: {message}")]
    InvalidSite {
        /// The site.
        site: String,
        /// What is wrong with its arguments.
        message: String,
    },

    /// A non-finite loss or log-density.
    #[error("non-finite value: {0}")]
    NonFinite(String),

    /// Plate dimension allocation or nesting errors.
    #[error("plate `{plate}`: {message}")]
    Plate {
        /// The plate.
        plate: String,
        /// What went wrong.
        message: String,
    },

    // ---- Inference: settings, enumeration, compilation ----
    /// A setting of an inference algorithm, optimizer or scheduler outside what it accepts
    /// (the message starts with the component, e.g. `StepLr: step_size must be at least 1`).
    #[error("{0}")]
    Config(String),

    /// Something ppl does not do (yet), with what to do instead.
    #[error("not supported: {0}")]
    Unsupported(String),

    /// Discrete enumeration that cannot be done as asked: a site marked for enumeration under a
    /// loss that cannot sum it out, a distribution without finite support, dims that collide.
    #[error("site `{site}`: {message}")]
    Enumeration {
        /// The sample site.
        site: String,
        /// What went wrong and what to do instead.
        message: String,
    },

    /// `jit_compile` refused to compile a loss or potential, or could not trust the program it
    /// built. The eager path is unaffected.
    #[error("jit_compile refused: {reason}")]
    JitRefused {
        /// Why, and what to do instead.
        reason: String,
    },

    /// An aten op that the compiler does not support.
    #[error("jit_compile: the op `{op}` is not supported by the compiler{detail}")]
    UnsupportedOp {
        /// The op, e.g. `aten::linear`.
        op: String,
        /// More about the refusal (an argument it cannot take), or empty.
        detail: String,
    },

    /// A compiled program that failed while running or being built (a wrong input size, an op
    /// given arguments it cannot read).
    #[error("jit: {0}")]
    Jit(String),

    // ---- Control flow, files, and the rest ----
    /// Control flow used by `escape` and `queue`: a site stopped the run early.
    /// Inference code catches it; it is an error only if it reaches the user.
    #[error("nonlocal exit at site `{0}` (escape/queue control flow)")]
    NonlocalExit(String),

    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint or param-store file that cannot be read back as it was written, or state
    /// that cannot be saved.
    #[error("checkpoint: {0}")]
    Checkpoint(String),

    /// A collective, the rendezvous or a rank of a distributed run failed (`ppl::distributed`):
    /// the message names the operation and, when it can tell, the rank that is missing.
    #[error("distributed: {0}")]
    Distributed(String),

    /// A state ppl's own code should never reach: a bug in ppl (please report it).
    #[error("internal error (a bug in ppl): {0}")]
    Internal(String),

    /// A malformed argument that fits none of the above.
    #[error("{0}")]
    Invalid(String),

    /// An error that happened at a named site; wraps the underlying error.
    #[error("at site `{site}`: {source}")]
    AtSite {
        /// The site.
        site: String,
        /// The underlying error.
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps `self` with the name of the site where it happened (once: an error that already names
    /// a site keeps its innermost site).
    pub fn at_site(self, site: impl fmt::Display) -> Error {
        match self {
            e @ (Error::AtSite { .. }
            | Error::PlateMismatch { .. }
            | Error::ObservedPlateMismatch { .. }
            | Error::DuplicateSite { .. }
            | Error::ParamOutsideConstraint { .. }
            | Error::ModelGuideMismatch { .. }
            | Error::InvalidSite { .. }
            | Error::MissingSite { .. }
            | Error::Enumeration { .. }
            | Error::NonlocalExit(_)) => e,
            e => Error::AtSite {
                site: site.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// Whether the error says that `jit_compile` cannot compile here (rather than that the model
    /// is wrong, which an eager run reports too): what automatic compilation falls back on.
    pub fn is_jit_refusal(&self) -> bool {
        matches!(
            self.root(),
            Error::JitRefused { .. } | Error::UnsupportedOp { .. } | Error::Jit(_)
        )
    }

    /// The error under any number of `AtSite` wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::AtSite { source, .. } => source.root(),
            e => e,
        }
    }
}

impl fmt::Debug for Error {
    /// The message, as `Display` writes it: what `main` returning an error prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(torch_message(&e.to_string()))
    }
}

/// libtorch's message without the C++ backtrace that follows it ("Exception raised from ...",
/// "frame #0: ...").
pub(crate) fn torch_message(full: &str) -> String {
    let mut lines = Vec::new();
    for line in full.lines() {
        let l = line.trim_start();
        if l.starts_with("Exception raised from") || l.starts_with("frame #") {
            break;
        }
        lines.push(line.trim_end());
    }
    let msg = lines.join("\n");
    let msg = msg.trim();
    // tch's `Display` calls every libtorch error "internal"; most are the caller's mistake.
    let msg = msg.strip_prefix("Internal torch error: ").unwrap_or(msg);
    if msg.is_empty() {
        full.lines().next().unwrap_or_default().to_string()
    } else {
        msg.to_string()
    }
}

/// Adds the site name to an error as it travels up.
pub trait ResultExt<T> {
    /// Wraps the error, if any, with the name of the site where it happened.
    fn at_site(self, site: &str) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn at_site(self, site: &str) -> Result<T> {
        self.map_err(|e| e.into().at_site(site))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_lose_the_backtrace() {
        let e: Error = tch::Tensor::f_zeros([10], (tch::Kind::Float, tch::Device::Cpu))
            .and_then(|a| {
                a.f_add(&tch::Tensor::zeros(
                    [12],
                    (tch::Kind::Float, tch::Device::Cpu),
                ))
            })
            .map(|_| ())
            .expect_err("10 against 12")
            .into();
        let text = format!("{e:?}");
        assert!(
            text.starts_with("libtorch: The size of tensor a (10) must match"),
            "{text}"
        );
        assert!(
            !text.contains("frame #") && !text.contains("Exception raised"),
            "{text}"
        );
        assert!(text.len() < 300, "{} characters: {text}", text.len());
    }
}
