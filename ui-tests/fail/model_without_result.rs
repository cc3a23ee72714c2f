use ppl::prelude::*;

#[model]
fn model() {
    let _z = sample!(Normal::new(0.0, 1.0).unwrap());
}

fn main() {}
