//! The generative model: up to `num_steps` objects, each present (`z_pres`), posed (`z_where`)
//! and drawn (`z_what` through the decoder), added onto the canvas.

use ppl::distributions::{Bernoulli, DistributionExt, Normal};
use ppl::poutine::Plate;
use ppl::tch::{Kind, Tensor};
use ppl::{module, sample};

use super::image::window_to_image;
use super::nets::Air;

/// The prior's latents and the canvas after each step.
pub struct PriorOut {
    /// `z_where` of each step, (n, 3).
    pub z_where: Vec<Tensor>,
    /// `z_pres` of each step, (n, 1).
    pub z_pres: Vec<Tensor>,
    /// The final canvas, (n, x_size, x_size).
    pub x: Tensor,
}

impl Air {
    /// One step of the prior: returns `(x, z_pres, z_where)`.
    fn prior_step(
        &self,
        t: usize,
        n: i64,
        prev_x: &Tensor,
        prev_pres: &Tensor,
    ) -> ppl::Result<(Tensor, Tensor, Tensor)> {
        let p = prev_pres * self.z_pres_prior_p(t);
        let z_pres = sample(format!("z_pres_{t}"), Bernoulli::new(p)?.to_event(1)?, None)?;
        // Once an object is absent no later object is drawn: its choices are masked out.
        let mask = z_pres.to_kind(Kind::Bool);
        let (loc, scale) = self.z_where_prior();
        let z_where = sample(
            format!("z_where_{t}"),
            Normal::new(loc.expand([n, 3], true), scale.expand([n, 3], true))?
                .mask(&mask)?
                .to_event(1)?,
            None,
        )?;
        let zs = self.cfg.z_what_size;
        let opts = (Kind::Float, self.device);
        let z_what = sample(
            format!("z_what_{t}"),
            Normal::new(Tensor::zeros([n, zs], opts), Tensor::ones([n, zs], opts))?
                .mask(&mask)?
                .to_event(1)?,
            None,
        )?;
        let y_att = self.decode(&z_what);
        let y = window_to_image(&z_where, self.cfg.window_size, self.cfg.x_size, &y_att);
        let x = prev_x + y * z_pres.view([-1, 1, 1]);
        Ok((x, z_pres, z_where))
    }

    /// The prior over `n` images.
    pub fn prior(&self, n: i64) -> ppl::Result<PriorOut> {
        let s = self.cfg.x_size;
        let opts = (Kind::Float, self.device);
        let mut x = Tensor::zeros([n, s, s], opts);
        let mut pres = Tensor::ones([n, 1], opts);
        let (mut z_where, mut z_pres) = (Vec::new(), Vec::new());
        for t in 0..self.cfg.num_steps {
            let (x1, p1, w1) = self.prior_step(t, n, &x, &pres)?;
            x = x1;
            pres = p1;
            z_pres.push(pres.shallow_clone());
            z_where.push(w1);
        }
        Ok(PriorOut { z_where, z_pres, x })
    }

    /// The model of `data` (N, x_size, x_size), on a random batch of `batch_size` images (all of
    /// them when `None` or when N is smaller).
    pub fn model(&self, data: &Tensor, batch_size: Option<i64>) -> ppl::Result<()> {
        module("decode", &self.decode_vs)?;
        let plate = data_plate(data, batch_size, self.device);
        let p = plate.enter()?;
        let batch = data.index_select(0, p.indices());
        let n = batch.size()[0];
        let out = self.prior(n)?;
        let sd = Tensor::full(
            [n, self.cfg.x_size * self.cfg.x_size],
            self.cfg.likelihood_sd,
            (Kind::Float, self.device),
        );
        let _ = sample(
            "obs",
            Normal::new(out.x.view([n, -1]), sd)?.to_event(1)?,
            Some(batch.view([n, -1])),
        )?;
        Ok(())
    }
}

/// The plate over the images, subsampled to `batch_size`.
pub(crate) fn data_plate(
    data: &Tensor,
    batch_size: Option<i64>,
    device: ppl::tch::Device,
) -> Plate {
    let n = data.size()[0];
    let plate = Plate::new("data", n).device(device);
    match batch_size {
        Some(b) if b < n => plate.subsample_size(b),
        _ => plate,
    }
}
