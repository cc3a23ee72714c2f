//! Every example runs, with tiny settings, as Pyro's `tests/test_examples.py` does: each must
//! exit successfully. (AIR has its own smoke test, `tests/air_smoke.rs`; `bench_mcmc` is the
//! benchmark program.) `cargo test` builds the examples before it runs this.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<triple>/<profile>/deps/run_examples-<hash> -> target/<triple>/<profile>/examples/
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) {
    let path = example(name);
    assert!(
        path.exists(),
        "{} is not built (cargo test builds the examples first)",
        path.display()
    );
    let out = Command::new(&path)
        .args(args)
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "example {name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn svi_examples() {
    run("coin_fairness", &["--steps", "20"]);
    let plots = std::env::temp_dir().join(format!("ppl-br-{}", std::process::id()));
    let plots = plots.to_str().expect("utf-8 temp path");
    run("bayesian_regression", &["--steps", "20", "--plots", plots]);
    for plot in ["loss", "ppc"] {
        let path = format!("{plots}/bayesian_regression_{plot}.png");
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 1000),
            "{path}"
        );
    }
    let _ = std::fs::remove_dir_all(plots);
    run("minipyro", &["--steps", "10"]);
    run("scale_svi", &["--steps", "20"]);
    let png = std::env::temp_dir().join(format!("ppl-vae-{}.png", std::process::id()));
    let png = png.to_str().expect("utf-8 temp path");
    run("vae", &["--epochs", "1", "--out", png]);
    run(
        "vae",
        &["--epochs", "1", "--z-dim", "10", "--jit", "--out", png],
    );
    assert!(std::fs::metadata(png).is_ok_and(|m| m.len() > 100));
    let _ = std::fs::remove_file(png);
}

#[test]
fn mcmc_examples() {
    run(
        "eight_schools",
        &["--num-samples", "20", "--warmup", "20", "--chains", "1"],
    );
    run(
        "logistic_regression",
        &["--num-samples", "10", "--warmup", "10"],
    );
    let npz = std::env::temp_dir().join(format!("ppl-mc-{}", std::process::id()));
    let npz = npz.to_str().expect("utf-8 temp path");
    run(
        "model_comparison",
        &[
            "--num-samples",
            "20",
            "--warmup",
            "20",
            "--chains",
            "2",
            "--npz",
            npz,
        ],
    );
    for model in ["pooled", "hierarchical"] {
        let path = format!("{npz}_{model}.npz");
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 1000),
            "{path}"
        );
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(format!("{npz}_{model}.ppl.json"));
    }
    let tiny = ["--warmup", "20", "--samples", "20", "--svi-steps", "20"];
    run("neutra", &tiny);
    run("neutra", &[&tiny[..], &["--jit"]].concat());
}

#[test]
fn other_examples() {
    run("geometric", &[]);
    run("scale", &[]);
    run("scale_importance", &["--num-samples", "50"]);
    run("weather", &[]);
    let out = std::env::temp_dir().join("ppl_rsa_example.svg");
    run("rsa", &["--out", out.to_str().expect("utf-8 path")]);
}

#[test]
fn enumeration_examples() {
    run(
        "gmm",
        &[
            "--steps",
            "5",
            "--seeds",
            "2",
            "--samples",
            "10",
            "--warmup",
            "10",
        ],
    );
}
