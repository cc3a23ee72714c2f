//! Families given plain-number scales take a shorter `log_prob` path; it must agree with the
//! general one (tensor scales) on shapes and values, for values with fewer, equal and more
//! batch dims than the parameters.

use ppl::prelude::*;

fn assert_same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.size(), b.size());
    let diff = (a - b).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "max diff {diff}");
}

#[test]
fn normal_with_number_scale_matches_tensor_scale() -> ppl::Result<()> {
    let loc = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
    let fast = Normal::new(&loc, 1.7)?;
    let slow = Normal::new(&loc, Tensor::full([3], 1.7, (Kind::Float, Device::Cpu)))?;
    for v in [
        Tensor::from(0.3f32),
        Tensor::from_slice(&[0.1f32, 0.2, 0.3]),
        Tensor::randn([4, 3], (Kind::Float, Device::Cpu)),
    ] {
        assert_same(&fast.log_prob(&v)?, &slow.log_prob(&v)?);
    }
    let e = fast.expand(&[2, 3])?;
    assert_same(
        &e.log_prob(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)))?,
        &slow
            .expand(&[2, 3])?
            .log_prob(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)))?,
    );
    Ok(())
}

#[test]
fn half_cauchy_with_number_scale_matches_tensor_scale() -> ppl::Result<()> {
    let fast = HalfCauchy::new(5.0)?.expand_to(&[3])?;
    let slow = HalfCauchy::new(Tensor::full([3], 5.0, (Kind::Float, Device::Cpu)))?;
    for v in [
        Tensor::from(0.3f32),
        Tensor::from_slice(&[0.1f32, 2.0, 30.0]),
        Tensor::rand([4, 3], (Kind::Float, Device::Cpu)),
    ] {
        assert_same(&fast.log_prob(&v)?, &slow.log_prob(&v)?);
    }
    let scalar = HalfCauchy::new(5.0)?;
    let slow1 = HalfCauchy::new(Tensor::from(5.0f32))?;
    let v = Tensor::from_slice(&[0.5f32, 1.5]);
    assert_same(&scalar.log_prob(&v)?, &slow1.log_prob(&v)?);
    Ok(())
}
