//! Probability distributions, one family per file, all batched, differentiable and
//! device-generic: a distribution lives on the device and dtype of the tensors it is given.
//!
//! Shapes follow torch: a draw with `sample(sample_shape)` has shape
//! `sample_shape + batch_shape + event_shape`; parameters broadcast against each other.

use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use tch::Tensor;

use crate::constraints::Constraint;
use crate::error::{Error, Result};

mod args;
mod asymmetric_laplace;
mod bernoulli;
mod beta;
mod beta_binomial;
mod beta_negative_binomial;
mod binomial;
mod categorical;
mod cauchy;
mod censored;
mod chi2;
mod continuous_bernoulli;
mod delta;
mod dirichlet;
mod dirichlet_multinomial;
mod discrete_hmm;
mod discrete_uniform;
mod empirical;
mod exponential;
mod fisher_snedecor;
mod folded;
mod gamma;
mod gamma_poisson;
mod gaussian_random_walk;
mod geometric;
mod gumbel;
mod half_cauchy;
mod half_normal;
mod improper_uniform;
mod independent;
mod inverse_gamma;
mod inverse_wishart;
mod kl;
mod kl_cross;
mod kumaraswamy;
mod laplace;
mod lkj;
mod lkj_cholesky;
mod log_normal;
mod log_uniform;
mod logistic;
mod logistic_normal;
mod low_rank_multivariate_normal;
mod masked;
mod matrix_normal;
mod mixture_of_diag_normals;
mod mixture_same_family;
mod multinomial;
mod multivariate_normal;
mod multivariate_student_t;
mod negative_binomial;
mod normal;
mod one_hot_categorical;
mod ordered_logistic;
mod pareto;
mod poisson;
mod projected_normal;
mod relaxed;
mod sine_bivariate_von_mises;
mod skew_logistic;
mod soft_laplace;
mod stable;
mod student_t;
mod subsample;
mod transformed_distribution;
mod truncated;
mod truncated_normal;
mod uniform;
mod unit;
mod util;
mod von_mises;
mod von_mises_3d;
mod weibull;
mod wishart;
mod zero_inflated;
mod zero_inflated_poisson;

pub use args::{
    broadcast_args, check, check_positive, check_unit, expand_param, extended_shape, finfo_eps,
    finfo_tiny, is_float, validate_sample, Arg,
};
pub use asymmetric_laplace::AsymmetricLaplace;
pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use beta_binomial::BetaBinomial;
pub use beta_negative_binomial::BetaNegativeBinomial;
pub use binomial::Binomial;
pub use categorical::Categorical;
pub use cauchy::Cauchy;
pub use censored::{CensoredDistribution, IntervalCensoredDistribution};
pub use chi2::Chi2;
pub use continuous_bernoulli::ContinuousBernoulli;
pub use delta::Delta;
pub use dirichlet::Dirichlet;
pub use dirichlet_multinomial::DirichletMultinomial;
pub use discrete_hmm::DiscreteHmm;
pub use discrete_uniform::DiscreteUniform;
pub use empirical::Empirical;
pub use exponential::Exponential;
pub use fisher_snedecor::FisherSnedecor;
pub use folded::FoldedDistribution;
pub use gamma::Gamma;
pub use gamma_poisson::GammaPoisson;
pub use gaussian_random_walk::GaussianRandomWalk;
pub use geometric::Geometric;
pub use gumbel::Gumbel;
pub use half_cauchy::HalfCauchy;
pub use half_normal::HalfNormal;
pub use improper_uniform::ImproperUniform;
pub use independent::Independent;
pub use inverse_gamma::InverseGamma;
pub use inverse_wishart::InverseWishart;
pub use kl::kl_divergence;
pub use kumaraswamy::Kumaraswamy;
pub use laplace::Laplace;
pub use lkj::LKJ;
pub use lkj_cholesky::LKJCholesky;
pub use log_normal::LogNormal;
pub use log_uniform::LogUniform;
pub use logistic::Logistic;
pub use logistic_normal::LogisticNormal;
pub use low_rank_multivariate_normal::LowRankMultivariateNormal;
pub use masked::Masked;
pub use matrix_normal::MatrixNormal;
pub use mixture_of_diag_normals::MixtureOfDiagNormals;
pub use mixture_same_family::MixtureSameFamily;
pub use multinomial::Multinomial;
pub(crate) use multivariate_normal::broadcast_shapes;
pub use multivariate_normal::MultivariateNormal;
pub use multivariate_student_t::MultivariateStudentT;
pub use negative_binomial::NegativeBinomial;
pub use normal::Normal;
pub use one_hot_categorical::OneHotCategorical;
pub use ordered_logistic::OrderedLogistic;
pub use pareto::Pareto;
pub use poisson::Poisson;
pub use projected_normal::ProjectedNormal;
pub use relaxed::{
    ExpRelaxedCategorical, LogitRelaxedBernoulli, RelaxedBernoulli, RelaxedOneHotCategorical,
};
pub use sine_bivariate_von_mises::SineBivariateVonMises;
pub use skew_logistic::SkewLogistic;
pub use soft_laplace::SoftLaplace;
pub use stable::Stable;
pub use student_t::StudentT;
pub use subsample::Subsample;
pub use transformed_distribution::TransformedDistribution;
pub use truncated::{TruncatedCauchy, TruncatedDistribution};
pub use truncated_normal::TruncatedNormal;
pub use uniform::Uniform;
pub use unit::Unit;
pub use von_mises::VonMises;
pub use von_mises_3d::VonMises3D;
pub use weibull::Weibull;
pub use wishart::Wishart;
pub use zero_inflated::{
    NegativeBinomial2, ZeroInflatedDistribution, ZeroInflatedNegativeBinomial,
};
pub use zero_inflated_poisson::ZeroInflatedPoisson;

/// A shared, type-erased distribution, as handlers carry it.
pub type DistRef = Rc<dyn Distribution>;

static VALIDATION: AtomicBool = AtomicBool::new(true);

/// Turns argument and support validation on (the default) or off (for speed), like Pyro's
/// `enable_validation`.
pub fn enable_validation(on: bool) {
    VALIDATION.store(on, Ordering::Relaxed);
}

/// Whether validation is on.
pub fn validation_enabled() -> bool {
    VALIDATION.load(Ordering::Relaxed)
}

/// A probability distribution (object-safe; combinators are in [`DistributionExt`]).
pub trait Distribution: fmt::Debug {
    /// The family's name, for messages.
    fn name(&self) -> &'static str;
    /// The shape of independent, non-identical draws.
    fn batch_shape(&self) -> &[i64];
    /// The shape of one draw.
    fn event_shape(&self) -> &[i64];
    /// `event_shape().len()`.
    fn event_dim(&self) -> usize {
        self.event_shape().len()
    }
    /// The support of a single draw.
    fn support(&self) -> Constraint;
    /// Draws without gradients: shape `sample_shape + batch_shape + event_shape`.
    fn sample(&self, sample_shape: &[i64]) -> Result<Tensor>;
    /// Whether [`Distribution::rsample`] is implemented.
    fn has_rsample(&self) -> bool {
        false
    }
    /// A reparameterized draw: gradients flow to the parameters.
    fn rsample(&self, _sample_shape: &[i64]) -> Result<Tensor> {
        Err(self.not_implemented("rsample"))
    }
    /// The log-density of `value`, with shape `broadcast(value batch shape, batch_shape)`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor>;
    /// The same family with parameters expanded to `batch_shape`.
    fn expand(&self, batch_shape: &[i64]) -> Result<DistRef>;
    /// Whether [`Distribution::enumerate_support`] is implemented.
    fn has_enumerate_support(&self) -> bool {
        false
    }
    /// All values of a discrete distribution, in a new leftmost dimension; with `expand` the
    /// values are expanded to the batch shape, else they have size-1 batch dims.
    fn enumerate_support(&self, _expand: bool) -> Result<Tensor> {
        Err(self.not_implemented("enumerate_support"))
    }
    /// The mean.
    fn mean(&self) -> Result<Tensor> {
        Err(self.not_implemented("mean"))
    }
    /// The variance.
    fn variance(&self) -> Result<Tensor> {
        Err(self.not_implemented("variance"))
    }
    /// The standard deviation.
    fn stddev(&self) -> Result<Tensor> {
        Ok(self.variance()?.f_sqrt()?)
    }
    /// The entropy.
    fn entropy(&self) -> Result<Tensor> {
        Err(self.not_implemented("entropy"))
    }
    /// The cumulative distribution function.
    fn cdf(&self, _value: &Tensor) -> Result<Tensor> {
        Err(self.not_implemented("cdf"))
    }
    /// The inverse cumulative distribution function.
    fn icdf(&self, _value: &Tensor) -> Result<Tensor> {
        Err(self.not_implemented("icdf"))
    }
    /// The concrete distribution, for downcasting (the KL registry dispatches on it); `None`
    /// for types that do not opt in.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// The error for a missing operation.
    fn not_implemented(&self, op: &'static str) -> Error {
        Error::NotImplemented {
            dist: self.name(),
            op,
        }
    }
}

impl<D: Distribution + ?Sized> Distribution for Rc<D> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn batch_shape(&self) -> &[i64] {
        (**self).batch_shape()
    }
    fn event_shape(&self) -> &[i64] {
        (**self).event_shape()
    }
    fn support(&self) -> Constraint {
        (**self).support()
    }
    fn sample(&self, s: &[i64]) -> Result<Tensor> {
        (**self).sample(s)
    }
    fn has_rsample(&self) -> bool {
        (**self).has_rsample()
    }
    fn rsample(&self, s: &[i64]) -> Result<Tensor> {
        (**self).rsample(s)
    }
    fn log_prob(&self, v: &Tensor) -> Result<Tensor> {
        (**self).log_prob(v)
    }
    fn expand(&self, b: &[i64]) -> Result<DistRef> {
        (**self).expand(b)
    }
    fn has_enumerate_support(&self) -> bool {
        (**self).has_enumerate_support()
    }
    fn enumerate_support(&self, e: bool) -> Result<Tensor> {
        (**self).enumerate_support(e)
    }
    fn mean(&self) -> Result<Tensor> {
        (**self).mean()
    }
    fn variance(&self) -> Result<Tensor> {
        (**self).variance()
    }
    fn stddev(&self) -> Result<Tensor> {
        (**self).stddev()
    }
    fn entropy(&self) -> Result<Tensor> {
        (**self).entropy()
    }
    fn cdf(&self, v: &Tensor) -> Result<Tensor> {
        (**self).cdf(v)
    }
    fn icdf(&self, v: &Tensor) -> Result<Tensor> {
        (**self).icdf(v)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        (**self).as_any()
    }
}

/// Combinators on distributions.
pub trait DistributionExt: Distribution + Sized + 'static {
    /// Treats the `n` rightmost batch dims as event dims (Pyro's `to_event`).
    fn to_event(self, n: usize) -> Result<Independent> {
        Independent::new(Rc::new(self), n)
    }
    /// Treats every batch dim as an event dim (Pyro's `to_event()` with no argument).
    fn to_event_all(self) -> Result<Independent> {
        let n = self.batch_shape().len();
        Independent::new(Rc::new(self), n)
    }
    /// Prepends `sample_shape` to the batch shape (Pyro's `expand_by`).
    fn expand_by(self, sample_shape: &[i64]) -> Result<DistRef> {
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(self.batch_shape());
        self.expand(&shape)
    }
    /// Zeroes the log-density where `mask` is false.
    fn mask(self, mask: &Tensor) -> Result<Masked> {
        Masked::new(Rc::new(self), mask)
    }
    /// Expands the batch shape (Pyro's `expand`).
    fn expand_to(self, batch_shape: &[i64]) -> Result<DistRef> {
        self.expand(batch_shape)
    }
    /// Type-erases the distribution.
    fn boxed(self) -> DistRef {
        Rc::new(self)
    }
}

impl<D: Distribution + Sized + 'static> DistributionExt for D {}
