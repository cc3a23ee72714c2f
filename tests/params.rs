//! The param store: constraints, save/load round trip, `module`.

use ppl::prelude::*;

#[test]
fn constrained_params_read_back_constrained() -> ppl::Result<()> {
    clear_param_store();
    let (w, tr) = poutine::trace(|| {
        Ok(param!(
            "w",
            Tensor::from_slice(&[0.5f32, 2.0]),
            constraint = positive
        ))
    })?;
    assert!(tr.site("w")?.kind == ppl::poutine::SiteKind::Param);
    assert!((w.double_value(&[1]) - 2.0).abs() < 1e-6);
    with_param_store(|ps| {
        let e = ps.entry("w").expect("stored");
        assert!((e.unconstrained.double_value(&[1]) - 2f64.ln()).abs() < 1e-6);
        assert!(e.unconstrained.requires_grad());
    });
    // The initializer runs once: a later call with another init reads the stored value.
    let again = param!(
        "w",
        Tensor::from_slice(&[9.0f32, 9.0]),
        constraint = positive
    );
    assert!(again.equal(&w));
    assert!(matches!(param_or_err(), Err(ppl::Error::MissingParam(_))));
    Ok(())
}

fn param_or_err() -> ppl::Result<Tensor> {
    Ok(param!("never_set"))
}

#[test]
fn missing_param_names_it() {
    clear_param_store();
    let e = param_or_err().expect_err("missing");
    assert!(e.to_string().contains("never_set"), "{e}");
}

#[test]
fn save_and_load_round_trip_exactly() -> ppl::Result<()> {
    round_trip("params.pt", |ps, p| ps.save(p), |ps, p| ps.load(p, None))
}

/// The safetensors form (the one `scripts/pyro_param_store.py` converts to and from Pyro's param
/// store) round-trips as exactly.
#[test]
fn safetensors_round_trip_exactly() -> ppl::Result<()> {
    round_trip(
        "params.safetensors",
        |ps, p| ps.save_safetensors(p),
        |ps, p| ps.load_safetensors(p, None),
    )?;
    // A safetensors file that is not a ppl param store is refused, naming the file.
    let dir = std::env::temp_dir().join(format!("ppl-params-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let other = dir.join("other.safetensors");
    Tensor::write_safetensors(
        &[("x", Tensor::zeros([2], (Kind::Float, Device::Cpu)))],
        &other,
    )
    .expect("write");
    let err = with_param_store(|ps| ps.load_safetensors(&other, None))
        .expect_err("not a param store")
        .to_string();
    assert!(
        err.contains("other.safetensors") && err.contains("ppl-param-store"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

type Io = fn(&mut ParamStore, &std::path::Path) -> ppl::Result<()>;

/// Saves a store of float32 and float64 params with several constraints and event dims to
/// `file`, clears it, loads it back, and compares bit for bit.
fn round_trip(file: &str, save: Io, load: Io) -> ppl::Result<()> {
    clear_param_store();
    set_rng_seed(0);
    let _ = param!("a", Tensor::randn([3, 2], (Kind::Float, Device::Cpu)));
    let _ = param!(
        "b.c",
        Tensor::rand([4], (Kind::Double, Device::Cpu)),
        constraint = unit_interval
    );
    let _ = param!("d", 3.0, constraint = interval(-1.5, 7.25), event_dim = 0);
    let _ = param!(
        "simplex",
        Tensor::from_slice(&[0.2f32, 0.3, 0.5]),
        constraint = simplex
    );
    let dir = std::env::temp_dir().join(format!("ppl-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(file);
    let before: Vec<(String, Tensor, String, Option<usize>)> = with_param_store(|ps| {
        ps.names()
            .map(|n| {
                let e = ps.entry(n).expect("entry");
                (
                    n.to_string(),
                    e.unconstrained.detach().copy(),
                    e.constraint.to_string(),
                    e.event_dim,
                )
            })
            .collect()
    });
    with_param_store(|ps| save(ps, &path))?;
    clear_param_store();
    with_param_store(|ps| load(ps, &path))?;
    with_param_store(|ps| {
        assert_eq!(ps.len(), before.len());
        for (name, t, c, ed) in &before {
            let e = ps.entry(name).expect("loaded");
            assert!(e.unconstrained.equal(t), "{name} differs");
            assert_eq!(e.unconstrained.kind(), t.kind());
            assert_eq!(&e.constraint.to_string(), c);
            assert_eq!(&e.event_dim, ed);
        }
    });
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn module_registers_variables_as_params() -> ppl::Result<()> {
    clear_param_store();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let lin = tch::nn::linear(vs.root() / "lin", 3, 2, Default::default());
    let (_, tr) = poutine::trace(|| ppl::module("net", &vs))?;
    let names: Vec<&str> = tr.names().collect();
    assert_eq!(names, ["net.lin.bias", "net.lin.weight"]);
    // The store holds the module's own tensor: an in-place update shows in the module.
    with_param_store(|ps| {
        let e = ps.entry("net.lin.weight").expect("registered");
        tch::no_grad(|| {
            let mut w = e.unconstrained.shallow_clone();
            let _ = w.fill_(0.25);
        });
    });
    assert_eq!(lin.ws.double_value(&[0, 0]), 0.25);
    Ok(())
}

/// An initial value outside the param's constraint is an error naming the param, the value and
/// the constraint, and nothing is stored (the store used to hold NaN, and a later error blamed
/// the distribution that read it).
#[test]
fn param_init_outside_its_constraint_is_named() {
    clear_param_store();
    let err = (|| -> ppl::Result<Tensor> { Ok(param!("scale", -1.0, constraint = positive)) })()
        .expect_err("-1 is not positive");
    let text = err.to_string();
    assert!(
        text.contains("param `scale`") && text.contains("-1") && text.contains("positive"),
        "{text}"
    );
    assert!(!ppl::params::with_param_store(|ps| ps.contains("scale")));
    let ok = (|| -> ppl::Result<Tensor> { Ok(param!("s", 2.0, constraint = positive)) })()
        .expect("2 is positive");
    assert_eq!(ok.double_value(&[]), 2.0);
}
