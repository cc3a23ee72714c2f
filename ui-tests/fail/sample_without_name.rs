use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<()> {
    sample!(Normal::new(0.0, 1.0)?);
    Ok(())
}

fn main() {}
