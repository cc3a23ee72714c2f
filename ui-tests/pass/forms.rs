use ppl::prelude::*;

#[model]
fn model(data: &Tensor, n: i64) -> ppl::Result<Tensor> {
    let loc = sample!(Normal::new(0.0, 1.0)?);
    let scale = param!(Tensor::from(1.0f32), constraint = positive);
    let w = param!("w", Tensor::from(0.5f32), constraint = interval(0.0, 1.0), event_dim = 0);
    let lazy = param!(|| Ok(Tensor::from(2.0f32)));
    sample!("named", Normal::new(&loc, &scale)?);
    sample!("fmt_{n}", Normal::new(&loc, &scale)?);
    let site = String::from("expr_name");
    sample!(site, Normal::new(&w, &lazy)?);
    {
        let _data = plate!("data", data.size()[0]);
        sample!("obs", Normal::new(&loc, &scale)?, obs = data);
    }
    {
        let _sub = plate!("sub", 10, subsample_size = 2, dim = -1, device = Device::Cpu);
        let _masked = sample!(
            Normal::new(0.0, 1.0)?,
            obs_mask = Tensor::from(true),
            obs = Tensor::from(1.0f32)
        );
        let _cfg = sample!(Bernoulli::new(0.5)?, infer = ppl::poutine::InferConfig::default());
    }
    for i in plate!("seq", 3) {
        sample!("x_{i}", Normal::new(0.0, 1.0)?);
    }
    Ok(loc)
}

#[guide]
fn guide(_data: &Tensor, _n: i64) -> ppl::Result<()> {
    let _loc = sample!(Normal::new(0.0, 1.0)?);
    Ok(())
}

fn outside() -> ppl::Result<()> {
    let _p = plate!("p", 2);
    let _z = sample!("z", Normal::new(0.0, 1.0)?);
    let _w = param!("w_out", 1.0);
    let _e = param!("w_out");
    Ok(())
}

fn main() -> ppl::Result<()> {
    let data = Tensor::from_slice(&[0.1f32, 0.2]);
    model(&data, 1)?;
    guide(&data, 1)?;
    outside()
}
