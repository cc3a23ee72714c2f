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

#[test]
fn validation_reads_broadcast_scalars_once_and_still_catches_bad_values() {
    let loc = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
    // A bad number broadcast against a vector is caught...
    assert!(Normal::new(&loc, Tensor::from(-1.0f32)).is_err());
    assert!(Normal::new(&loc, -1.0).is_err());
    // ...and so is one bad element in a vector.
    let scale = Tensor::ones([1000], (Kind::Float, Device::Cpu));
    let _ = scale.get(517).fill_(0.0);
    assert!(Normal::new(&loc, &scale).is_err());
    assert!(Normal::new(&loc, Tensor::from(2.0f32)).is_ok());
    // A value broadcast from one number outside the support is caught too.
    let b = Bernoulli::new(0.5).expect("valid");
    let v = Tensor::from(0.5f32).expand([10], false);
    assert!(b.log_prob(&v).is_err());
}
