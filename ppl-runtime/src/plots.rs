//! Plots of inference results, as PNG or SVG (by the file's extension), drawn with plotters: the
//! pictures ArviZ users look at after Pyro or NumPyro.
//!
//! - MCMC ([`crate::infer::mcmc::Mcmc`]): [`Mcmc::plot_trace`] (density and trace per chain,
//!   `az.plot_trace`), [`Mcmc::plot_rank`] (rank histograms per chain, `az.plot_rank`),
//!   [`Mcmc::plot_posterior`] (density with the HPDI shaded, `az.plot_posterior`) and
//!   [`Mcmc::plot_pair`] (two sites against each other, divergent transitions in red,
//!   `az.plot_pair(divergences=True)`).
//! - SVI: [`loss_curve`] of the losses `Svi::run` returns.
//! - Predictive: [`posterior_predictive_check`], the observed data's density over those of
//!   replicated data sets (`az.plot_ppc`).
//!
//! Each panel carries its title (the site element, `theta[3]`) as text, which is how the tests
//! count panels in the SVG. Text is set in DejaVu Sans, embedded (`assets/`, Bitstream Vera
//! license), so no system font library is needed. Densities are Gaussian kernel estimates with
//! Scott's bandwidth.
//!
//! [`Mcmc::plot_trace`]: crate::infer::mcmc::Mcmc::plot_trace
//! [`Mcmc::plot_rank`]: crate::infer::mcmc::Mcmc::plot_rank
//! [`Mcmc::plot_posterior`]: crate::infer::mcmc::Mcmc::plot_posterior
//! [`Mcmc::plot_pair`]: crate::infer::mcmc::Mcmc::plot_pair

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::infer::mcmc::{diagnostics, Mcmc};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();

/// Chain colors (matplotlib's default cycle, as ArviZ draws chains).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const DIVERGENT: RGBColor = RGBColor(214, 39, 40);

type DrawResult = std::result::Result<(), String>;

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(format!("plotting: {e}")),
    }
}

fn font() -> Result<()> {
    let mut err = None;
    FONT_ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            err = Some(Error::Invalid("the embedded plot font did not load".into()));
        }
    });
    err.map_or(Ok(()), Err)
}

/// Something drawn onto a drawing area of any backend.
trait Figure {
    /// Pixel size.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Draws `fig` into `path`: PNG or SVG by the extension.
fn save(fig: &impl Figure, path: &Path) -> Result<()> {
    font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let size = fig.size();
    match ext.as_deref() {
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            fig.draw(&root).map_err(|e| plot_error(path, e))?;
            root.present().map_err(|e| plot_error(path, e))
        }
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            fig.draw(&root).map_err(|e| plot_error(path, e))?;
            root.present().map_err(|e| plot_error(path, e))
        }
        _ => Err(Error::Invalid(format!(
            "{}: plots are written as .png or .svg (by the extension)",
            path.display()
        ))),
    }
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `(min, max)` of the values, widened when they are all equal.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = 0.02 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// A Gaussian kernel density estimate on `n` points spanning `(lo, hi)`, Scott's bandwidth.
pub fn kde(x: &[f64], lo: f64, hi: f64, n: usize) -> Vec<(f64, f64)> {
    let m = x.len() as f64;
    if x.is_empty() {
        return Vec::new();
    }
    let sd = diagnostics::variance(x).sqrt();
    let h = if sd > 0.0 && sd.is_finite() {
        1.06 * sd * m.powf(-0.2)
    } else {
        1e-3 * (hi - lo).max(1e-9)
    };
    let norm = 1.0 / (m * h * (2.0 * std::f64::consts::PI).sqrt());
    (0..n)
        .map(|i| {
            let t = lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64;
            let d: f64 = x.iter().map(|v| (-0.5 * ((t - v) / h).powi(2)).exp()).sum();
            (t, d * norm)
        })
        .collect()
}

/// One scalar quantity's draws, chain by chain.
#[derive(Clone, Debug)]
pub struct Component {
    /// `site` or `site[i,j]`.
    pub label: String,
    /// Draws per chain.
    pub chains: Vec<Vec<f64>>,
}

/// The scalar components of an MCMC run's sites (at most `max_per_site` elements of each).
fn components(mcmc: &Mcmc, sites: Option<&[&str]>, max_per_site: usize) -> Result<Vec<Component>> {
    let by_chain = mcmc.samples_by_chain_f64()?;
    let mut out = Vec::new();
    if let Some(wanted) = sites {
        if let Some(missing) = wanted.iter().find(|w| !by_chain.contains_key(**w)) {
            return Err(Error::MissingSite {
                site: missing.to_string(),
                message: format!(
                    "no such latent site to plot; the run has {:?}",
                    by_chain.keys().collect::<Vec<_>>()
                ),
            });
        }
    }
    for (name, t) in &by_chain {
        if sites.is_some_and(|w| !w.contains(&name.as_str())) {
            continue;
        }
        let size = t.size();
        let (c, d) = (size[0] as usize, size[1] as usize);
        let shape = &size[2..];
        let k: usize = shape.iter().product::<i64>().max(1) as usize;
        let flat = t
            .f_to_kind(Kind::Double)?
            .f_to_device(Device::Cpu)?
            .f_reshape([-1])?
            .f_contiguous()?;
        let v = Vec::<f64>::try_from(&flat)?;
        for j in 0..k.min(max_per_site) {
            let label = if shape.is_empty() {
                name.clone()
            } else {
                format!("{name}[{}]", crate::infer::mcmc::results::unravel(j, shape))
            };
            let chains = (0..c)
                .map(|ci| (0..d).map(|di| v[(ci * d + di) * k + j]).collect())
                .collect();
            out.push(Component { label, chains });
        }
    }
    Ok(out)
}

fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: (f64, f64),
    y: (f64, f64),
) -> std::result::Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(44)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(s)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(5)
        .y_labels(4)
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(s)?;
    Ok(chart)
}

struct TraceFigure {
    components: Vec<Component>,
}

impl Figure for TraceFigure {
    fn size(&self) -> (u32, u32) {
        (1000, 40 + 190 * self.components.len().max(1) as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let rows = root.split_evenly((self.components.len().max(1), 2));
        for (r, comp) in self.components.iter().enumerate() {
            let (lo, hi) = range(comp.chains.iter().flatten().copied());
            let dens: Vec<Vec<(f64, f64)>> =
                comp.chains.iter().map(|c| kde(c, lo, hi, 200)).collect();
            let top = range(dens.iter().flatten().map(|p| p.1)).1;
            let mut left = panel(&rows[2 * r], &comp.label, (lo, hi), (0.0, top))?;
            for (ci, d) in dens.iter().enumerate() {
                left.draw_series(LineSeries::new(
                    d.iter().copied(),
                    COLORS[ci % 6].stroke_width(2),
                ))
                .map_err(s)?;
            }
            let n = comp.chains.first().map_or(0, |c| c.len());
            let mut right = panel(
                &rows[2 * r + 1],
                &format!("{} (trace)", comp.label),
                (0.0, n.max(2) as f64 - 1.0),
                (lo, hi),
            )?;
            for (ci, c) in comp.chains.iter().enumerate() {
                right
                    .draw_series(LineSeries::new(
                        c.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                        COLORS[ci % 6].mix(0.8),
                    ))
                    .map_err(s)?;
            }
        }
        Ok(())
    }
}

/// Panels of a grid figure: up to 3 per row.
fn grid_shape(n: usize) -> (usize, usize) {
    let cols = 3.min(n.max(1));
    (n.div_ceil(cols).max(1), cols)
}

/// The pixel size of a grid of `n` panels.
fn grid_size(n: usize) -> (u32, u32) {
    let (rows, cols) = grid_shape(n);
    (360 * cols as u32, 40 + 240 * rows as u32)
}

/// The drawing areas of a grid of `n` panels, row by row.
fn grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    n: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    root.split_evenly(grid_shape(n))
}

struct RankFigure {
    components: Vec<Component>,
    bins: usize,
}

impl Figure for RankFigure {
    fn size(&self) -> (u32, u32) {
        grid_size(self.components.len())
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let areas = grid(root, self.components.len());
        for (p, comp) in self.components.iter().enumerate() {
            // Ranks of all draws pooled, then each chain's histogram of its ranks: flat for
            // chains that mix (Vehtari et al. 2021).
            let all: Vec<f64> = comp.chains.iter().flatten().copied().collect();
            let mut order: Vec<usize> = (0..all.len()).collect();
            order.sort_by(|a, b| all[*a].total_cmp(&all[*b]));
            let mut rank = vec![0usize; all.len()];
            for (r, &i) in order.iter().enumerate() {
                rank[i] = r;
            }
            let total = all.len().max(1);
            let c = comp.chains.len().max(1);
            let mut start = 0;
            let mut hists = Vec::new();
            for chain in &comp.chains {
                let mut h = vec![0usize; self.bins];
                for r in &rank[start..start + chain.len()] {
                    h[(r * self.bins / total).min(self.bins - 1)] += 1;
                }
                start += chain.len();
                hists.push(h);
            }
            let top = hists.iter().flatten().copied().max().unwrap_or(1) as f64 * 1.1;
            // One band per chain, stacked: chain i's bars between i and i + 1 (scaled).
            let mut chart = panel(
                &areas[p],
                &format!("{} (ranks)", comp.label),
                (0.0, self.bins as f64),
                (0.0, c as f64),
            )?;
            for (ci, h) in hists.iter().enumerate() {
                let color = COLORS[ci % 6];
                chart
                    .draw_series(h.iter().enumerate().map(|(b, &n)| {
                        let y0 = ci as f64;
                        let y1 = y0 + 0.9 * n as f64 / top;
                        Rectangle::new(
                            [(b as f64, y0), (b as f64 + 0.95, y1)],
                            color.mix(0.7).filled(),
                        )
                    }))
                    .map_err(s)?;
                let uniform = ci as f64 + 0.9 * (total as f64 / c as f64 / self.bins as f64) / top;
                chart
                    .draw_series(LineSeries::new(
                        [(0.0, uniform), (self.bins as f64, uniform)],
                        BLACK.mix(0.6),
                    ))
                    .map_err(s)?;
            }
        }
        Ok(())
    }
}

struct PosteriorFigure {
    components: Vec<Component>,
    prob: f64,
}

impl Figure for PosteriorFigure {
    fn size(&self) -> (u32, u32) {
        grid_size(self.components.len())
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let areas = grid(root, self.components.len());
        for (p, comp) in self.components.iter().enumerate() {
            let all: Vec<f64> = comp.chains.iter().flatten().copied().collect();
            let (lo, hi) = range(all.iter().copied());
            let d = kde(&all, lo, hi, 300);
            let top = range(d.iter().map(|p| p.1)).1;
            let (a, b) = diagnostics::hpdi(&all, self.prob);
            let mean = diagnostics::mean(&all);
            let title = format!(
                "{}: mean {:.3}, {:.0}% HPDI [{:.3}, {:.3}]",
                comp.label,
                mean,
                100.0 * self.prob,
                a,
                b
            );
            let mut chart = panel(&areas[p], &title, (lo, hi), (0.0, top))?;
            chart
                .draw_series(AreaSeries::new(
                    d.iter().copied().filter(|(x, _)| *x >= a && *x <= b),
                    0.0,
                    COLORS[0].mix(0.3),
                ))
                .map_err(s)?;
            chart
                .draw_series(LineSeries::new(
                    d.iter().copied(),
                    COLORS[0].stroke_width(2),
                ))
                .map_err(s)?;
            chart
                .draw_series(LineSeries::new([(mean, 0.0), (mean, top)], BLACK.mix(0.7)))
                .map_err(s)?;
        }
        Ok(())
    }
}

struct PairFigure {
    x: Component,
    y: Component,
    divergent: Vec<bool>,
}

impl Figure for PairFigure {
    fn size(&self) -> (u32, u32) {
        (640, 600)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let xs: Vec<f64> = self.x.chains.iter().flatten().copied().collect();
        let ys: Vec<f64> = self.y.chains.iter().flatten().copied().collect();
        let n_div = self.divergent.iter().filter(|d| **d).count();
        let title = format!(
            "{} vs {} ({} divergent transitions, in red)",
            self.y.label, self.x.label, n_div
        );
        let mut chart = panel(
            root,
            &title,
            range(xs.iter().copied()),
            range(ys.iter().copied()),
        )?;
        chart
            .draw_series(
                xs.iter()
                    .zip(&ys)
                    .zip(&self.divergent)
                    .filter(|(_, d)| !**d)
                    .map(|((x, y), _)| Circle::new((*x, *y), 2, COLORS[0].mix(0.4).filled())),
            )
            .map_err(s)?;
        chart
            .draw_series(
                xs.iter()
                    .zip(&ys)
                    .zip(&self.divergent)
                    .filter(|(_, d)| **d)
                    .map(|((x, y), _)| Circle::new((*x, *y), 3, DIVERGENT.filled())),
            )
            .map_err(s)?;
        Ok(())
    }
}

struct LossFigure<'a> {
    losses: &'a [f64],
}

impl Figure for LossFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 450)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let n = self.losses.len();
        let mut chart = panel(
            root,
            "SVI loss (ELBO loss per step)",
            (0.0, n.max(2) as f64 - 1.0),
            range(self.losses.iter().copied()),
        )?;
        chart
            .draw_series(LineSeries::new(
                self.losses.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                COLORS[0].stroke_width(1),
            ))
            .map_err(s)?;
        Ok(())
    }
}

struct PpcFigure {
    label: String,
    observed: Vec<f64>,
    replicated: Vec<Vec<f64>>,
}

impl Figure for PpcFigure {
    fn size(&self) -> (u32, u32) {
        (800, 500)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(s)?;
        let (lo, hi) = range(
            self.observed
                .iter()
                .chain(self.replicated.iter().flatten())
                .copied(),
        );
        let reps: Vec<Vec<(f64, f64)>> = self
            .replicated
            .iter()
            .map(|r| kde(r, lo, hi, 200))
            .collect();
        let obs = kde(&self.observed, lo, hi, 200);
        let pooled: Vec<f64> = self.replicated.iter().flatten().copied().collect();
        let mean = kde(&pooled, lo, hi, 200);
        let top = range(reps.iter().flatten().chain(&obs).map(|p| p.1)).1;
        let title = format!(
            "{}: observed (black) over {} replicated data sets (blue), their mean (orange)",
            self.label,
            self.replicated.len()
        );
        let mut chart = panel(root, &title, (lo, hi), (0.0, top))?;
        for r in &reps {
            chart
                .draw_series(LineSeries::new(r.iter().copied(), COLORS[0].mix(0.15)))
                .map_err(s)?;
        }
        chart
            .draw_series(LineSeries::new(
                mean.iter().copied(),
                COLORS[1].stroke_width(2),
            ))
            .map_err(s)?;
        chart
            .draw_series(LineSeries::new(obs.iter().copied(), BLACK.stroke_width(2)))
            .map_err(s)?;
        Ok(())
    }
}

impl Mcmc {
    /// `az.plot_trace`: per scalar element of each site (at most 8 per site; `sites` picks sites,
    /// `None` all), its density per chain (left) and its trace per chain (right).
    pub fn plot_trace(&self, path: impl AsRef<Path>, sites: Option<&[&str]>) -> Result<()> {
        let components = components(self, sites, 8)?;
        save(&TraceFigure { components }, path.as_ref())
    }

    /// `az.plot_rank`: per scalar element, each chain's histogram of the ranks of its draws
    /// among all draws (20 bins; flat when the chains mix), with the uniform level marked.
    pub fn plot_rank(&self, path: impl AsRef<Path>, sites: Option<&[&str]>) -> Result<()> {
        let components = components(self, sites, 8)?;
        save(
            &RankFigure {
                components,
                bins: 20,
            },
            path.as_ref(),
        )
    }

    /// `az.plot_posterior`: per scalar element, the density of all draws with the `prob` HPDI
    /// shaded and the mean marked (both in the panel's title).
    pub fn plot_posterior(
        &self,
        path: impl AsRef<Path>,
        sites: Option<&[&str]>,
        prob: f64,
    ) -> Result<()> {
        if !(prob > 0.0 && prob < 1.0) {
            return Err(Error::Invalid(format!(
                "plot_posterior: the HPDI probability must be in (0, 1), got {prob}"
            )));
        }
        let components = components(self, sites, 8)?;
        save(&PosteriorFigure { components, prob }, path.as_ref())
    }

    /// `az.plot_pair(divergences=True)` for two scalar elements, given as `"site"` or
    /// `"site[i]"` (flat index): every draw as a point, divergent transitions in red.
    pub fn plot_pair(&self, path: impl AsRef<Path>, x: &str, y: &str) -> Result<()> {
        let pick = |spec: &str| -> Result<Component> {
            let (site, index) = match spec.split_once('[') {
                Some((s, rest)) => {
                    let i = rest.trim_end_matches(']').parse::<usize>().map_err(|_| {
                        Error::Invalid(format!(
                            "plot_pair: `{spec}` is not `site` or `site[flat index]`"
                        ))
                    })?;
                    (s, i)
                }
                None => (spec, 0),
            };
            let all = components(self, Some(&[site]), usize::MAX)?;
            let n = all.len();
            all.into_iter()
                .nth(index)
                .ok_or_else(|| Error::MissingSite {
                    site: site.to_string(),
                    message: format!("element {index} is out of range: the site has {n} elements"),
                })
        };
        let (xc, yc) = (pick(x)?, pick(y)?);
        let divergent: Vec<bool> = self
            .chains()
            .iter()
            .flat_map(|c| c.stats.iter().map(|t| t.diverging))
            .collect();
        save(
            &PairFigure {
                x: xc,
                y: yc,
                divergent,
            },
            path.as_ref(),
        )
    }
}

/// The SVI loss curve: the losses `Svi::run` returns (or any per-step values), against the step.
pub fn loss_curve(losses: &[f64], path: impl AsRef<Path>) -> Result<()> {
    if losses.is_empty() {
        return Err(Error::Invalid("loss_curve: no losses to plot".into()));
    }
    save(&LossFigure { losses }, path.as_ref())
}

/// `az.plot_ppc`: the density of the observed data over the densities of replicated data sets,
/// e.g. `Predictive`'s draws of the observed site (`replicated`: `[draws] + observed shape`; at
/// most 100 draws are drawn).
pub fn posterior_predictive_check(
    label: &str,
    observed: &Tensor,
    replicated: &Tensor,
    path: impl AsRef<Path>,
) -> Result<()> {
    let values = |t: &Tensor| -> Result<Vec<f64>> {
        let t = t
            .f_to_kind(Kind::Double)?
            .f_to_device(Device::Cpu)?
            .f_reshape([-1])?
            .f_contiguous()?;
        Ok(Vec::<f64>::try_from(&t)?)
    };
    let obs = values(observed)?;
    let n = obs.len();
    let rep = values(replicated)?;
    if n == 0 || rep.len() % n != 0 || rep.len() / n < 1 {
        return Err(Error::Shape(format!(
            "posterior_predictive_check: replicated draws of shape {:?} are not [draws] + the \
             observed shape {:?}",
            replicated.size(),
            observed.size()
        )));
    }
    let draws = rep.len() / n;
    let step = draws.div_ceil(100);
    let replicated = (0..draws)
        .step_by(step)
        .map(|d| rep[d * n..(d + 1) * n].to_vec())
        .collect();
    save(
        &PpcFigure {
            label: label.to_string(),
            observed: obs,
            replicated,
        },
        path.as_ref(),
    )
}
