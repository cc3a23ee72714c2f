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

/// `torchrun` of the torch venv that setup installs (beside the libtorch in `LIBTORCH`), if any.
fn torchrun() -> Option<PathBuf> {
    let lib = PathBuf::from(std::env::var("LIBTORCH").ok()?);
    // LIBTORCH = <venv>/lib/python3.X/site-packages/torch
    let bin = lib.ancestors().nth(4)?.join("bin/torchrun");
    bin.exists().then_some(bin)
}

/// Runs `name` on two ranks: with torchrun (`--standalone`: its agent serves the store) when
/// `via_torchrun` and it is installed, else as two processes started here with the variables
/// torchrun would set. Returns rank 0's output.
fn run_distributed(name: &str, args: &[&str], via_torchrun: bool) -> String {
    let path = example(name);
    let output = match torchrun().filter(|_| via_torchrun) {
        Some(tr) => Command::new(tr)
            .args(["--standalone", "--nproc-per-node", "2", "--no-python"])
            .arg(&path)
            .args(args)
            .env("PPL_DIST_TIMEOUT", "60")
            .output()
            .expect("run torchrun"),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
                .to_string();
            let ranks: Vec<_> = (0..2)
                .map(|r| {
                    Command::new(&path)
                        .args(args)
                        .env("RANK", r.to_string())
                        .env("WORLD_SIZE", "2")
                        .env("MASTER_ADDR", "127.0.0.1")
                        .env("MASTER_PORT", &port)
                        .env("PPL_DIST_TIMEOUT", "60")
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .expect("start a rank")
                })
                .collect();
            let mut outs: Vec<_> = ranks
                .into_iter()
                .map(|c| c.wait_with_output().expect("rank output"))
                .collect();
            let failed = outs.iter().position(|o| !o.status.success());
            let pick = failed.unwrap_or(0);
            outs.swap_remove(pick)
        }
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{name} {args:?} on two ranks failed:\n{text}"
    );
    text
}

/// The distributed modes on two local ranks: eight schools' chains through torchrun (when the
/// setup's venv has it), the regressions data-parallel as processes started here.
#[test]
fn distributed_examples() {
    let out = run_distributed(
        "eight_schools",
        &[
            "--distributed",
            "--chains",
            "4",
            "--num-samples",
            "30",
            "--warmup",
            "30",
        ],
        true,
    );
    assert!(out.contains("4 chains over 2 ranks"), "{out}");
    let out = run_distributed(
        "bayesian_regression",
        &["--distributed", "--steps", "20", "--plots", ""],
        false,
    );
    assert!(out.contains("data-parallel over 2 ranks"), "{out}");
    let out = run_distributed(
        "distributed_regression",
        &["--rows", "2000", "--features", "5", "--steps", "5"],
        false,
    );
    assert!(out.contains("over 2 rank(s)"), "{out}");
}

/// The GPU anchors' program on the CPU at small N (issue 18's preparation), on data written here
/// in the `.npy` layout `scripts/make-gpu-bench-data.py` writes: each workload prints its JSON
/// line.
#[test]
fn gpu_bench_runs_on_the_cpu_at_small_n() {
    use tch::{Device, Kind, Tensor};
    let dir = std::env::temp_dir().join(format!("ppl-gpu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
    let x = Tensor::cat(
        &[Tensor::randn([300, 54], opts), Tensor::ones([300, 1], opts)],
        1,
    );
    let y = x
        .matmul(&(Tensor::randn([55], opts) * 0.5))
        .sigmoid()
        .bernoulli();
    x.write_npy(dir.join("covtype_X.npy")).expect("npy");
    y.write_npy(dir.join("covtype_y.npy")).expect("npy");
    let x = Tensor::randn([500, 100], opts);
    let y = x.matmul(&Tensor::randn([100], opts)) + 0.3;
    x.write_npy(dir.join("linreg_X.npy")).expect("npy");
    y.write_npy(dir.join("linreg_y.npy")).expect("npy");
    let data = dir.to_str().expect("utf-8 path");
    for (workload, field) in [
        ("covtype_hmc", "\"ms_per_leapfrog\""),
        ("covtype_nuts", "\"leapfrog_per_draw\""),
        ("big_linreg_svi", "\"ms_per_step\""),
    ] {
        let out = Command::new(example("gpu_bench"))
            .args([
                "--workload",
                workload,
                "--data",
                data,
                "--warmup",
                "5",
                "--samples",
                "5",
            ])
            .args(["--warm", "2", "--steps", "5"])
            .output()
            .expect("run gpu_bench");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(field) && text.contains("\"N\": "),
            "{workload}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
