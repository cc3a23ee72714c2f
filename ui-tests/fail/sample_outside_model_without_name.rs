use ppl::prelude::*;

fn not_a_model() -> ppl::Result<()> {
    let _z = sample!(Normal::new(0.0, 1.0)?);
    Ok(())
}

fn main() {}
