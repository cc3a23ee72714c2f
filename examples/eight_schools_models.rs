//! The eight schools data and models (Rubin 1981), shared by the `eight_schools` and
//! `model_comparison` examples.

use ppl::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/eight_schools.csv");

/// `(y, sigma)` from the CSV (`school,y,sigma`).
pub fn load() -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(DATA).expect("data/eight_schools.csv");
    let mut y = Vec::new();
    let mut sigma = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse().expect("a number"))
            .collect();
        y.push(f[1]);
        sigma.push(f[2]);
    }
    (y, sigma)
}

/// Non-centered: mu ~ N(0, 5); tau ~ HalfCauchy(5); theta_tilde_j ~ N(0, 1);
/// y_j ~ N(mu + tau theta_tilde_j, sigma_j).
#[model]
pub fn hierarchical(sigma: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 5.0)?);
    let tau = sample!(HalfCauchy::new(5.0)?);
    let _schools = plate!("J", sigma.size()[0]);
    let theta_tilde = sample!(Normal::new(0.0, 1.0)?);
    let theta = &mu + &tau * &theta_tilde;
    sample!("obs", Normal::new(&theta, sigma)?, obs = y);
    Ok(())
}

/// Complete pooling: mu ~ N(0, 5); y_j ~ N(mu, sigma_j).
#[model]
pub fn pooled(sigma: &Tensor, y: &Tensor) -> ppl::Result<()> {
    let mu = sample!(Normal::new(0.0, 5.0)?);
    let _schools = plate!("J", sigma.size()[0]);
    sample!("obs", Normal::new(&mu, sigma)?, obs = y);
    Ok(())
}
