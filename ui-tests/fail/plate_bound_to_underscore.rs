use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<()> {
    let _ = plate!("data", 3);
    Ok(())
}

fn main() {}
