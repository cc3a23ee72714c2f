//! The semi-supervised HMM of NumPyro's `examples/hmm.py` (and the NumPyro paper's HMM
//! benchmark) on `data/hmm_*.csv`: 3 hidden categories, 10 words, 100 labelled steps, then 500
//! unlabelled steps whose categories are summed out. Shared by `examples/hmm.rs` and the
//! benchmark program (`examples/bench_mcmc.rs`).
//!
//! Three ways to sum out the unlabelled chain, with the same posterior over the globals:
//! - [`Method::Forward`]: the forward algorithm written by hand into a `factor`, as NumPyro's
//!   example does (`hmm_forward_nuts`);
//! - [`Method::Enum`]: each hidden category a `sample!` site with `enumerate = parallel` inside
//!   a `markov` loop, as Pyro's `examples/hmm.py` does (`hmm_enum_nuts`);
//! - [`Method::Dhmm`]: one [`DiscreteHmm`] site, its log-density a parallel scan.

use ppl::ops::vindex;
use ppl::poutine::markov;
use ppl::prelude::*;

/// The data: labelled categories and words, unlabelled words.
pub struct HmmData {
    /// Number of hidden categories.
    pub k: i64,
    /// Number of words.
    pub w: i64,
    /// Labelled categories (int64).
    pub sup_categories: Tensor,
    /// Labelled words (int64).
    pub sup_words: Tensor,
    /// Unlabelled words (int64).
    pub unsup_words: Tensor,
    /// The true transition matrix `[K, K]` (rows: from).
    pub true_transition: Vec<Vec<f64>>,
    /// The true emission matrix `[K, W]`.
    pub true_emission: Vec<Vec<f64>>,
}

impl HmmData {
    /// Reads `data/hmm_supervised.csv`, `hmm_unsupervised.csv` and `hmm_truth.csv`.
    pub fn load() -> HmmData {
        let (_, sup) = crate::read_numeric_csv("hmm_supervised.csv");
        let (_, unsup) = crate::read_numeric_csv("hmm_unsupervised.csv");
        let (_, truth) = crate::read_csv("hmm_truth.csv");
        let cats: Vec<i64> = sup.iter().map(|r| r[0] as i64).collect();
        let words: Vec<i64> = sup.iter().map(|r| r[1] as i64).collect();
        let uw: Vec<i64> = unsup.iter().map(|r| r[0] as i64).collect();
        let k = 1 + truth
            .iter()
            .filter(|r| r[0] == "transition")
            .map(|r| r[1].parse::<i64>().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let w = 1 + truth
            .iter()
            .filter(|r| r[0] == "emission")
            .map(|r| r[2].parse::<i64>().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let mut tt = vec![vec![0.0; k as usize]; k as usize];
        let mut te = vec![vec![0.0; w as usize]; k as usize];
        for r in &truth {
            let (i, j): (usize, usize) = (r[1].parse().unwrap_or(0), r[2].parse().unwrap_or(0));
            let v: f64 = r[3].parse().unwrap_or(f64::NAN);
            if r[0] == "transition" {
                tt[i][j] = v;
            } else {
                te[i][j] = v;
            }
        }
        HmmData {
            k,
            w,
            sup_categories: Tensor::from_slice(&cats),
            sup_words: Tensor::from_slice(&words),
            unsup_words: Tensor::from_slice(&uw),
            true_transition: tt,
            true_emission: te,
        }
    }

    /// The number of unlabelled steps.
    pub fn num_unsupervised(&self) -> i64 {
        self.unsup_words.size()[0]
    }
}

/// How the unlabelled chain is summed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The forward algorithm by hand, in a `factor`.
    Forward,
    /// `enumerate = parallel` sites in a `markov` loop.
    Enum,
    /// One `DiscreteHmm` site.
    Dhmm,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "forward" => Ok(Method::Forward),
            "enum" => Ok(Method::Enum),
            "dhmm" => Ok(Method::Dhmm),
            other => Err(format!("unknown method {other:?}: forward, enum or dhmm")),
        }
    }
}

/// The model: Dirichlet priors (1 on transitions, 0.1 on emissions, as NumPyro's example), the
/// labelled steps observed, the unlabelled chain summed out by `method`. The first state of
/// each part is uniform.
pub fn semi_supervised_hmm(d: &HmmData, method: Method) -> ppl::Result<()> {
    let (k, w) = (d.k, d.w);
    let opts = (Kind::Float, Device::Cpu);
    let transition = ppl::sample(
        "transition_prob",
        Dirichlet::new(Tensor::ones([k, k], opts))?.to_event(1)?,
        None,
    )?;
    let emission = ppl::sample(
        "emission_prob",
        Dirichlet::new(Tensor::full([k, w], 0.1, opts))?.to_event(1)?,
        None,
    )?;
    let n = d.sup_categories.size()[0];
    {
        let _s = Plate::new("supervised_transitions", n - 1).enter()?;
        let prev = d.sup_categories.narrow(0, 0, n - 1);
        let _ = ppl::sample(
            "supervised_categories",
            Categorical::new(transition.index_select(0, &prev))?,
            Some(d.sup_categories.narrow(0, 1, n - 1)),
        )?;
    }
    {
        let _s = Plate::new("supervised_steps", n).enter()?;
        let _ = ppl::sample(
            "supervised_words",
            Categorical::new(emission.index_select(0, &d.sup_categories))?,
            Some(d.sup_words.shallow_clone()),
        )?;
    }
    let t_max = d.num_unsupervised();
    match method {
        Method::Forward => {
            let lt = transition.log();
            let le = emission.log();
            let words: Vec<i64> = Vec::try_from(&d.unsup_words)?;
            let mut alpha = le.select(1, words[0]);
            for &word in &words[1..] {
                alpha = (alpha.unsqueeze(1) + &lt).logsumexp([0], false) + le.select(1, word);
            }
            // The uniform first state contributes log(1/K), a constant NumPyro leaves out too.
            ppl::factor("forward_log_prob", &alpha.logsumexp([0], false))?;
        }
        Method::Enum => {
            let uniform = Tensor::full([k], 1.0 / k as f64, opts);
            let mut x: Option<Tensor> = None;
            for t in markov(0..t_max) {
                let probs = match &x {
                    None => uniform.shallow_clone(),
                    Some(x) => vindex(&transition, &[Some(x), None])?,
                };
                let xt = sample!(
                    format!("x_{t}"),
                    Categorical::new(&probs)?,
                    enumerate = parallel
                );
                let _ = ppl::sample(
                    format!("w_{t}"),
                    Categorical::new(&vindex(&emission, &[Some(&xt), None])?)?,
                    Some(d.unsup_words.get(t)),
                )?;
                x = Some(xt);
            }
        }
        Method::Dhmm => {
            // x₋₁ uniform, a uniform first step, then the transitions.
            let init = Tensor::zeros([k], opts);
            let trans = Tensor::cat(
                &[
                    Tensor::zeros([1, k, k], opts),
                    transition
                        .log()
                        .unsqueeze(0)
                        .expand([t_max - 1, k, k], false),
                ],
                0,
            );
            let obs = Categorical::new(emission.unsqueeze(0))?;
            let _ = ppl::sample(
                "unsupervised_words",
                DiscreteHmm::new(&init, &trans, obs.boxed())?,
                Some(d.unsup_words.shallow_clone()),
            )?;
        }
    }
    Ok(())
}

/// The most likely path of the unlabelled part given the matrices, by the Viterbi recursion
/// written out (a check on `infer_discrete` at temperature 0).
pub fn viterbi(transition: &[Vec<f64>], emission: &[Vec<f64>], words: &[i64]) -> Vec<i64> {
    let k = transition.len();
    let mut score: Vec<f64> = (0..k)
        .map(|i| (1.0 / k as f64).ln() + emission[i][words[0] as usize].ln())
        .collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(words.len());
    for &word in &words[1..] {
        let mut next = vec![f64::NEG_INFINITY; k];
        let mut arg = vec![0usize; k];
        for (j, n) in next.iter_mut().enumerate() {
            for i in 0..k {
                let s = score[i] + transition[i][j].ln();
                if s > *n {
                    *n = s;
                    arg[j] = i;
                }
            }
            *n += emission[j][word as usize].ln();
        }
        back.push(arg);
        score = next;
    }
    let mut last = (0..k)
        .max_by(|a, b| score[*a].total_cmp(&score[*b]))
        .unwrap_or(0);
    let mut path = vec![last as i64];
    for arg in back.iter().rev() {
        last = arg[last];
        path.push(last as i64);
    }
    path.reverse();
    path
}
