use ppl::prelude::*;

#[model]
fn model(x: &Tensor) -> ppl::Result<()> {
    let _z = sample!(Normal::new(0.0, 1.0)?, observed = x);
    Ok(())
}

fn main() {}
