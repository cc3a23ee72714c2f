use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<()> {
    let _z = sample!(Bernoulli::new(0.3)?, enumerate = paralel);
    Ok(())
}

fn main() {}
