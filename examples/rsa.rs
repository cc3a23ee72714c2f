//! The seed's Rational Speech Act model of scalar implicature ("some" suggests "not all"):
//! a literal listener, a speaker reasoning about it and a pragmatic listener reasoning about the
//! speaker, each the exact marginal of a discrete model (nested `Search`es, memoized).
//!
//!     cargo run --example rsa [-- --out out/rsa_some.svg --alpha 1.0]
//!
//! Prints the pragmatic listener's distribution over the number of people (of 4) who did
//! something given the utterance "some", and writes a bar chart of it as SVG.

use std::fmt::Write as _;
use std::time::Instant;

use ppl::infer::{sample_value, Marginal, Memoized};
use ppl::prelude::*;

const TOTAL: usize = 4;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Utt {
    None,
    Some,
    All,
}
const UTTS: [Utt; 3] = [Utt::None, Utt::Some, Utt::All];

/// Whether the utterance is literally true of the state.
fn meaning(utt: Utt, state: usize) -> bool {
    match utt {
        Utt::None => state == 0,
        Utt::Some => state > 0,
        Utt::All => state == TOTAL,
    }
}

fn uniform(k: usize) -> ppl::Result<Categorical> {
    Categorical::new(Tensor::ones([k as i64], (Kind::Double, Device::Cpu)))
}

#[model]
fn state_prior() -> ppl::Result<usize> {
    let state = sample!(uniform(TOTAL + 1)?);
    Ok(state.int64_value(&[]) as usize)
}

#[model]
fn utterance_prior() -> ppl::Result<Utt> {
    let utt = sample!(uniform(UTTS.len())?);
    Ok(UTTS[utt.int64_value(&[]) as usize])
}

/// Hears `utt`, believes a state where it is literally true.
#[model]
fn literal_listener(utt: Utt) -> ppl::Result<usize> {
    let state = state_prior()?;
    let log_factor = if meaning(utt, state) { 0.0 } else { -999_999.0 };
    factor("literal_meaning", &Tensor::from(log_factor))?;
    Ok(state)
}

/// Knows `state`, picks an utterance that makes the literal listener guess it.
#[model]
fn speaker(state: usize, alpha: f64, literal: &Memoized<'_, Utt, usize>) -> ppl::Result<Utt> {
    poutine::scale(alpha, || {
        let utt = utterance_prior()?;
        sample_value("listener", &*literal.get(&utt)?, Some(&state))?;
        Ok(utt)
    })
}

/// Hears `utt`, reasons about which state made the speaker say it.
#[model]
fn pragmatic_listener(utt: Utt, speaker: &Memoized<'_, usize, Utt>) -> ppl::Result<usize> {
    let state = state_prior()?;
    sample_value("speaker", &*speaker.get(&state)?, Some(&utt))?;
    Ok(state)
}

/// A bar chart of `(label, probability)` as SVG text (the seed's `plot_dist`).
fn bar_chart(title: &str, bars: &[(String, f64)]) -> String {
    let (w, h, margin) = (480.0, 320.0, 48.0);
    let plot_h = h - 2.0 * margin;
    let slot = (w - 2.0 * margin) / bars.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14">{title}</text>"#,
        w / 2.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = h - margin - tick * plot_h;
        let _ = writeln!(
            s,
            r##"<line x1="{margin}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.2}</text>"##,
            w - margin,
            margin - 6.0,
            y + 4.0
        );
    }
    for (i, (label, p)) in bars.iter().enumerate() {
        let x = margin + i as f64 * slot + slot * 0.15;
        let bh = p * plot_h;
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#4c72b0"/>"##,
            h - margin - bh,
            slot * 0.7
        );
        let cx = x + slot * 0.35;
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{label}</text><text x="{cx:.1}" y="{:.1}" text-anchor="middle">{p:.3}</text>"#,
            h - margin + 16.0,
            h - margin - bh - 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{margin}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/></svg>"#,
        h - margin,
        w - margin
    );
    s
}

fn main() -> ppl::Result<()> {
    let out: String = ppl_examples::arg("out", "out/rsa_some.svg".to_string());
    let alpha: f64 = ppl_examples::arg("alpha", 1.0);

    let start = Instant::now();
    let literal = Marginal::memoized(|u: &Utt| literal_listener(*u));
    let speaker_m = Marginal::memoized(|s: &usize| speaker(*s, alpha, &literal));
    let pragmatic = Marginal::memoized(|u: &Utt| pragmatic_listener(*u, &speaker_m));
    let l1 = pragmatic.get(&Utt::Some)?;
    let elapsed = start.elapsed();

    println!("pragmatic listener given \"some\" (alpha = {alpha}):");
    println!("  state  P(state | some)");
    let mut bars = Vec::new();
    for state in 0..=TOTAL {
        let p = l1.prob(&state);
        println!("  {state:>5}  {p:.4}");
        bars.push((state.to_string(), p));
    }
    println!(
        "exact enumeration in {:.1} ms ({} literal listeners and {} speakers computed, {} cache hits)",
        elapsed.as_secs_f64() * 1e3,
        literal.misses(),
        speaker_m.misses(),
        literal.hits() + speaker_m.hits()
    );

    let svg = bar_chart("pragmatic listener given \"some\"", &bars);
    if let Some(dir) = std::path::Path::new(&out).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| ppl::Error::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        }
    }
    std::fs::write(&out, svg).map_err(|e| ppl::Error::Io {
        path: out.clone(),
        source: e,
    })?;
    println!("bar chart written to {out}");
    Ok(())
}
