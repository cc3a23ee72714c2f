//! Bayesian modules (`ppl::nn::PyroModule` over `#[derive(Parametrized)]` structs of `tch::nn`
//! layers): site names from module paths, priors, params, `lift`, autoguide coverage.

use std::collections::HashMap;
use std::rc::Rc;

use ppl::nn::{Parametrized, PyroModule};
use ppl::prelude::*;
use ppl::tch::nn::{self, Module};

#[derive(Debug, Parametrized)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    #[pyro(skip)]
    hidden: i64,
}

impl Mlp {
    fn new(vs: &nn::VarStore, hidden: i64) -> Mlp {
        Mlp {
            fc1: nn::linear(vs.root() / "fc1", 1, hidden, Default::default()),
            fc2: nn::linear(vs.root() / "fc2", hidden, 1, Default::default()),
            hidden,
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).tanh())
    }
}

fn x() -> Tensor {
    Tensor::from_slice(&[-1.0f32, 0.0, 2.0]).reshape([3, 1])
}

#[model]
fn regression(net: &PyroModule<Mlp>, x: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mean = net.call(|m| m.forward(x))?.squeeze_dim(-1);
    let _d = plate!("data", x.size()[0]);
    sample!("y", Normal::new(&mean, 0.1)?, obs = y);
    Ok(())
}

/// Every weight and bias is one sample site named by its path, with the prior's log-density;
/// the network's own tensors are back after the run.
#[test]
fn sites_are_named_by_path_with_their_priors() {
    clear_param_store();
    set_rng_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let mlp = Mlp::new(&vs, 4);
    assert_eq!(mlp.hidden, 4);
    let own = mlp.fc1.ws.shallow_clone();
    let net = PyroModule::new("", mlp).normal_priors(1.0);
    let (out, mut tr) = poutine::trace(|| net.call(|m| m.forward(&x()))).expect("run");
    assert_eq!(out.size(), [3, 1]);
    let shapes: Vec<(String, Vec<i64>)> = tr
        .iter()
        .map(|s| (s.name.clone(), s.value.size()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("fc1.weight".to_string(), vec![4, 1]),
            ("fc1.bias".to_string(), vec![4]),
            ("fc2.weight".to_string(), vec![1, 4]),
            ("fc2.bias".to_string(), vec![1]),
        ]
    );
    // One site per tensor: the whole tensor is one event of Normal(0, 1).
    let w = tr
        .get("fc1.weight")
        .expect("site")
        .value
        .to_kind(Kind::Double);
    let want = -0.5 * w.square().sum(Kind::Double).double_value(&[])
        - 4.0 * 0.5 * (2.0 * std::f64::consts::PI).ln();
    let lp = tr
        .get_mut("fc1.weight")
        .expect("site")
        .compute_log_prob()
        .expect("lp");
    assert_eq!(lp.dim(), 0);
    assert!((lp.double_value(&[]) - want).abs() < 1e-4);
    // The output used the drawn weights, and the module has its own back.
    let m = net.module();
    assert!(m.fc1.ws.equal(&own));
    assert!(!m.fc1.ws.equal(&tr.get("fc1.weight").expect("site").value));
}

/// Without priors every tensor is a param (Pyro's `pyro.module`), initialized with the
/// network's value; `param` constrains one, `sample` gives one a prior, and a module name
/// prefixes the paths.
#[test]
fn params_constraints_and_names() {
    clear_param_store();
    set_rng_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut mlp = Mlp::new(&vs, 3);
    // A positive bias, so that the positive constraint holds at the start.
    mlp.fc2.bs = Some(Tensor::from_slice(&[0.5f32]));
    let init_w = mlp.fc2.ws.detach().copy();
    let net = PyroModule::new("net", mlp)
        .param("fc2.bias", Constraint::Positive)
        .sample(
            "fc1.bias",
            Normal::new(0.0, 1.0)
                .expect("n")
                .expand_to(&[3])
                .expect("e"),
        );
    let (_, tr) = poutine::trace(|| net.call(|m| m.forward(&x()))).expect("run");
    let kinds: Vec<(String, bool)> = tr
        .iter()
        .map(|s| (s.name.clone(), s.kind == ppl::poutine::SiteKind::Param))
        .collect();
    assert_eq!(
        kinds,
        [
            ("net.fc1.weight".to_string(), true),
            ("net.fc1.bias".to_string(), false),
            ("net.fc2.weight".to_string(), true),
            ("net.fc2.bias".to_string(), true),
        ]
    );
    assert!(get_param("net.fc2.weight").expect("param").equal(&init_w));
    assert!((get_param("net.fc2.bias").expect("param").double_value(&[0]) - 0.5).abs() < 1e-6);
    let c = with_param_store(|ps| ps.entry("net.fc2.bias").map(|e| e.constraint.clone()));
    assert_eq!(c, Some(Constraint::Positive));
}

/// A prior that does not draw the tensor's shape is an error naming the site.
#[test]
fn a_prior_of_the_wrong_shape_names_the_site() {
    clear_param_store();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = PyroModule::new("", Mlp::new(&vs, 3))
        .sample("fc1.weight", Normal::new(0.0, 1.0).expect("n"));
    let err = net
        .call(|m| m.forward(&x()))
        .expect_err("shape")
        .to_string();
    assert!(
        err.contains("fc1.weight") && err.contains("[3, 1]"),
        "{err}"
    );
    // The network still has its own tensors.
    assert_eq!(net.module().fc1.ws.size(), [3, 1]);

    // A misspelt path is an error listing the network's paths, not a setting quietly ignored.
    clear_param_store();
    let net = PyroModule::new("", Mlp::new(&vs, 3)).param("fc1.wieght", Constraint::Positive);
    let err = net.call(|m| m.forward(&x())).expect_err("typo").to_string();
    assert!(
        err.contains("fc1.wieght") && err.contains("fc1.weight"),
        "{err}"
    );
    assert_eq!(net.module().fc1.ws.size(), [3, 1]);
}

/// `lift` turns the module's param sites into sample sites; a one-value prior is expanded to
/// each tensor's shape (one event).
#[test]
fn lift_makes_a_module_bayesian() {
    clear_param_store();
    set_rng_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = PyroModule::new("", Mlp::new(&vs, 5));
    let prior = Normal::new(0.0, 1.0).expect("n").boxed();
    let priors: HashMap<String, ppl::distributions::DistRef> =
        [("fc1.weight".to_string(), prior.clone())]
            .into_iter()
            .collect();
    let (_, tr) =
        poutine::trace(|| poutine::lift(priors.clone(), || net.call(|m| m.forward(&x()))))
            .expect("lifted run");
    let w = tr.get("fc1.weight").expect("site");
    assert_eq!(w.kind, ppl::poutine::SiteKind::Sample);
    assert_eq!(w.value.size(), [5, 1]);
    assert_eq!(w.dist().expect("prior").event_shape(), [5, 1]);
    let b = tr.get("fc1.bias").expect("site");
    assert_eq!(b.kind, ppl::poutine::SiteKind::Param);
}

/// AutoNormal covers every weight of a Bayesian MLP, and SVI fits it: the fitted network's
/// predictions at the data approach the observations (noise sd 0.1; the check allows 0.3).
#[test]
fn autonormal_fits_a_bayesian_mlp() {
    clear_param_store();
    set_rng_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = PyroModule::new("", Mlp::new(&vs, 8)).normal_priors(1.0);
    let xs = Tensor::linspace(-2.0, 2.0, 20, (Kind::Float, Device::Cpu)).reshape([20, 1]);
    let ys = xs.squeeze_dim(-1).sin();
    let guide = AutoNormal::new(|| regression(&net, &xs, &ys));
    let adam = Adam::new(AdamConfig {
        lr: 0.02,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || regression(&net, &xs, &ys),
        || guide.call(),
        adam,
        TraceElbo::default(),
    );
    svi.run(1500).expect("svi");
    let mut names: Vec<String> = with_param_store(|ps| ps.names().map(String::from).collect());
    names.sort();
    for site in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        assert!(
            names.contains(&format!("AutoNormal.locs.{site}")),
            "{names:?}"
        );
        assert!(
            names.contains(&format!("AutoNormal.scales.{site}")),
            "{names:?}"
        );
    }
    let med = guide.median().expect("median");
    let data: HashMap<String, Tensor> = med.into_iter().collect();
    let pred = poutine::condition(Rc::new(data), || net.call(|m| m.forward(&xs)))
        .expect("prediction")
        .squeeze_dim(-1);
    let err = (&pred - &ys).abs().max().double_value(&[]);
    assert!(err < 0.3, "max |prediction - y| = {err}");
}
