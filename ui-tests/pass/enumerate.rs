use ppl::prelude::*;

#[model]
fn model() -> ppl::Result<()> {
    let _a = sample!(Bernoulli::new(0.3)?, enumerate = parallel);
    let _b = sample!(Bernoulli::new(0.3)?, enumerate = sequential, expand = true);
    let _c = sample!(
        Bernoulli::new(0.3)?,
        infer = ppl::poutine::InferConfig::default(),
        enumerate = parallel
    );
    Ok(())
}

fn main() {
    let _ = model();
}
