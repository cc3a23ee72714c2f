//! Special functions on `f64` for compiled programs: `lgamma`, `digamma`, `trigamma`.

use std::f64::consts::PI;

/// `log |Γ(x)|` (libm's).
pub fn lgamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// `ψ(x) = d/dx log Γ(x)`: recurrence up to x ≥ 10, then the asymptotic series.
pub fn digamma(mut x: f64) -> f64 {
    if x.is_nan() || (x <= 0.0 && x == x.floor()) {
        return f64::NAN;
    }
    let mut acc = 0.0;
    if x < 0.0 {
        // Reflection: ψ(1 - x) - ψ(x) = π cot(πx).
        return digamma(1.0 - x) - PI / (PI * x).tan();
    }
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f
        * (-1.0 / 12.0
            + f * (1.0 / 120.0 + f * (-1.0 / 252.0 + f * (1.0 / 240.0 + f * (-1.0 / 132.0)))));
    acc + x.ln() - 0.5 / x + series
}

/// `ψ'(x)`: recurrence up to x ≥ 10, then the asymptotic series.
pub fn trigamma(mut x: f64) -> f64 {
    if x.is_nan() || (x <= 0.0 && x == x.floor()) {
        return f64::NAN;
    }
    if x < 0.0 {
        // Reflection: ψ'(1 - x) + ψ'(x) = π² / sin²(πx).
        let s = (PI * x).sin();
        return -trigamma(1.0 - x) + PI * PI / (s * s);
    }
    let mut acc = 0.0;
    while x < 10.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series =
        1.0 / x + f / 2.0 + f / x * (1.0 / 6.0 + f * (-1.0 / 30.0 + f * (1.0 / 42.0 - f / 30.0)));
    acc + series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_known_values() {
        // Γ(5) = 24; Γ(0.5) = √π; ψ(1) = -γ; ψ'(1) = π²/6.
        assert!((lgamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((lgamma(0.5) - PI.sqrt().ln()).abs() < 1e-13);
        assert!((lgamma(-0.5) - (2.0 * PI.sqrt()).ln()).abs() < 1e-12);
        assert!((digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-13);
        assert!((digamma(0.25) - (-4.227_453_533_376_265)).abs() < 1e-12);
        assert!((trigamma(1.0) - PI * PI / 6.0).abs() < 1e-12);
        assert!((trigamma(0.5) - PI * PI / 2.0).abs() < 1e-11);
    }
}
