use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<Tensor> {
    Ok(param!(Tensor::from(1.0f32)) * 2.0)
}

fn main() {}
