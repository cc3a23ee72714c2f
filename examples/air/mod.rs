//! Attend-Infer-Repeat (Eslami et al. 2016) on multi-digit images, after Pyro's `examples/air`.
//!
//! - [`data`]: the offline multi-digit data set (`data/multi_digits.bin`, written by
//!   `make_data.py`) and a loader for real MNIST IDX files that composes canvases the same way;
//! - [`image`]: the spatial transformers (`window_to_image`, `image_to_window`) and PNG output;
//! - [`nets`]: the networks (MLPs, an LSTM cell), each in its own `VarStore`;
//! - [`model`] and [`guide`]: the generative model and the recurrent inference network;
//! - [`train`]: the optimizer with per-param learning rates, the loss, count accuracy.

pub mod data;
pub mod guide;
pub mod image;
pub mod model;
pub mod nets;
pub mod train;

pub use guide::Latents;
pub use nets::{Air, AirConfig};
