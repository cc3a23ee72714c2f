use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<()> {
    let _data = plate!("data");
    Ok(())
}

fn main() {}
