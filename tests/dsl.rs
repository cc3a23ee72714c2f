//! The naming rule of #[model]/#[guide] and the macro forms.

use ppl::prelude::*;

#[model]
fn forms(x: &Tensor, k: usize) -> ppl::Result<()> {
    let a = sample!(Normal::new(0.0, 1.0)?);
    let _b = sample!(Normal::new(&a, 1.0)?);
    let c: Tensor = sample!(Normal::new(0.0, 1.0)?);
    let _ = c;
    sample!("explicit", Normal::new(0.0, 1.0)?);
    sample!("fmt_{k}", Normal::new(0.0, 1.0)?);
    let name = String::from("by_expr");
    sample!(name, Normal::new(0.0, 1.0)?);
    let mut d = sample!(Normal::new(0.0, 1.0)?);
    d = sample!(Normal::new(&d, 1.0)?);
    let _ = d;
    let _o = sample!(Normal::new(0.0, 1.0)?, obs = x);
    let w = param!(Tensor::from(1.0f32));
    let s = param!("scale_param", 2.0, constraint = positive);
    let u = param!(|| Ok(Tensor::from(0.5f32)), constraint = interval(0.0, 1.0));
    let _ = (w, s, u);
    Ok(())
}

#[test]
fn names_come_from_bindings_literals_formats_and_expressions() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| forms(&Tensor::from(0.5f32), 3))?;
    let names: Vec<&str> = tr.names().collect();
    assert_eq!(
        names,
        [
            "a",
            "b",
            "c",
            "explicit",
            "fmt_3",
            "by_expr",
            "d",
            "d__1",
            "o",
            "w",
            "scale_param",
            "u"
        ]
    );
    assert!(tr.site("o")?.is_observed);
    assert!((tr.value("u")?.double_value(&[]) - 0.5).abs() < 1e-6);
    Ok(())
}

#[model]
fn geometric(p: f64, t: usize) -> ppl::Result<usize> {
    let x = sample!(Bernoulli::new(p)?);
    if x.double_value(&[]) == 1.0 {
        return Ok(t);
    }
    geometric(p, t + 1)
}

#[test]
fn recursion_gets_deterministic_unique_names() -> ppl::Result<()> {
    set_rng_seed(0);
    let (n, tr) = poutine::trace(|| geometric(0.3, 0))?;
    let expected: Vec<String> = (0..=n)
        .map(|i| {
            if i == 0 {
                "x".to_string()
            } else {
                format!("x__{i}")
            }
        })
        .collect();
    assert_eq!(tr.names().collect::<Vec<_>>(), expected);
    // A second run restarts the numbering.
    let (_, tr2) = poutine::trace(|| geometric(0.99, 0))?;
    assert_eq!(tr2.names().next(), Some("x"));
    Ok(())
}

#[model]
fn looped(n: usize) -> ppl::Result<()> {
    let mut prev = sample!(Normal::new(0.0, 1.0)?);
    for _ in 0..n {
        let z = sample!(Normal::new(&prev, 1.0)?);
        prev = z;
    }
    let _ = prev;
    Ok(())
}

#[guide]
fn looped_guide(n: usize) -> ppl::Result<()> {
    let _prev = sample!(Normal::new(0.0, 1.0)?);
    for _ in 0..n {
        let _z = sample!(Normal::new(1.0, 1.0)?);
    }
    Ok(())
}

#[test]
fn loops_pair_model_and_guide_sites() -> ppl::Result<()> {
    let (_, g) = poutine::trace(|| looped_guide(3))?;
    let (_, m) = poutine::trace(|| poutine::replay(g.clone(), || looped(3)))?;
    assert_eq!(m.names().collect::<Vec<_>>(), ["prev", "z", "z__1", "z__2"]);
    for name in g.names() {
        assert!(m.value(name)?.equal(g.value(name)?), "{name}");
    }
    Ok(())
}

#[test]
fn macros_with_explicit_names_work_outside_models() -> ppl::Result<()> {
    let (_, tr) = poutine::trace(|| {
        let _p = plate!("p", 2);
        let z = sample!("z", Normal::new(0.0, 1.0)?);
        let w = param!("w_outside", 3.0);
        Ok((z, w))
    })?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["z", "w_outside"]);
    Ok(())
}

#[test]
fn models_run_without_handlers() -> ppl::Result<()> {
    set_rng_seed(0);
    let n = geometric(0.5, 0)?;
    assert!(n < 100);
    forms(&Tensor::from(0.0f32), 1)?;
    Ok(())
}
