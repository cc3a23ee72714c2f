//! Neural networks in models (Pyro's `pyro.nn`): Bayesian modules ([`PyroModule`], over any
//! [`Parametrized`] struct of `tch::nn` layers), and networks whose weights are params in the
//! param store: [`DenseNN`] and the masked autoregressive [`AutoRegressiveNN`] (MADE, Germain et
//! al. 2015), the conditioners of the learnable flows in [`crate::transforms`].
//!
//! A network is a description (name, sizes, masks); [`DenseNN::bind`] reads its weights through
//! [`param`](crate::primitives::param), so that SVI sees and trains them like any other param,
//! and returns an [`Mlp`] holding the current tensors. Weights are created on first use with
//! torch's `nn.Linear` initialization (uniform in `±1/sqrt(fan_in)`), in the dtype and on the
//! device the caller asks for. Param names follow Pyro's module paths:
//! `{name}.layers.{i}.weight` and `{name}.layers.{i}.bias`.

use tch::{Device, Kind, Tensor};

mod module;

pub use module::{join, Parametrized, PyroModule, PyroSite};
/// `#[derive(Parametrized)]` (see the trait).
pub use ppl_macros::Parametrized;

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::primitives::param;

/// A dtype and device for new weights.
pub type Options = (Kind, Device);

/// A network with its weights read: linear layers with ReLU between them, the output split
/// into the param groups.
#[derive(Debug)]
pub struct Mlp {
    /// `(weight [out, in], bias [out])` per layer; masked weights already multiplied by their
    /// masks.
    layers: Vec<(Tensor, Tensor)>,
    /// How the last layer's outputs are split.
    split: Split,
}

#[derive(Clone, Debug)]
enum Split {
    /// Consecutive groups of these sizes along the last dim (DenseNN).
    Groups(Vec<i64>),
    /// `count` groups of `input_dim` each, group-major (AutoRegressiveNN).
    PerInput { count: i64, input_dim: i64 },
}

impl Mlp {
    /// The network's outputs for inputs `x` (`[..., in]`), one tensor per param group.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = x.shallow_clone();
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.f_linear(w, Some(b))?;
            if i < last {
                h = h.f_relu()?;
            }
        }
        match &self.split {
            Split::Groups(g) if g.len() == 1 => Ok(vec![h]),
            Split::Groups(g) => Ok(h.f_split_with_sizes(g.as_slice(), -1)?),
            Split::PerInput { count, input_dim } if *count == 1 => {
                let _ = input_dim;
                Ok(vec![h])
            }
            Split::PerInput { count, input_dim } => {
                let mut shape = h.size();
                shape.pop();
                shape.extend([*count, *input_dim]);
                let h = h.f_reshape(shape.as_slice())?;
                Ok((0..*count)
                    .map(|k| h.f_select(-2, k))
                    .collect::<std::result::Result<_, _>>()?)
            }
        }
    }
}

/// Reads (creating on first use) the weight and bias of the linear layer `{name}.layers.{i}`.
fn linear(
    name: &str,
    i: usize,
    fan_in: i64,
    fan_out: i64,
    opts: Options,
) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let uniform = move |shape: Vec<i64>| -> Result<Tensor> {
        Ok(Tensor::f_rand(shape.as_slice(), opts)?
            .f_mul_scalar(2.0 * bound)?
            .f_sub_scalar(bound)?)
    };
    let w = param(
        format!("{name}.layers.{i}.weight"),
        Some(|| uniform(vec![fan_out, fan_in])),
        Constraint::Real,
        None,
    )?;
    let b = param(
        format!("{name}.layers.{i}.bias"),
        Some(|| uniform(vec![fan_out])),
        Constraint::Real,
        None,
    )?;
    if w.size() != [fan_out, fan_in] || b.size() != [fan_out] {
        return Err(Error::Shape(format!(
            "param `{name}.layers.{i}` holds a weight of shape {:?} and a bias of shape {:?}, but \
             this network needs [{fan_out}, {fan_in}] and [{fan_out}] (two networks of different \
             sizes under one name?)",
            w.size(),
            b.size()
        )));
    }
    Ok((w, b))
}

fn check_dims(what: &str, input_dim: i64, hidden_dims: &[i64]) -> Result<()> {
    if input_dim < 1 || hidden_dims.iter().any(|&h| h < 1) {
        return Err(Error::Config(format!(
            "{what}: input_dim ({input_dim}) and every hidden dim ({hidden_dims:?}) must be at \
             least 1"
        )));
    }
    Ok(())
}

/// A fully connected network with ReLU hidden layers whose output is split into param groups
/// (Pyro's `DenseNN`): `DenseNN::new("hypernet", 1, &[16], &[1, 1])` maps `[..., 1]` to a pair
/// of `[..., 1]` tensors.
#[derive(Clone, Debug)]
pub struct DenseNN {
    name: String,
    input_dim: i64,
    hidden_dims: Vec<i64>,
    param_dims: Vec<i64>,
}

impl DenseNN {
    /// The network `name` from `input_dim` inputs through `hidden_dims` to outputs of sizes
    /// `param_dims`.
    pub fn new(
        name: impl Into<String>,
        input_dim: i64,
        hidden_dims: &[i64],
        param_dims: &[i64],
    ) -> Result<DenseNN> {
        check_dims("DenseNN", input_dim, hidden_dims)?;
        if param_dims.is_empty() || param_dims.iter().any(|&p| p < 1) {
            return Err(Error::Config(format!(
                "DenseNN: param_dims must be nonempty sizes of at least 1, got {param_dims:?}"
            )));
        }
        Ok(DenseNN {
            name: name.into(),
            input_dim,
            hidden_dims: hidden_dims.to_vec(),
            param_dims: param_dims.to_vec(),
        })
    }

    /// The network at its params' current values (weights created in `opts` on first use).
    pub fn bind(&self, opts: Options) -> Result<Mlp> {
        let mut dims = vec![self.input_dim];
        dims.extend(&self.hidden_dims);
        dims.push(self.param_dims.iter().sum());
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(&self.name, i, w[0], w[1], opts))
            .collect::<Result<_>>()?;
        Ok(Mlp {
            layers,
            split: Split::Groups(self.param_dims.clone()),
        })
    }
}

/// A masked autoregressive network (MADE; Pyro's `AutoRegressiveNN`): for inputs `x` of
/// `input_dim` values it returns `count_params` tensors of `input_dim` values each, where output
/// `i` depends only on the inputs before `i` in the network's order ([`AutoRegressiveNN::permutation`]).
///
/// The masks are Pyro's (`create_mask` with evenly spaced hidden degrees): input `i` has degree
/// `1 + (its position in the order)`, hidden unit `k` of a layer of `h` has degree
/// `round(1 + k (input_dim - 2) / (h - 1))`, and a unit connects to a unit below of degree at
/// most its own (hidden) or strictly less than its own (outputs). By default the order is a
/// random permutation drawn from ppl's generator ([`crate::primitives::with_rng`]), as Pyro draws
/// one from torch's.
#[derive(Clone, Debug)]
pub struct AutoRegressiveNN {
    name: String,
    input_dim: i64,
    hidden_dims: Vec<i64>,
    count_params: i64,
    permutation: Vec<i64>,
}

impl AutoRegressiveNN {
    /// The network `name` with `count_params` outputs per input (2 for an affine flow: loc and
    /// log-scale), with a random order.
    pub fn new(
        name: impl Into<String>,
        input_dim: i64,
        hidden_dims: &[i64],
        count_params: i64,
    ) -> Result<AutoRegressiveNN> {
        use rand::seq::SliceRandom;
        check_dims("AutoRegressiveNN", input_dim, hidden_dims)?;
        if count_params < 1 {
            return Err(Error::Config(format!(
                "AutoRegressiveNN: count_params must be at least 1, got {count_params}"
            )));
        }
        let mut permutation: Vec<i64> = (0..input_dim).collect();
        crate::primitives::with_rng(|r| permutation.shuffle(r));
        Ok(AutoRegressiveNN {
            name: name.into(),
            input_dim,
            hidden_dims: hidden_dims.to_vec(),
            count_params,
            permutation,
        })
    }

    /// The order of the inputs: `permutation[k]` is the input with degree `k + 1` (the first one
    /// depends on nothing). Errors unless it is a permutation of `0..input_dim`.
    pub fn with_permutation(mut self, permutation: Vec<i64>) -> Result<AutoRegressiveNN> {
        let mut sorted = permutation.clone();
        sorted.sort_unstable();
        if sorted != (0..self.input_dim).collect::<Vec<_>>() {
            return Err(Error::Config(format!(
                "AutoRegressiveNN `{}`: {permutation:?} is not a permutation of 0..{}",
                self.name, self.input_dim
            )));
        }
        self.permutation = permutation;
        Ok(self)
    }

    /// The order of the inputs (see [`AutoRegressiveNN::with_permutation`]).
    pub fn permutation(&self) -> &[i64] {
        &self.permutation
    }

    /// The number of inputs.
    pub fn input_dim(&self) -> i64 {
        self.input_dim
    }

    /// The masks, one `[out, in]` matrix of 0/1 per layer.
    pub fn masks(&self) -> Vec<Vec<Vec<f64>>> {
        let d = self.input_dim as usize;
        let mut degree_in = vec![0f64; d];
        for (pos, &i) in self.permutation.iter().enumerate() {
            degree_in[i as usize] = 1.0 + pos as f64;
        }
        // Pyro: torch.round(torch.linspace(1, input_dim - 1, steps=h)).
        let hidden: Vec<Vec<f64>> = self
            .hidden_dims
            .iter()
            .map(|&h| {
                let hi = (self.input_dim - 1).max(1) as f64;
                (0..h)
                    .map(|k| {
                        let t = if h == 1 {
                            0.0
                        } else {
                            k as f64 / (h - 1) as f64
                        };
                        round_half_even(1.0 + t * (hi - 1.0))
                    })
                    .collect()
            })
            .collect();
        let degree_out: Vec<f64> = (0..self.count_params)
            .flat_map(|_| degree_in.iter().copied())
            .collect();
        let mut masks = Vec::with_capacity(hidden.len() + 1);
        let mut below = &degree_in;
        for h in &hidden {
            masks.push(
                h.iter()
                    .map(|&dh| {
                        below
                            .iter()
                            .map(|&db| f64::from(u8::from(dh >= db)))
                            .collect()
                    })
                    .collect(),
            );
            below = h;
        }
        masks.push(
            degree_out
                .iter()
                .map(|&dout| {
                    below
                        .iter()
                        .map(|&db| f64::from(u8::from(dout > db)))
                        .collect()
                })
                .collect(),
        );
        masks
    }

    /// The network at its params' current values, weights multiplied by their masks.
    pub fn bind(&self, opts: Options) -> Result<Mlp> {
        let mut dims = vec![self.input_dim];
        dims.extend(&self.hidden_dims);
        dims.push(self.input_dim * self.count_params);
        let masks = self.masks();
        let layers = dims
            .windows(2)
            .zip(&masks)
            .enumerate()
            .map(|(i, (w, m))| {
                let (weight, bias) = linear(&self.name, i, w[0], w[1], opts)?;
                let flat: Vec<f64> = m.iter().flatten().copied().collect();
                let mask = Tensor::f_from_slice(&flat)?
                    .f_reshape([w[1], w[0]])?
                    .f_to_kind(opts.0)?
                    .f_to_device(opts.1)?;
                Ok((weight.f_mul(&mask)?, bias))
            })
            .collect::<Result<_>>()?;
        Ok(Mlp {
            layers,
            split: Split::PerInput {
                count: self.count_params,
                input_dim: self.input_dim,
            },
        })
    }
}

/// Rounds halves to even, as `torch.round` does.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_degrees_are_pyros() {
        // torch.round(torch.linspace(1, 4, steps=6)) = [1, 2, 2, 3, 3, 4]:
        // linspace gives 1, 1.6, 2.2, 2.8, 3.4, 4.
        let arn = AutoRegressiveNN::new("a", 5, &[6], 2)
            .and_then(|a| a.with_permutation(vec![0, 1, 2, 3, 4]))
            .expect("arn");
        let m = arn.masks();
        let hidden_degree: Vec<f64> = m[0].iter().map(|row| row.iter().sum()).collect();
        assert_eq!(hidden_degree, vec![1.0, 2.0, 2.0, 3.0, 3.0, 4.0]);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        // Output 0 (degree 1) sees nothing; output 4 (degree 5) sees every hidden unit.
        assert_eq!(m[1][0].iter().sum::<f64>(), 0.0);
        assert_eq!(m[1][4].iter().sum::<f64>(), 6.0);
        assert_eq!(m[1].len(), 10);
    }
}
