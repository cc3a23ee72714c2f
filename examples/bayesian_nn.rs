//! A Bayesian neural network (Pyro's `PyroModule` + `PyroSample` + `AutoNormal` tutorials): an
//! MLP whose weights and biases all have `Normal(0, 1)` priors, fitted by SVI with `AutoNormal`
//! to a 1-D regression with a gap in the data. `Predictive` gives the posterior predictive mean
//! and 90% band, which widen in the gap, where the data say nothing.
//!
//!     cargo run --release --example bayesian_nn -- [--steps 4000] [--out bayesian_nn.png]
//!
//! Prints the band's mean width inside the data and in the gap, and writes a PNG: the band
//! (gray), the predictive mean (black) and the data (dots).

use ppl::infer::{AutoNormal, Predictive};
use ppl::nn::{Parametrized, PyroModule};
use ppl::prelude::*;
use ppl::tch::nn::{self, Module};

#[derive(Debug, Parametrized)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).tanh())
    }
}

/// y = f(x) + noise, with the network's output as f and a learned noise scale.
#[model]
fn bnn(net: &PyroModule<Mlp>, x: &Tensor, y: Option<&Tensor>) -> ppl::Result<()> {
    let f = net.call(|m| m.forward(x))?.squeeze_dim(-1);
    let sigma = sample!(HalfNormal::new(0.5)?);
    let _data = plate!("data", x.size()[0]);
    let f = deterministic("f", &f, 0)?;
    sample!("obs", Normal::new(&f, &sigma)?, obs = y);
    Ok(())
}

/// x in [-3, -1] ∪ [1, 3] (the gap is (-1, 1)), y = sin(x) + x / 3 + N(0, 0.1²).
fn data(n: i64) -> (Tensor, Tensor) {
    let u = Tensor::rand([n], (Kind::Float, Device::Cpu)) * 2.0 + 1.0;
    let side = (Tensor::rand([n], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float)
        * 2.0)
        - 1.0;
    let x = u * side;
    let y = x.sin() + &x / 3.0 + Tensor::randn([n], (Kind::Float, Device::Cpu)) * 0.1;
    (x.unsqueeze(-1), y)
}

fn main() -> ppl::Result<()> {
    let steps: usize = ppl_examples::arg("steps", 4000);
    let out: String = ppl_examples::arg("out", "bayesian_nn.png".to_string());
    set_rng_seed(0);
    clear_param_store();
    let (x, y) = data(80);
    let vs = nn::VarStore::new(Device::Cpu);
    let mlp = Mlp {
        fc1: nn::linear(vs.root() / "fc1", 1, 32, Default::default()),
        fc2: nn::linear(vs.root() / "fc2", 32, 1, Default::default()),
    };
    // Every weight and bias ~ Normal(0, 1): sites "fc1.weight", "fc1.bias", "fc2.weight", ...
    let net = PyroModule::new("", mlp).normal_priors(1.0);
    let guide = AutoNormal::new(|| bnn(&net, &x, Some(&y))).init_scale(0.01);
    let adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let mut svi = Svi::new(
        || bnn(&net, &x, Some(&y)),
        || guide.call(),
        adam,
        TraceElbo::default(),
    );
    for step in 0..steps {
        let loss = svi.step()?;
        if step % 1000 == 0 || step + 1 == steps {
            println!("step {step:>5}  loss {loss:>9.3}");
        }
    }

    // The posterior predictive of f on a grid.
    let grid = Tensor::linspace(-4.0, 4.0, 161, (Kind::Float, Device::Cpu)).unsqueeze(-1);
    let pred = Predictive::with_guide(|| bnn(&net, &grid, None), || guide.call(), 400)
        .return_sites(&["f"])
        .run()?;
    let f = &pred["f"]; // [400, 161]
    let q = Tensor::from_slice(&[0.05f32, 0.5, 0.95]);
    let qs = f.quantile(&q, 0, false, "linear"); // [3, 161]
    let (lo, mid, hi) = (qs.get(0), qs.get(1), qs.get(2));
    let width = &hi - &lo;
    let xs: Vec<f32> = Vec::try_from(grid.squeeze_dim(-1))?;
    let w: Vec<f32> = Vec::try_from(&width)?;
    let mean_width = |keep: &dyn Fn(f32) -> bool| {
        let v: Vec<f32> = xs
            .iter()
            .zip(&w)
            .filter(|(x, _)| keep(**x))
            .map(|(_, w)| *w)
            .collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    let in_data = mean_width(&|x| (1.0..=3.0).contains(&x.abs()));
    let in_gap = mean_width(&|x| x.abs() < 0.6);
    println!(
        "90% band width: {in_data:.3} where there are data, {in_gap:.3} in the gap (x in [-0.6, 0.6])"
    );
    plot(&out, &grid, &lo, &mid, &hi, &x, &y)?;
    println!("wrote {out}");
    Ok(())
}

/// Draws the band, the median line and the data points into a grayscale PNG.
fn plot(
    path: &str,
    grid: &Tensor,
    lo: &Tensor,
    mid: &Tensor,
    hi: &Tensor,
    x: &Tensor,
    y: &Tensor,
) -> ppl::Result<()> {
    let (w, h) = (640usize, 360usize);
    let (x0, x1, y0, y1) = (-4.0f32, 4.0f32, -3.0f32, 3.0f32);
    let px = |v: f32| (((v - x0) / (x1 - x0)) * (w as f32 - 1.0)).round() as i64;
    let py = |v: f32| (((y1 - v) / (y1 - y0)) * (h as f32 - 1.0)).round() as i64;
    let mut img = vec![255u8; w * h];
    let mut put = |c: i64, r: i64, v: u8| {
        if (0..w as i64).contains(&c) && (0..h as i64).contains(&r) {
            img[r as usize * w + c as usize] = v;
        }
    };
    let gx: Vec<f32> = Vec::try_from(grid.squeeze_dim(-1))?;
    let (lo, mid, hi): (Vec<f32>, Vec<f32>, Vec<f32>) =
        (Vec::try_from(lo)?, Vec::try_from(mid)?, Vec::try_from(hi)?);
    for c in 0..w as i64 {
        // Interpolate the band at this column.
        let xv = x0 + (x1 - x0) * c as f32 / (w as f32 - 1.0);
        let k = gx
            .iter()
            .position(|&g| g >= xv)
            .unwrap_or(gx.len() - 1)
            .max(1);
        let t = ((xv - gx[k - 1]) / (gx[k] - gx[k - 1])).clamp(0.0, 1.0);
        let at = |v: &[f32]| v[k - 1] + t * (v[k] - v[k - 1]);
        for r in py(at(&hi))..=py(at(&lo)) {
            put(c, r, 200);
        }
        for d in -1..=1 {
            put(c, py(at(&mid)) + d, 0);
        }
    }
    let (xd, yd): (Vec<f32>, Vec<f32>) = (Vec::try_from(x.squeeze_dim(-1))?, Vec::try_from(y)?);
    for (a, b) in xd.iter().zip(&yd) {
        for dc in -2..=2 {
            for dr in -2..=2 {
                if dc * dc + dr * dr <= 4 {
                    put(px(*a) + dc, py(*b) + dr, 90);
                }
            }
        }
    }
    ppl_examples::write_gray_png(path, w, h, &img)
}
