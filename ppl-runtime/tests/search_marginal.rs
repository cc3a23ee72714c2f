//! `Search`, `Marginal`, `sample_value` and memoized nested marginals, against probabilities
//! derived by hand.

use ppl::infer::{sample_value, Marginal, Memoized, Search};
use ppl::prelude::*;

fn close(a: f64, b: f64) -> bool {
    // float32 models (Bernoulli(0.3) etc.) carry about 1e-7 relative error.
    (a - b).abs() < 1e-6
}

fn uniform(k: i64) -> ppl::Result<Categorical> {
    Categorical::new(Tensor::ones([k], (Kind::Double, Device::Cpu)))
}

#[model]
fn two_coins() -> ppl::Result<u32> {
    let a = sample!(Bernoulli::new(0.3)?);
    let b = sample!(Bernoulli::new(0.6)?);
    Ok((a.double_value(&[]) + b.double_value(&[])) as u32)
}

#[test]
fn search_enumerates_every_path_with_its_weight() -> ppl::Result<()> {
    let runs = Search::new(two_coins).run()?;
    // Four paths; each weight is the product of the two Bernoulli masses.
    assert_eq!(runs.len(), 4);
    let total: f64 = runs.iter().map(|r| r.log_weight.exp()).sum();
    assert!((total - 1.0).abs() < 1e-6, "{total}");
    for r in &runs {
        let a = r.trace.value("a")?.double_value(&[]);
        let b = r.trace.value("b")?.double_value(&[]);
        let p = if a == 1.0 { 0.3 } else { 0.7 } * if b == 1.0 { 0.6 } else { 0.4 };
        assert!((r.log_weight.exp() - p).abs() < 1e-6);
        assert_eq!(r.value, (a + b) as u32);
    }
    Ok(())
}

#[test]
fn marginal_of_a_sum_of_coins() -> ppl::Result<()> {
    // P(0) = 0.7 * 0.4 = 0.28; P(1) = 0.3 * 0.4 + 0.7 * 0.6 = 0.54; P(2) = 0.3 * 0.6 = 0.18.
    let m = Marginal::exact(two_coins)?;
    assert_eq!(m.enumerate_support(), vec![0, 1, 2]);
    assert!((m.prob(&0) - 0.28).abs() < 1e-6);
    assert!((m.prob(&1) - 0.54).abs() < 1e-6);
    assert!((m.prob(&2) - 0.18).abs() < 1e-6);
    assert_eq!(m.log_prob(&7), f64::NEG_INFINITY);
    let mean = m.expectation(|&v| v as f64);
    assert!((mean - (0.54 + 2.0 * 0.18)).abs() < 1e-6);
    Ok(())
}

#[model]
fn first_die_given_high_sum() -> ppl::Result<i64> {
    let d1 = sample!(uniform(6)?);
    let d2 = sample!(uniform(6)?);
    let (a, b) = (d1.int64_value(&[]) + 1, d2.int64_value(&[]) + 1);
    // Condition on a + b >= 10 with a (nearly) hard factor, as the RSA example does.
    let lf = if a + b >= 10 { 0.0 } else { -999_999.0 };
    factor("high", &Tensor::from(lf))?;
    Ok(a)
}

#[test]
fn marginal_conditioned_by_factor() -> ppl::Result<()> {
    // Pairs with sum >= 10: (4,6) (5,5) (5,6) (6,4) (6,5) (6,6), all equally likely.
    // First die: 4 in 1 pair, 5 in 2, 6 in 3 => 1/6, 2/6, 3/6; faces 1..3 have weight e^-999999,
    // which is 0 in float64.
    let m = Marginal::exact(first_die_given_high_sum)?;
    assert!(close(m.prob(&4), 1.0 / 6.0));
    assert!(close(m.prob(&5), 2.0 / 6.0));
    assert!(close(m.prob(&6), 3.0 / 6.0));
    assert_eq!(m.prob(&1), 0.0);
    // The impossible faces stay in the support with a finite (very negative) log-probability.
    assert!(m.log_prob(&1) < -999_000.0 && m.log_prob(&1).is_finite());
    let total: f64 = m.probs().iter().map(|(_, p)| p).sum();
    assert!(close(total, 1.0));
    Ok(())
}

#[model]
fn weather() -> ppl::Result<&'static str> {
    let cloudy = sample!(Bernoulli::new(0.3)?);
    Ok(if cloudy.double_value(&[]) == 1.0 {
        "cloudy"
    } else {
        "sunny"
    })
}

#[model]
fn pick(coins: &[Marginal<bool>; 2], observe: Option<bool>) -> ppl::Result<i64> {
    let k = sample!(uniform(2)?);
    let k = k.int64_value(&[]);
    let coin = &coins[k as usize];
    // scale(2) squares the likelihood of the observation.
    poutine::scale(2.0, || sample_value("flip", coin, observe.as_ref()))?;
    Ok(k)
}

fn coin(p: f64) -> ppl::Result<Marginal<bool>> {
    Marginal::exact(move || Ok(sample("c", Bernoulli::new(p)?, None)?.double_value(&[]) == 1.0))
}

#[test]
fn nested_marginal_observed_under_scale() -> ppl::Result<()> {
    let coins = [coin(0.25)?, coin(0.75)?];
    // P(k | flip = true) ∝ (1/2) * P(true | k)^2: k = 0 -> 1/16, k = 1 -> 9/16, so P(k=1) = 0.9.
    let m = Marginal::exact(|| pick(&coins, Some(true)))?;
    assert!(close(m.prob(&1), 0.9), "{:?}", m.probs());
    // Without the observation the flip is enumerated too and the choice keeps its prior.
    let m = Marginal::exact(|| pick(&coins, None))?;
    assert!(close(m.prob(&0), 0.5) && close(m.prob(&1), 0.5));
    Ok(())
}

#[test]
fn marginal_values_are_ordinary_rust_values() -> ppl::Result<()> {
    let m = Marginal::exact(weather)?;
    assert!(close(m.prob(&"cloudy"), 0.3));
    assert!(close(m.prob(&"sunny"), 0.7));
    // sample_value inside a traced model records the index and returns the value.
    let (v, tr) = poutine::trace(|| sample_value("w", &m, None))?;
    let idx = tr.value("w")?.int64_value(&[]);
    assert_eq!(m.support()[idx as usize], v);
    // An observed value outside the support has log-density -inf.
    let (_, mut tr) = poutine::trace(|| sample_value("w", &m, Some(&"snowy")))?;
    assert_eq!(tr.log_prob_sum()?.double_value(&[]), f64::NEG_INFINITY);
    // Draws follow the probabilities: 4000 draws, sd of the frequency sqrt(.21/4000) = 0.0072.
    set_rng_seed(0);
    let cloudy = (0..4000).filter(|_| m.sample() == "cloudy").count() as f64 / 4000.0;
    assert!((cloudy - 0.3).abs() < 0.03, "{cloudy}");
    Ok(())
}

#[model]
fn observe_weather(m: &Marginal<&'static str>, w: &'static str) -> ppl::Result<Tensor> {
    let idx = sample!("w", m.index_dist(), obs = m.index_obs(&w));
    Ok(idx)
}

#[test]
fn marginal_sites_work_with_sample_condition_and_replay() -> ppl::Result<()> {
    let m = Marginal::exact(weather)?;
    // `sample!` with the index distribution and `obs =`: log-density log 0.7.
    let (idx, mut tr) = poutine::trace(|| observe_weather(&m, "sunny"))?;
    assert_eq!(m.value_at(&idx)?, "sunny");
    assert!((tr.log_prob_sum()?.double_value(&[]) - 0.7f64.ln()).abs() < 1e-6);
    // `condition` on the site's position.
    let data = poutine::data([("w", m.index_obs(&"cloudy"))]);
    let (v, tr) = poutine::trace(|| poutine::condition(data, || sample_value("w", &m, None)))?;
    assert_eq!(v, "cloudy");
    assert!(tr.site("w")?.is_observed);
    // `replay` of a latent draw gives the same value back.
    let (v, tr) = poutine::trace(|| sample_value("w", &m, None))?;
    let (v2, _) = poutine::trace(|| poutine::replay(tr, || sample_value("w", &m, None)))?;
    assert_eq!(v, v2);
    // A bad position names the site.
    let data = poutine::data([("w", Tensor::from(7i64))]);
    let err = poutine::condition(data, || sample_value("w", &m, None)).expect_err("bad index");
    assert!(err.to_string().contains("`w`"), "{err}");
    Ok(())
}

#[test]
fn memoized_marginal_hits_the_cache() -> ppl::Result<()> {
    let memo = Marginal::memoized(|p: &u32| {
        let c = sample("c", Bernoulli::new(*p as f64 / 100.0)?, None)?;
        Ok(c.double_value(&[]) == 1.0)
    });
    let a = memo.get(&25)?;
    let b = memo.get(&25)?;
    assert!(std::rc::Rc::ptr_eq(&a, &b));
    assert_eq!((memo.misses(), memo.hits(), memo.len()), (1, 1, 1));
    assert!(close(b.prob(&true), 0.25));
    memo.get(&75)?;
    assert_eq!((memo.misses(), memo.hits(), memo.len()), (2, 1, 2));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The seed's RSA scalar implicature model.

const TOTAL: usize = 4;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Utt {
    None,
    Some,
    All,
}
const UTTS: [Utt; 3] = [Utt::None, Utt::Some, Utt::All];

fn meaning(u: Utt, state: usize) -> bool {
    match u {
        Utt::None => state == 0,
        Utt::Some => state > 0,
        Utt::All => state == TOTAL,
    }
}

#[model]
fn state_prior() -> ppl::Result<usize> {
    let state = sample!(uniform(TOTAL as i64 + 1)?);
    Ok(state.int64_value(&[]) as usize)
}

#[model]
fn utterance_prior() -> ppl::Result<Utt> {
    let utt = sample!(uniform(3)?);
    Ok(UTTS[utt.int64_value(&[]) as usize])
}

#[model]
fn literal_listener(utt: Utt) -> ppl::Result<usize> {
    let state = state_prior()?;
    let lf = if meaning(utt, state) { 0.0 } else { -999_999.0 };
    factor("literal_meaning", &Tensor::from(lf))?;
    Ok(state)
}

#[model]
fn speaker(state: usize, literal: &Memoized<'_, Utt, usize>) -> ppl::Result<Utt> {
    let alpha = 1.0;
    poutine::scale(alpha, || {
        let utt = utterance_prior()?;
        sample_value("listener", &*literal.get(&utt)?, Some(&state))?;
        Ok(utt)
    })
}

#[model]
fn pragmatic_listener(utt: Utt, speaker: &Memoized<'_, usize, Utt>) -> ppl::Result<usize> {
    let state = state_prior()?;
    sample_value("speaker", &*speaker.get(&state)?, Some(&utt))?;
    Ok(state)
}

#[test]
fn rsa_pragmatic_listener_matches_hand_derivation() -> ppl::Result<()> {
    // Literal listener L0(s | u) ∝ P(s) [u is true of s], P(s) uniform on 0..=4 (a false
    // utterance has weight e^-999999 = 0 in float64):
    //   L0(. | none) = {0: 1};  L0(. | some) = {1..=4: 1/4 each};  L0(. | all) = {4: 1}.
    // Speaker S1(u | s) ∝ P(u) L0(s | u)^alpha with P(u) = 1/3 and alpha = 1:
    //   s = 0: none 1;  s = 1, 2, 3: some 1;
    //   s = 4: some 1/4, all 1 => some 0.25 / 1.25 = 0.2, all 0.8.
    // Pragmatic listener L1(s | some) ∝ P(s) S1(some | s):
    //   s = 0: 0;  s = 1, 2, 3: 1;  s = 4: 0.2;  total 3.2
    //   => 1/3.2 = 0.3125 for s = 1, 2, 3 and 0.2 / 3.2 = 0.0625 for s = 4.
    let literal = Marginal::memoized(|u: &Utt| literal_listener(*u));
    let speaker_m = Marginal::memoized(|s: &usize| speaker(*s, &literal));
    let pragmatic = Marginal::memoized(|u: &Utt| pragmatic_listener(*u, &speaker_m));

    let l0 = literal.get(&Utt::Some)?;
    assert!(close(l0.prob(&0), 0.0));
    for s in 1..=4 {
        assert!(close(l0.prob(&s), 0.25));
    }
    let s4 = speaker_m.get(&4)?;
    assert!(close(s4.prob(&Utt::Some), 0.2) && close(s4.prob(&Utt::All), 0.8));
    assert!(close(s4.prob(&Utt::None), 0.0));

    let start = std::time::Instant::now();
    let l1 = pragmatic.get(&Utt::Some)?;
    let expected = [0.0, 0.3125, 0.3125, 0.3125, 0.0625];
    for (s, p) in expected.iter().enumerate() {
        assert!(close(l1.prob(&s), *p), "state {s}: {} vs {p}", l1.prob(&s));
    }
    // Memoized: 3 literal listeners (one per utterance) and 5 speakers (one per state).
    assert_eq!(literal.len(), 3);
    assert_eq!(speaker_m.len(), 5);
    assert!(literal.hits() > 0 && speaker_m.hits() > 0);
    // Milliseconds in release; a generous bound for a debug build on a shared machine.
    assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
    Ok(())
}
