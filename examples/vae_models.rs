//! Pyro's VAE tutorial (`examples/vae/vae.py`), shared by the `vae` example and the `vae_svi`
//! benchmark: an encoder and a decoder MLP (`tch::nn`), registered with the param store through
//! `module`, a model and a guide that take the minibatch as their argument.

use ppl::prelude::*;
use ppl::tch::nn::{self, Module};

/// Pixels per image (8×8 digits; 784 for MNIST).
pub const DIGIT_PIXELS: i64 = 64;

/// A linear layer initialized as torch's `nn.Linear` (weights and biases uniform in
/// `±1/sqrt(fan_in)`; tch's default draws larger weights), so the network starts where Pyro's does.
pub fn torch_linear(p: nn::Path, fan_in: i64, fan_out: i64) -> nn::Linear {
    let b = 1.0 / (fan_in as f64).sqrt();
    let init = nn::Init::Uniform { lo: -b, up: b };
    let config = nn::LinearConfig {
        ws_init: init,
        bs_init: Some(init),
        bias: true,
    };
    nn::linear(p, fan_in, fan_out, config)
}

/// `x -> (z_loc, z_scale)`: one softplus hidden layer, `z_scale = exp(fc22(h))`.
#[derive(Debug)]
pub struct Encoder {
    fc1: nn::Linear,
    fc21: nn::Linear,
    fc22: nn::Linear,
}

impl Encoder {
    /// The layers under `p` (`fc1`, `fc21`, `fc22`), torch's default initialization.
    pub fn new(p: &nn::Path, pixels: i64, z_dim: i64, hidden: i64) -> Encoder {
        Encoder {
            fc1: torch_linear(p / "fc1", pixels, hidden),
            fc21: torch_linear(p / "fc21", hidden, z_dim),
            fc22: torch_linear(p / "fc22", hidden, z_dim),
        }
    }

    /// `(z_loc, z_scale)` for a batch of images.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let h = self.fc1.forward(x).softplus();
        (self.fc21.forward(&h), self.fc22.forward(&h).exp())
    }
}

/// `z -> pixel logits`: one softplus hidden layer (Pyro's tutorial applies a sigmoid and builds
/// `Bernoulli(probs)`; the same model written with logits stays exact where the sigmoid
/// saturates in float32).
#[derive(Debug)]
pub struct Decoder {
    fc1: nn::Linear,
    fc21: nn::Linear,
}

impl Decoder {
    /// The layers under `p` (`fc1`, `fc21`), torch's default initialization.
    pub fn new(p: &nn::Path, pixels: i64, z_dim: i64, hidden: i64) -> Decoder {
        Decoder {
            fc1: torch_linear(p / "fc1", z_dim, hidden),
            fc21: torch_linear(p / "fc21", hidden, pixels),
        }
    }

    /// Pixel logits for a batch of codes.
    pub fn forward(&self, z: &Tensor) -> Tensor {
        self.fc21.forward(&self.fc1.forward(z).softplus())
    }

    /// Pixel probabilities for a batch of codes.
    pub fn probs(&self, z: &Tensor) -> Tensor {
        self.forward(z).sigmoid()
    }
}

/// The encoder and decoder with their variable stores.
#[derive(Debug)]
pub struct Vae {
    /// The encoder's variables (params `encoder.*`).
    pub encoder_vs: nn::VarStore,
    /// The decoder's variables (params `decoder.*`).
    pub decoder_vs: nn::VarStore,
    /// `x -> (z_loc, z_scale)`.
    pub encoder: Encoder,
    /// `z -> pixel probabilities`.
    pub decoder: Decoder,
    /// The size of the code.
    pub z_dim: i64,
}

impl Vae {
    /// A VAE for images of `pixels` pixels, on `device`.
    pub fn new(pixels: i64, z_dim: i64, hidden: i64, device: Device) -> Vae {
        let encoder_vs = nn::VarStore::new(device);
        let decoder_vs = nn::VarStore::new(device);
        let encoder = Encoder::new(&encoder_vs.root(), pixels, z_dim, hidden);
        let decoder = Decoder::new(&decoder_vs.root(), pixels, z_dim, hidden);
        Vae {
            encoder_vs,
            decoder_vs,
            encoder,
            decoder,
            z_dim,
        }
    }

    /// p(z) p(x | z) for a minibatch `x` (`[batch, pixels]`), as Pyro's tutorial writes it.
    pub fn model(&self, x: &Tensor) -> ppl::Result<()> {
        vae_model(self, x)
    }

    /// q(z | x) for a minibatch `x`.
    pub fn guide(&self, x: &Tensor) -> ppl::Result<()> {
        vae_guide(self, x)
    }

    /// Reconstruction probabilities of `x`: encode to the code's mean, decode.
    pub fn reconstruct(&self, x: &Tensor) -> Tensor {
        let _ng = tch::no_grad_guard();
        let (z_loc, _) = self.encoder.forward(x);
        self.decoder.probs(&z_loc)
    }
}

#[model]
fn vae_model(vae: &Vae, x: &Tensor) -> ppl::Result<()> {
    module("decoder", &vae.decoder_vs)?;
    let n = x.size()[0];
    let _data = plate!("data", n);
    let opts = (x.kind(), x.device());
    let z_loc = Tensor::zeros([n, vae.z_dim], opts);
    let z_scale = Tensor::ones([n, vae.z_dim], opts);
    let z = sample!("latent", Normal::new(&z_loc, &z_scale)?.to_event(1)?);
    let logits = vae.decoder.forward(&z);
    sample!(
        "obs",
        Bernoulli::from_logits(&logits)?.to_event(1)?,
        obs = x
    );
    Ok(())
}

#[guide]
fn vae_guide(vae: &Vae, x: &Tensor) -> ppl::Result<()> {
    module("encoder", &vae.encoder_vs)?;
    let _data = plate!("data", x.size()[0]);
    let (z_loc, z_scale) = vae.encoder.forward(x);
    sample!("latent", Normal::new(&z_loc, &z_scale)?.to_event(1)?);
    Ok(())
}

/// `data/digits.csv` (scikit-learn's 8×8 digits, binarized by `scripts/make-digits.py`):
/// `(images [1797, 64] float32, labels [1797] int64)`.
pub fn load_digits() -> (Tensor, Tensor) {
    let (_, rows) = crate::read_numeric_csv("digits.csv");
    let labels: Vec<i64> = rows.iter().map(|r| r[0] as i64).collect();
    let pixels: Vec<f32> = rows
        .iter()
        .flat_map(|r| r[1..].iter().map(|&v| v as f32))
        .collect();
    let n = rows.len() as i64;
    (
        Tensor::from_slice(&pixels).reshape([n, DIGIT_PIXELS]),
        Tensor::from_slice(&labels),
    )
}

/// The benchmark's minibatches (as the peers cut them, `bench/peers/common.py`): the rows in the
/// order of a permutation, cut into batches of `batch`, the last incomplete batch dropped.
pub fn batches(x: &Tensor, order: &[i64], batch: i64) -> Vec<Tensor> {
    let idx = Tensor::from_slice(order);
    let shuffled = x.index_select(0, &idx);
    let n = order.len() as i64 / batch;
    (0..n)
        .map(|i| shuffled.narrow(0, i * batch, batch))
        .collect()
}
