//! Smoke test of the AIR example: a few training steps on tiny images, and the data loaders.

use ppl::prelude::*;
use ppl_examples::air::{data, image, train, Air, AirConfig};

fn tiny_config() -> AirConfig {
    AirConfig {
        x_size: 16,
        window_size: 8,
        z_what_size: 5,
        rnn_hidden_size: 16,
        encoder_net: vec![16],
        decoder_net: vec![16],
        predict_net: vec![16],
        bl_predict_net: vec![16],
        ..AirConfig::default()
    }
}

#[test]
fn air_trains_a_few_steps_with_finite_loss() -> ppl::Result<()> {
    clear_param_store();
    set_rng_seed(0);
    let digits = Tensor::rand([4, 6, 6], (Kind::Float, Device::Cpu));
    let set = data::compose(&digits, 8, 16, 2, 1);
    assert_eq!(set.images.size(), [8, 16, 16]);
    let air = Air::new(tiny_config(), Device::Cpu);
    let mut adam = train::optimizer(1e-4, 1e-3, 1e-4);
    let mut elbo = train::loss();
    for _ in 0..3 {
        let loss = train::step(&air, &set.images, 4, &mut elbo, &mut adam)?;
        assert!(loss.is_finite(), "loss {loss}");
    }
    // The optimizer saw the networks' params, with the baseline's under its own prefix.
    let names = with_param_store(|ps| ps.names().map(str::to_string).collect::<Vec<_>>());
    assert!(
        names.iter().any(|n| n.starts_with("baseline.")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("decode.")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("guide.")), "{names:?}");

    let z = air.guide(&set.images, None)?;
    assert_eq!(z.z_pres.len(), 3);
    assert_eq!(z.z_pres[0].size(), [8, 1]);
    assert_eq!(z.z_where[0].size(), [8, 3]);
    assert_eq!(z.z_what[0].size(), [8, 5]);
    assert_eq!(air.reconstruct(&z).size(), [8, 16, 16]);
    let (acc, confusion) = train::count_accuracy(&air, &set, 3)?;
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 8);

    let dir = std::env::temp_dir().join(format!("air_smoke_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let png = dir.join("viz.png");
    train::visualize(&air, &set, &png)?;
    assert!(std::fs::read(&png).expect("png").starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn spatial_transformers_round_trip_at_unit_scale() {
    // At scale 1 and no shift the window is the whole image (same size): both maps are the
    // identity.
    let img = Tensor::rand([2, 8, 8], (Kind::Float, Device::Cpu));
    let z_where = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0]).view([2, 3]);
    let w = image::image_to_window(&z_where, 8, 8, &img);
    assert!(w.view([2, 8, 8]).allclose(&img, 1e-5, 1e-5, false));
    let back = image::window_to_image(&z_where, 8, 8, &w);
    assert!(back.allclose(&img, 1e-5, 1e-5, false));
    // At scale 2 an 8×8 window covers the middle half of a 16×16 image.
    let z2 = Tensor::from_slice(&[2.0f32, 0.0, 0.0]).view([1, 3]);
    let win = Tensor::ones([1, 64], (Kind::Float, Device::Cpu));
    let placed = image::window_to_image(&z2, 8, 16, &win);
    assert!(placed.double_value(&[0, 8, 8]) > 0.99);
    assert!(placed.double_value(&[0, 0, 0]) < 1e-6);
}

#[test]
fn loaders_read_aird_and_idx_files() {
    let dir = std::env::temp_dir().join(format!("air_idx_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A tiny IDX file of three 4×4 "digits".
    let mut idx = vec![0u8, 0, 0x08, 3];
    for d in [3u32, 4, 4] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend((0..48).map(|i| (i * 5) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), &idx).expect("write idx");
    let (dims, px) = data::read_idx_u8(dir.join("train-images-idx3-ubyte")).expect("idx");
    assert_eq!(dims, [3, 4, 4]);
    assert_eq!(px[47], 235);
    let set = data::load_mnist_multi(&dir, 10, 0).expect("compose");
    assert_eq!(set.images.size(), [10, 50, 50]);
    assert_eq!(set.counts.size(), [10]);
    let max = set.images.max().double_value(&[]);
    assert!((0.0..=1.0).contains(&max));
    // Canvases with no digit are blank, others are not.
    for i in 0..10 {
        let sum = set.images.get(i).sum(Kind::Float).double_value(&[]);
        assert_eq!(sum > 0.0, set.counts.double_value(&[i]) > 0.0, "image {i}");
    }
    // A short truncated file is an error.
    std::fs::write(dir.join("bad"), &idx[..20]).expect("write");
    assert!(data::read_idx_u8(dir.join("bad")).is_err());
    std::fs::remove_dir_all(&dir).ok();

    // The shipped data set.
    let all = data::load_multi_digits(data::default_path()).expect("shipped data");
    assert_eq!(all.images.size(), [5000, 50, 50]);
    let counts = all.counts.to_kind(Kind::Int64).bincount(None::<Tensor>, 3);
    assert_eq!(counts.size(), [3]);
    assert_eq!(counts.sum(Kind::Int64).int64_value(&[]), 5000);
}
