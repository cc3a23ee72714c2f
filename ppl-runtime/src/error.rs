//! The one error type of ppl. Every failure says where it happened: a site, a parameter or a shape.

use std::fmt;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ppl.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from libtorch (wrong dtype, device mismatch, out of memory, ...).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),

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

    /// A malformed file or argument.
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
