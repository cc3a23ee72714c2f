//! The networks of AIR, each in its own `VarStore` so that it is registered with
//! [`ppl::module`] under its own prefix.

use ppl::tch::nn::{self, Module};
use ppl::tch::{Device, Kind, Tensor};

/// Sizes and prior settings (defaults: Pyro's AIR tutorial, with a 20×20 window).
#[derive(Clone, Debug)]
pub struct AirConfig {
    /// Steps (the most objects per image).
    pub num_steps: usize,
    /// Canvas side in pixels.
    pub x_size: i64,
    /// Attention window side in pixels.
    pub window_size: i64,
    /// Size of `z_what`.
    pub z_what_size: i64,
    /// LSTM hidden size.
    pub rnn_hidden_size: i64,
    /// Encoder hidden layers.
    pub encoder_net: Vec<i64>,
    /// Decoder hidden layers.
    pub decoder_net: Vec<i64>,
    /// Predict-net hidden layers.
    pub predict_net: Vec<i64>,
    /// Baseline predict-net hidden layers.
    pub bl_predict_net: Vec<i64>,
    /// Added to the decoder's output before the sigmoid.
    pub decoder_output_bias: f64,
    /// Prior success probability of each `z_pres` step (before the truncated-geometric
    /// correction of [`make_prior`] when `z_pres_prior_raw` is false).
    pub z_pres_prior: f64,
    /// Use `z_pres_prior` as is at every step.
    pub z_pres_prior_raw: bool,
    /// Prior mean of the window scale.
    pub scale_prior_mean: f64,
    /// Prior sd of the window scale.
    pub scale_prior_sd: f64,
    /// Prior sd of the window position.
    pub pos_prior_sd: f64,
    /// Pixel noise sd of the likelihood.
    pub likelihood_sd: f64,
    /// Multiplies the baseline network's output.
    pub baseline_scalar: Option<f64>,
}

impl Default for AirConfig {
    fn default() -> Self {
        AirConfig {
            num_steps: 3,
            x_size: 50,
            window_size: 20,
            z_what_size: 50,
            rnn_hidden_size: 256,
            encoder_net: vec![200],
            decoder_net: vec![200],
            predict_net: vec![200],
            bl_predict_net: vec![200],
            decoder_output_bias: -2.0,
            z_pres_prior: 0.01,
            z_pres_prior_raw: false,
            scale_prior_mean: 3.0,
            scale_prior_sd: 0.2,
            pos_prior_sd: 1.0,
            likelihood_sd: 0.3,
            baseline_scalar: None,
        }
    }
}

/// Pyro's `make_prior(k)`: per-step success probabilities of a truncated geometric prior on the
/// number of objects (a constant log-probability difference between `n` and `n + 1` objects).
pub fn make_prior(k: f64) -> [f64; 3] {
    let u = 1.0 / (1.0 + k + k * k + k * k * k);
    let p0 = 1.0 - u;
    let p1 = 1.0 - (k * u) / p0;
    let p2 = 1.0 - (k * k * u) / (p0 * p1);
    [p0, p1, p2]
}

/// A multi-layer perceptron: Linear, ReLU, ..., Linear, initialized like torch's `nn.Linear`.
pub fn mlp(p: nn::Path, input: i64, sizes: &[i64]) -> nn::Sequential {
    let mut seq = nn::seq();
    let mut i = input;
    for (k, &o) in sizes.iter().enumerate() {
        // torch's `nn.Linear` initialization (weights and bias uniform in ±1/√fan_in), as
        // Pyro's AIR networks get; tch's default Kaiming-uniform weights are √6 ≈ 2.45 times
        // wider, which starts the decoder with noisy windows that push `z_pres` to zero.
        let bound = 1.0 / (i as f64).sqrt();
        let cfg = nn::LinearConfig {
            ws_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            ..Default::default()
        };
        seq = seq.add(nn::linear(&p / format!("l{k}"), i, o, cfg));
        if k + 1 < sizes.len() {
            seq = seq.add_fn(|x| x.relu());
        }
        i = o;
    }
    seq
}

/// An LSTM cell (torch's `nn.LSTMCell`, with its initialization).
#[derive(Debug)]
pub struct LstmCell {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
}

impl LstmCell {
    /// A cell from `input` to `hidden` units.
    pub fn new(p: nn::Path, input: i64, hidden: i64) -> LstmCell {
        let k = 1.0 / (hidden as f64).sqrt();
        let init = nn::Init::Uniform { lo: -k, up: k };
        LstmCell {
            w_ih: p.var("w_ih", &[4 * hidden, input], init),
            w_hh: p.var("w_hh", &[4 * hidden, hidden], init),
            b_ih: p.var("b_ih", &[4 * hidden], init),
            b_hh: p.var("b_hh", &[4 * hidden], init),
        }
    }

    /// One step: `(h, c)` from the input and the previous `(h, c)`.
    pub fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        x.lstm_cell(
            &[h, c],
            &self.w_ih,
            &self.w_hh,
            Some(&self.b_ih),
            Some(&self.b_hh),
        )
    }
}

/// All of AIR's networks and learned initial states.
pub struct Air {
    /// Settings.
    pub cfg: AirConfig,
    /// The device of every variable.
    pub device: Device,
    /// The decoder (model), registered as `decode`.
    pub decode_vs: nn::VarStore,
    /// The guide's networks (`rnn`, `predict`, `encode`, initial states), registered as `guide`.
    pub guide_vs: nn::VarStore,
    /// The baseline networks (`rnn`, `predict`, initial states), registered as `baseline`.
    pub baseline_vs: nn::VarStore,
    decoder: nn::Sequential,
    pub(crate) rnn: LstmCell,
    pub(crate) predict: nn::Sequential,
    pub(crate) encoder: nn::Sequential,
    pub(crate) bl_rnn: LstmCell,
    pub(crate) bl_predict: nn::Sequential,
    pub(crate) h_init: Tensor,
    pub(crate) c_init: Tensor,
    pub(crate) z_where_init: Tensor,
    pub(crate) z_what_init: Tensor,
    pub(crate) bl_h_init: Tensor,
    pub(crate) bl_c_init: Tensor,
}

impl Air {
    /// Fresh networks on `device`.
    pub fn new(cfg: AirConfig, device: Device) -> Air {
        let decode_vs = nn::VarStore::new(device);
        let guide_vs = nn::VarStore::new(device);
        let baseline_vs = nn::VarStore::new(device);
        let w2 = cfg.window_size * cfg.window_size;
        let x2 = cfg.x_size * cfg.x_size;
        let hidden = cfg.rnn_hidden_size;
        let rnn_input = x2 + 3 + cfg.z_what_size + 1;

        let mut dec_sizes = cfg.decoder_net.clone();
        dec_sizes.push(w2);
        let decoder = mlp(decode_vs.root() / "mlp", cfg.z_what_size, &dec_sizes);

        let g = guide_vs.root();
        let rnn = LstmCell::new(&g / "rnn", rnn_input, hidden);
        let mut pred_sizes = cfg.predict_net.clone();
        pred_sizes.push(1 + 2 * 3);
        let predict = mlp(&g / "predict", hidden, &pred_sizes);
        let mut enc_sizes = cfg.encoder_net.clone();
        enc_sizes.push(2 * cfg.z_what_size);
        let encoder = mlp(&g / "encode", w2, &enc_sizes);
        let h_init = g.zeros("h_init", &[1, hidden]);
        let c_init = g.zeros("c_init", &[1, hidden]);
        let z_where_init = g.zeros("z_where_init", &[1, 3]);
        let z_what_init = g.zeros("z_what_init", &[1, cfg.z_what_size]);

        let b = baseline_vs.root();
        let bl_rnn = LstmCell::new(&b / "rnn", rnn_input, hidden);
        let mut bl_sizes = cfg.bl_predict_net.clone();
        bl_sizes.push(1);
        let bl_predict = mlp(&b / "predict", hidden, &bl_sizes);
        let bl_h_init = b.zeros("h_init", &[1, hidden]);
        let bl_c_init = b.zeros("c_init", &[1, hidden]);

        Air {
            cfg,
            device,
            decode_vs,
            guide_vs,
            baseline_vs,
            decoder,
            rnn,
            predict,
            encoder,
            bl_rnn,
            bl_predict,
            h_init,
            c_init,
            z_where_init,
            z_what_init,
            bl_h_init,
            bl_c_init,
        }
    }

    /// The decoder: `z_what` (n, z_what_size) to window pixels (n, window²) in (0, 1).
    pub fn decode(&self, z_what: &Tensor) -> Tensor {
        (self.decoder.forward(z_what) + self.cfg.decoder_output_bias).sigmoid()
    }

    /// The encoder: window pixels to the loc and scale of `z_what`.
    pub fn encode(&self, x_att: &Tensor) -> (Tensor, Tensor) {
        let a = self.encoder.forward(x_att);
        let z = self.cfg.z_what_size;
        (a.narrow(1, 0, z), a.narrow(1, z, z).softplus())
    }

    /// The predict net: `(z_pres_p, z_where_loc, z_where_scale)` from the LSTM state.
    pub fn predict(&self, h: &Tensor) -> (Tensor, Tensor, Tensor) {
        let out = self.predict.forward(h);
        (
            out.narrow(1, 0, 1).sigmoid(),
            out.narrow(1, 1, 3),
            out.narrow(1, 4, 3).softplus(),
        )
    }

    /// The prior's `z_pres` success probability at step `t`.
    pub fn z_pres_prior_p(&self, t: usize) -> f64 {
        if self.cfg.z_pres_prior_raw {
            self.cfg.z_pres_prior
        } else {
            make_prior(self.cfg.z_pres_prior)[t.min(2)]
        }
    }

    /// The prior loc and scale of `z_where`, each of shape (3).
    pub fn z_where_prior(&self) -> (Tensor, Tensor) {
        let opts = (Kind::Float, self.device);
        let c = &self.cfg;
        let loc = Tensor::from_slice(&[c.scale_prior_mean as f32, 0.0, 0.0]).to_device(opts.1);
        let scale = Tensor::from_slice(&[
            c.scale_prior_sd as f32,
            c.pos_prior_sd as f32,
            c.pos_prior_sd as f32,
        ])
        .to_device(opts.1);
        (loc, scale)
    }
}
