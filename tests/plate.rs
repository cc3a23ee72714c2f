//! Plates: broadcasting, dims, nesting, sequential iteration and subsampling.

use ppl::prelude::*;

#[model]
fn coin(data: &Tensor) -> ppl::Result<Tensor> {
    let f = sample!(Beta::new(10.0, 10.0)?);
    let _data = plate!("data", data.size()[0]);
    sample!("obs", Bernoulli::new(&f)?, obs = data);
    Ok(f)
}

#[test]
fn vectorized_plate_broadcasts_the_batch_shape() -> ppl::Result<()> {
    let data = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0]);
    let (f, mut tr) = poutine::trace(|| coin(&data))?;
    let obs = tr.site("obs")?;
    assert_eq!(obs.dist()?.batch_shape(), [4]);
    assert_eq!(obs.cond_indep_stack.len(), 1);
    assert_eq!(obs.cond_indep_stack[0].dim, Some(-1));
    let fv = f.double_value(&[]);
    let expected = 3.0 * fv.ln() + (1.0 - fv).ln();
    let lp = tr
        .get_mut("obs")
        .expect("site")
        .compute_log_prob()?
        .sum(Kind::Double)
        .double_value(&[]);
    assert!((lp - expected).abs() < 1e-5);
    Ok(())
}

#[test]
fn mismatched_batch_shape_names_site_plate_and_shapes() {
    let r = poutine::trace(|| {
        let _p = plate!("data", 3);
        let _ = sample!(
            "x",
            Normal::new(Tensor::zeros([4], (Kind::Float, Device::Cpu)), 1.0)?
        );
        Ok(())
    });
    let msg = r.expect_err("shape mismatch").to_string();
    for part in ["`x`", "[4]", "`data`", "size 3", "dim -1"] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
}

#[test]
fn nested_and_explicit_dims() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        let _outer = plate!("outer", 2);
        let inner = plate!("inner", 3);
        assert_eq!(inner.dim(), -2);
        let _ = sample!("z", Normal::new(0.0, 1.0)?);
        Ok(())
    })?;
    assert_eq!(tr.site("z")?.dist()?.batch_shape(), [3, 2]);
    let (_, tr) = poutine::trace(|| {
        let _a = plate!("a", 5, dim = -3);
        let _ = sample!("z", Normal::new(0.0, 1.0)?);
        Ok(())
    })?;
    assert_eq!(tr.site("z")?.dist()?.batch_shape(), [5, 1, 1]);
    // Two plates claiming one dim is an error naming both.
    let r = poutine::trace(|| {
        let _a = plate!("a", 5, dim = -1);
        let _b = plate!("b", 5, dim = -1);
        Ok(())
    });
    let msg = r.expect_err("dim clash").to_string();
    assert!(msg.contains("`b`") && msg.contains("`a`"), "{msg}");
    Ok(())
}

#[model]
fn sequential(data: &Tensor) -> ppl::Result<()> {
    let loc = sample!(Normal::new(0.0, 1.0)?);
    for i in plate!("data", data.size()[0]) {
        sample!("x", Normal::new(&loc, 1.0)?, obs = data.get(i));
    }
    Ok(())
}

#[test]
fn sequential_plate_names_and_frames() -> ppl::Result<()> {
    let data = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
    let (_, tr) = poutine::trace(|| sequential(&data))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["loc", "x", "x__1", "x__2"]);
    let f = &tr.site("x__2")?.cond_indep_stack[0];
    assert_eq!((f.dim, f.counter, &*f.name), (None, 2, "data"));
    assert_eq!(tr.site("x__1")?.value.double_value(&[]), -1.0);
    Ok(())
}

#[model]
fn subsampled(data: &Tensor) -> ppl::Result<Tensor> {
    let loc = sample!(Normal::new(0.0, 1.0)?);
    let batch = plate!("data", data.size()[0], subsample_size = 4);
    let x = data.index_select(0, batch.indices());
    sample!("x", Normal::new(&loc, 1.0)?, obs = &x);
    Ok(batch.indices().shallow_clone())
}

#[test]
fn subsampling_scales_log_probs_and_replay_reuses_indices() -> ppl::Result<()> {
    set_rng_seed(0);
    let data = Tensor::arange(20, (Kind::Float, Device::Cpu)) / 10.0;
    let (idx, mut tr) = poutine::trace(|| subsampled(&data))?;
    assert_eq!(idx.size(), [4]);
    let site = tr.site("x")?;
    assert_eq!(site.scale, 5.0);
    assert!(!tr.site("data")?.is_scored());
    // The scaled log-density is 20/4 times the unscaled one.
    let s = tr.get_mut("x").expect("site");
    let lp = s.compute_log_prob()?.sum(Kind::Double).double_value(&[]);
    let raw = s
        .unscaled_log_prob
        .as_ref()
        .expect("computed")
        .sum(Kind::Double)
        .double_value(&[]);
    assert!((lp - 5.0 * raw).abs() < 1e-4);
    // Under replay the model draws the same indices as the recorded run.
    let (idx2, _) = poutine::trace(|| poutine::replay(tr, || subsampled(&data)))?;
    assert!(idx.equal(&idx2));
    Ok(())
}

#[test]
fn bad_subsample_size_is_an_error() {
    let r = poutine::trace(|| {
        let _p = plate!("data", 3, subsample_size = 5);
        Ok(())
    });
    assert!(r
        .expect_err("too big")
        .to_string()
        .contains("subsample_size"));
}

/// Observed data that does not fit its plate is named at the point of the mistake (Pyro: "Shape
/// mismatch inside plate('data') at site obs dim -1, 10 vs 12"), with no libtorch backtrace;
/// event dims are not counted as plate dims.
#[test]
fn observed_data_that_does_not_fit_its_plate_is_named() {
    let run = |n: i64, rows: i64, event: bool| -> ppl::Result<()> {
        let (_, _tr) = poutine::trace(|| -> ppl::Result<()> {
            let _p = Plate::new("data", n).enter()?;
            if event {
                let d = MultivariateNormal::new(
                    &Tensor::zeros([2], (Kind::Float, Device::Cpu)),
                    &Tensor::eye(2, (Kind::Float, Device::Cpu)),
                )?;
                let _ = ppl::primitives::sample(
                    "obs",
                    d,
                    Some(Tensor::zeros([rows, 2], (Kind::Float, Device::Cpu))),
                )?;
            } else {
                let _ = ppl::primitives::sample(
                    "obs",
                    Normal::new(0.0, 1.0)?,
                    Some(Tensor::zeros([rows], (Kind::Float, Device::Cpu))),
                )?;
            }
            Ok(())
        })?;
        Ok(())
    };
    for event in [false, true] {
        run(10, 10, event).expect("fits");
        run(10, 1, event).expect("broadcasts");
        let err = run(10, 12, event).expect_err("12 rows in a plate of 10");
        let text = format!("{err:?}");
        assert!(
            text.contains("site `obs`")
                && text.contains("plate `data` of size 10")
                && text.contains("it has 12 there"),
            "{text}"
        );
        assert!(text.len() < 300 && !text.contains("frame #"), "{text}");
    }
}

/// `Trace::format_shapes` (Pyro's `format_shapes`): batch, event and value shapes and plates
/// per site, subsampled plates starred.
#[test]
fn format_shapes_lists_every_site() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| -> ppl::Result<()> {
        let scale = param!("scale", 1.0, constraint = positive);
        let loc = sample!(
            "loc",
            MultivariateNormal::new(
                &Tensor::zeros([2], (Kind::Float, Device::Cpu)),
                &Tensor::eye(2, (Kind::Float, Device::Cpu)),
            )?
        );
        let _p = plate!("data", 10, subsample_size = 4);
        let _x = sample!(
            "x",
            Normal::new(&loc, &scale)?.to_event(1)?,
            obs = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu))
        );
        Ok(())
    })?;
    let table = tr.format_shapes();
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        row("site"),
        ["site", "kind", "batch", "event", "value", "plates"]
    );
    assert_eq!(row("loc"), ["loc", "sample", "[]", "[2]", "[2]"], "{table}");
    assert_eq!(
        row("x"),
        ["x", "observed", "[4]", "[2]", "[4, 2]", "data(4*)@-1"],
        "{table}"
    );
    assert_eq!(row("scale")[1], "param", "{table}");
    Ok(())
}
