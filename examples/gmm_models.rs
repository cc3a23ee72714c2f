//! The Gaussian mixture of Pyro's GMM tutorial, with `K` components: shared by
//! `examples/gmm.rs`, `examples/gmm_large.rs` and the benchmark (`gmm_enum_svi`).

use ppl::ops::vindex;
use ppl::prelude::*;

/// Weights ~ Dirichlet(0.5), scale ~ LogNormal(0, 2), locs ~ Normal(0, 10) in a `components`
/// plate, and in a `data` plate each point's `assignment` ~ Categorical(weights) (enumerated in
/// parallel), `obs` ~ Normal(locs[assignment], scale).
#[model]
pub fn gmm(data: &Tensor, k: i64) -> ppl::Result<()> {
    let opts = (data.kind(), data.device());
    let weights = sample!(Dirichlet::new(Tensor::full([k], 0.5, opts))?);
    let scale = sample!(LogNormal::new(Tensor::zeros([], opts), 2.0)?);
    let locs = {
        let _c = plate!("components", k);
        sample!("locs", Normal::new(Tensor::zeros([], opts), 10.0)?)
    };
    let _d = plate!("data", data.size()[0]);
    let assignment = sample!(Categorical::new(&weights)?, enumerate = parallel);
    sample!(
        "obs",
        Normal::new(&vindex(&locs, &[Some(&assignment)])?, &scale)?,
        obs = data
    );
    Ok(())
}

/// A tensor's values as a flat `Vec<f64>` (for printing).
pub fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(
        &t.to_kind(Kind::Double)
            .flatten(0, -1)
            .to_device(Device::Cpu),
    )
    .unwrap_or_default()
}
