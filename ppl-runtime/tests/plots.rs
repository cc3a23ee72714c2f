//! Plots: each function writes a file with the expected panels. In SVG every panel's title is a
//! text element, so the panels are counted by their titles; PNG files are checked for their
//! signature and pixel size (from the IHDR chunk).

use ppl::infer::mcmc::{Mcmc, Nuts};
use ppl::plots;
use ppl::prelude::*;

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ppl-plots-{}-{name}", std::process::id()))
}

/// The contents of the `<text>` elements, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("</text>")
        .filter_map(|chunk| chunk.rsplit_once('>').map(|(_, t)| t.trim().to_string()))
        .collect()
}

/// The number of `<text>` elements whose content is exactly `title`.
fn titles(svg: &str, title: &str) -> usize {
    texts(svg).iter().filter(|t| *t == title).count()
}

/// The number of `<text>` elements whose content contains `part`.
fn titles_with(svg: &str, part: &str) -> usize {
    texts(svg).iter().filter(|t| t.contains(part)).count()
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let b = std::fs::read(path).expect("png");
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    (w, h)
}

fn fitted() -> Mcmc {
    set_rng_seed(0);
    let y = Tensor::from_slice(&[0.5f64, 1.5, -0.2]);
    let model = move || -> ppl::Result<()> {
        let mu = ppl::sample("mu", Normal::new(0.0f64, 2.0)?, None)?;
        let theta = ppl::sample(
            "theta",
            Normal::new(&mu, 1.0)?.expand(&[3])?.to_event(1)?,
            None,
        )?;
        let _ = ppl::sample(
            "y",
            Normal::new(&theta, 0.5)?.to_event(1)?,
            Some(y.shallow_clone()),
        )?;
        Ok(())
    };
    let mut mcmc = Mcmc::new(Nuts::new())
        .num_samples(60)
        .warmup_steps(60)
        .num_chains(2)
        .seed(3);
    mcmc.run(model).expect("run");
    mcmc
}

#[test]
fn mcmc_plots_have_a_panel_per_element() {
    let mcmc = fitted();
    // Trace: a density panel and a trace panel for mu and each theta[i].
    let p = tmp("trace.svg");
    mcmc.plot_trace(&p, None).expect("trace");
    let svg = std::fs::read_to_string(&p).expect("svg");
    for label in ["mu", "theta[0]", "theta[1]", "theta[2]"] {
        assert_eq!(titles(&svg, label), 1, "density panel of {label}");
        assert_eq!(
            titles(&svg, &format!("{label} (trace)")),
            1,
            "trace panel of {label}"
        );
    }
    let _ = std::fs::remove_file(&p);
    // Ranks of the sites asked for only.
    let p = tmp("rank.svg");
    mcmc.plot_rank(&p, Some(&["theta"])).expect("rank");
    let svg = std::fs::read_to_string(&p).expect("svg");
    assert_eq!(titles_with(&svg, " (ranks)"), 3);
    assert_eq!(titles(&svg, "mu (ranks)"), 0);
    let _ = std::fs::remove_file(&p);
    // Posterior: the HPDI in each title.
    let p = tmp("posterior.svg");
    mcmc.plot_posterior(&p, Some(&["mu"]), 0.9)
        .expect("posterior");
    let svg = std::fs::read_to_string(&p).expect("svg");
    assert_eq!(titles_with(&svg, "90% HPDI"), 1, "one panel");
    let _ = std::fs::remove_file(&p);
    // Pair plot, as PNG of the stated size.
    let p = tmp("pair.png");
    mcmc.plot_pair(&p, "mu", "theta[1]").expect("pair");
    assert_eq!(png_size(&p), (640, 600));
    let _ = std::fs::remove_file(&p);
    // A trace plot as PNG: one row per element.
    let p = tmp("trace.png");
    mcmc.plot_trace(&p, Some(&["mu"])).expect("trace png");
    assert_eq!(png_size(&p), (1000, 40 + 190));
    let _ = std::fs::remove_file(&p);
    // Mistakes are named.
    let e = mcmc
        .plot_trace(tmp("x.svg"), Some(&["sigma"]))
        .expect_err("no site")
        .to_string();
    assert!(e.contains("sigma") && e.contains("mu"), "{e}");
    let e = mcmc
        .plot_pair(tmp("x.svg"), "mu", "theta[7]")
        .expect_err("range")
        .to_string();
    assert!(e.contains("out of range"), "{e}");
    let e = mcmc
        .plot_trace(tmp("x.pdf"), None)
        .expect_err("format")
        .to_string();
    assert!(e.contains(".png or .svg"), "{e}");
}

#[test]
fn loss_curve_and_predictive_check() {
    let losses: Vec<f64> = (0..200).map(|i| 100.0 / (1.0 + i as f64)).collect();
    let p = tmp("loss.svg");
    plots::loss_curve(&losses, &p).expect("loss");
    let svg = std::fs::read_to_string(&p).expect("svg");
    assert_eq!(titles(&svg, "SVI loss (ELBO loss per step)"), 1);
    let _ = std::fs::remove_file(&p);
    assert!(plots::loss_curve(&[], tmp("none.svg")).is_err());

    tch::manual_seed(0);
    let observed = Tensor::randn([50], (Kind::Double, Device::Cpu));
    let replicated = Tensor::randn([300, 50], (Kind::Double, Device::Cpu));
    let p = tmp("ppc.png");
    plots::posterior_predictive_check("y", &observed, &replicated, &p).expect("ppc");
    assert_eq!(png_size(&p), (800, 500));
    let _ = std::fs::remove_file(&p);
    let p = tmp("ppc.svg");
    plots::posterior_predictive_check("y", &observed, &replicated, &p).expect("ppc");
    let svg = std::fs::read_to_string(&p).expect("svg");
    // 300 draws thinned to 100 curves, named in the title.
    assert!(svg.contains("over 100 replicated data sets"), "title");
    let _ = std::fs::remove_file(&p);
    let e = plots::posterior_predictive_check(
        "y",
        &observed,
        &Tensor::zeros([7], (Kind::Double, Device::Cpu)),
        tmp("bad.svg"),
    )
    .expect_err("shape")
    .to_string();
    assert!(e.contains("[draws]"), "{e}");
}

#[test]
fn kde_integrates_to_one() {
    // A density estimate over a wide grid sums (trapezoid rule) to 1 within the rule's error.
    let x: Vec<f64> = (0..500).map(|i| ((i as f64) * 0.37).sin() * 2.0).collect();
    let d = plots::kde(&x, -6.0, 6.0, 2001);
    let h = 12.0 / 2000.0;
    let total: f64 = d.windows(2).map(|w| 0.5 * (w[0].1 + w[1].1) * h).sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
}
