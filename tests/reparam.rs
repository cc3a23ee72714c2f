//! Reparameterizers (`poutine::reparam` with `LocScaleReparam`, `TransformReparam`,
//! `NeuTraReparam`): the joint density is unchanged, the sites keep their values, and NeuTra
//! NUTS samples the target.

use std::rc::Rc;

use ppl::infer::reparam::{LocScaleReparam, NeuTraReparam, TransformReparam};
use ppl::infer::AutoIAFNormal;
use ppl::poutine::ReparamConfig;
use ppl::prelude::*;
use ppl::transforms::{AffineTransform, ExpTransform, TransformRef};

/// Non-centered eight schools' prior part: mu, tau, theta[8] ~ N(mu, tau).
#[model]
fn hierarchical() -> ppl::Result<Tensor> {
    let mu = sample!(Normal::new(0.0, 5.0)?);
    let tau = sample!(HalfCauchy::new(5.0)?);
    let _s = plate!("schools", 8);
    let theta = sample!(Normal::new(&mu, &tau)?);
    Ok(theta)
}

fn site_log_prob(tr: &mut Trace, name: &str) -> Tensor {
    tr.get_mut(name)
        .unwrap_or_else(|| panic!("site {name}"))
        .compute_log_prob()
        .expect("log prob")
        .sum(Kind::Double)
}

/// With centeredness c, `theta_decentered ~ N(c mu, tau^c)` and
/// `theta = mu + tau^(1-c) (theta_decentered - c mu)`, so
/// `log N(theta; mu, tau) = log N(theta_decentered; c mu, tau^c) - 8 (1 - c) log tau` exactly,
/// and `theta` itself is an observed point mass (log-density 0). Checked for fixed c and for the
/// learnable one (a param `theta_centered` at 0.5).
#[test]
fn loc_scale_reparam_keeps_the_joint_density() {
    for centered in [Some(0.0), Some(0.3), Some(1.0), None] {
        clear_param_store();
        set_rng_seed(0);
        let config =
            Rc::new(ReparamConfig::new().site("theta", LocScaleReparam::new(centered).expect("c")));
        let (theta, mut tr) =
            poutine::trace(|| poutine::reparam(config.clone(), hierarchical)).expect("run");
        let names: Vec<&str> = tr
            .iter()
            .filter(|s| s.kind == ppl::poutine::SiteKind::Sample)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["mu", "tau", "theta_decentered", "theta"],
            "{centered:?}"
        );
        let site = tr.get("theta").expect("theta");
        assert!(site.is_observed, "theta is a point mass now");
        assert!(site.value.equal(&theta));
        let c = centered.unwrap_or(0.5);
        if centered.is_none() {
            let p = get_param("theta_centered").expect("learnable centeredness");
            assert!((p.double_value(&[]) - 0.5).abs() < 1e-6);
        }
        let mu = tr.get("mu").expect("mu").value.to_kind(Kind::Double);
        let tau = tr.get("tau").expect("tau").value.to_kind(Kind::Double);
        let orig = Normal::new(&mu, &tau)
            .expect("normal")
            .log_prob(&theta.to_kind(Kind::Double))
            .expect("lp")
            .sum(Kind::Double)
            .double_value(&[]);
        let dec = site_log_prob(&mut tr, "theta_decentered").double_value(&[]);
        let jac = 8.0 * (1.0 - c) * tau.log().double_value(&[]);
        assert!(
            (orig - (dec - jac)).abs() < 1e-4 * (1.0 + orig.abs()),
            "c {c}: log N(theta) {orig}, decentered {dec} - {jac}"
        );
        assert_eq!(site_log_prob(&mut tr, "theta").double_value(&[]), 0.0);
    }
}

/// x ~ TransformedDistribution(N(0, 1), [exp, 2 + 3 ·]): drawn at `x_base` from N(0, 1) and
/// transformed; `log p(x) = log N(x_base) - log |dx/dx_base|`.
#[test]
fn transform_reparam_draws_the_base() {
    #[model]
    fn shifted_log_normal() -> ppl::Result<Tensor> {
        let ts: Vec<TransformRef> = vec![
            Rc::new(ExpTransform),
            Rc::new(AffineTransform::new(2.0, 3.0)),
        ];
        let d = TransformedDistribution::new(Normal::new(0.0, 1.0)?.boxed(), ts)?;
        Ok(sample!("x", d))
    }
    clear_param_store();
    set_rng_seed(1);
    let config = Rc::new(ReparamConfig::new().site("x", TransformReparam));
    let (x, mut tr) =
        poutine::trace(|| poutine::reparam(config.clone(), shifted_log_normal)).expect("run");
    let base = tr.get("x_base").expect("base site").value.double_value(&[]);
    assert!((x.double_value(&[]) - (2.0 + 3.0 * base.exp())).abs() < 1e-5);
    let lp_base = site_log_prob(&mut tr, "x_base").double_value(&[]);
    let want = -0.5 * base * base - 0.5 * (2.0 * std::f64::consts::PI).ln();
    assert!((lp_base - want).abs() < 1e-5);
    assert_eq!(site_log_prob(&mut tr, "x").double_value(&[]), 0.0);
}

/// a ~ N(1, 2), s ~ LogNormal(0, 0.5) (a positive site, so the support's Jacobian matters),
/// b ~ N(0.8 a, 0.6): a correlated target with known moments.
#[model]
fn target() -> ppl::Result<()> {
    let a = sample!(Normal::new(1.0, 2.0)?);
    let _s = sample!(LogNormal::new(0.0, 0.5)?);
    sample!("b", Normal::new(&(&a * 0.8), 0.6)?);
    Ok(())
}

/// NUTS on the NeuTra-reparameterized model (a trained IAF guide) samples the target: the
/// sites' means and sds, mapped back from the shared latent, match the exact ones.
///
/// Tolerance: each mean is within 4 standard errors sd/√ESS, with ESS the chain's own estimate
/// (at least 150 is asserted); each sd within 4 · sd/√(2 ESS) (its normal-theory standard
/// error) plus 10% for the kurtosis of LogNormal draws.
#[test]
fn neutra_nuts_samples_the_target() {
    clear_param_store();
    set_rng_seed(3);
    let guide = AutoIAFNormal::new(target)
        .hidden_dims(&[16])
        .num_transforms(2);
    let adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let mut svi = Svi::new(target, || guide.call(), adam, TraceElbo::default());
    svi.run(1500).expect("fit the guide");

    let neutra = NeuTraReparam::new(&guide).expect("neutra");
    let config = Rc::new(ReparamConfig::new().all(neutra.clone()));
    let mut mcmc = Mcmc::new(Nuts::new())
        .num_samples(800)
        .warmup_steps(300)
        .seed(0)
        .progress_bar(false);
    mcmc.run(|| poutine::reparam(config.clone(), target))
        .expect("nuts");
    let samples = mcmc.get_samples().expect("samples");
    let z = &samples[&neutra.shared_site()];
    assert_eq!(z.size(), [800, 3]);
    let sites = neutra.transform_samples(z).expect("back to the sites");
    let moments = |name: &str| -> (f64, f64, f64) {
        let v: Vec<f64> =
            Vec::try_from(sites[name].to_kind(Kind::Double).reshape([-1])).expect("values");
        let ess = ppl::infer::mcmc::diagnostics::effective_sample_size(&[&v]).expect("ess");
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        (m, sd, ess)
    };
    let exact = [
        ("a", 1.0, 2.0),
        (
            "_s",
            0.125f64.exp(),
            ((0.25f64).exp() - 1.0).sqrt() * 0.125f64.exp(),
        ),
        ("b", 0.8, (0.64f64 * 4.0 + 0.36).sqrt()),
    ];
    for (name, mean, sd) in exact {
        let name = if name == "_s" { "s" } else { name };
        let (m, s, ess) = moments(name);
        eprintln!("{name}: mean {m:.3} (exact {mean:.3}), sd {s:.3} (exact {sd:.3}), ESS {ess:.0}");
        assert!(ess > 150.0, "{name}: ESS {ess}");
        assert!(
            (m - mean).abs() < 4.0 * sd / ess.sqrt(),
            "{name}: mean {m}, exact {mean}"
        );
        assert!(
            (s - sd).abs() < 4.0 * sd / (2.0 * ess).sqrt() + 0.1 * sd,
            "{name}: sd {s}, exact {sd}"
        );
    }
}
