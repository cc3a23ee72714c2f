use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<Tensor> {
    let scale = param!(Tensor::from(1.0f32), constraint = postive);
    Ok(scale)
}

fn main() {}
