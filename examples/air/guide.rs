//! The guide: an LSTM cell reads the image and the previous step's latents and proposes the next
//! object's presence and pose; the encoder reads the attended window and proposes its code. A
//! second LSTM (the baseline network) predicts each `z_pres` site's downstream cost.

use ppl::distributions::{Bernoulli, DistributionExt, Normal};
use ppl::poutine::InferConfig;
use ppl::tch::{Kind, Tensor};
use ppl::{module, sample_with, SampleOpts};

use super::image::image_to_window;
use super::model::data_plate;
use super::nets::Air;

/// The guide's latents, one entry per step.
pub struct Latents {
    /// `z_pres`, (n, 1).
    pub z_pres: Vec<Tensor>,
    /// `z_where`, (n, 3).
    pub z_where: Vec<Tensor>,
    /// `z_what`, (n, z_what_size).
    pub z_what: Vec<Tensor>,
    /// The indices of the images the guide ran on.
    pub indices: Tensor,
}

impl Latents {
    /// The inferred number of objects of each image, (n).
    pub fn counts(&self) -> Tensor {
        Tensor::cat(&self.z_pres, 1).sum_dim_intlist(1, false, Kind::Float)
    }
}

struct State {
    h: Tensor,
    c: Tensor,
    bl_h: Tensor,
    bl_c: Tensor,
    z_pres: Tensor,
    z_where: Tensor,
    z_what: Tensor,
}

fn opts() -> SampleOpts {
    SampleOpts::default()
}

impl Air {
    fn guide_step(&self, t: usize, data: &Tensor, prev: State) -> ppl::Result<State> {
        let n = data.size()[0];
        let flat = data.view([n, -1]);
        let rnn_input = Tensor::cat(&[&flat, &prev.z_where, &prev.z_what, &prev.z_pres], 1);
        let (h, c) = self.rnn.step(&rnn_input, &prev.h, &prev.c);
        let (z_pres_p, z_where_loc, z_where_scale) = self.predict(&h);

        // The baseline: its inputs are cut from the guide's graph, so that the baseline loss
        // trains only the baseline networks.
        let bl_input = Tensor::cat(
            &[
                &flat,
                &prev.z_where.detach(),
                &prev.z_what.detach(),
                &prev.z_pres.detach(),
            ],
            1,
        );
        let (bl_h, bl_c) = self.bl_rnn.step(&bl_input, &prev.bl_h, &prev.bl_c);
        let mut bl_value = ppl::tch::nn::Module::forward(&self.bl_predict, &bl_h) * &prev.z_pres;
        if let Some(k) = self.cfg.baseline_scalar {
            bl_value *= k;
        }

        let z_pres = sample_with(
            format!("z_pres_{t}"),
            Bernoulli::new(z_pres_p * &prev.z_pres)?.to_event(1)?,
            SampleOpts {
                infer: Some(InferConfig {
                    baseline_value: Some(bl_value.squeeze_dim(-1)),
                    ..Default::default()
                }),
                ..opts()
            },
        )?;
        let mask = z_pres.to_kind(Kind::Bool);
        let (prior_loc, prior_scale) = self.z_where_prior();
        let z_where = sample_with(
            format!("z_where_{t}"),
            Normal::new(z_where_loc + prior_loc, z_where_scale * prior_scale)?
                .mask(&mask)?
                .to_event(1)?,
            opts(),
        )?;
        let x_att = image_to_window(&z_where, self.cfg.window_size, self.cfg.x_size, data);
        let (what_loc, what_scale) = self.encode(&x_att);
        let z_what = sample_with(
            format!("z_what_{t}"),
            Normal::new(what_loc, what_scale)?
                .mask(&mask)?
                .to_event(1)?,
            opts(),
        )?;
        Ok(State {
            h,
            c,
            bl_h,
            bl_c,
            z_pres,
            z_where,
            z_what,
        })
    }

    /// The guide of `data` (N, x_size, x_size), on the same random batch as [`Air::model`] under
    /// replay. Returns the latents of each step.
    pub fn guide(&self, data: &Tensor, batch_size: Option<i64>) -> ppl::Result<Latents> {
        module("guide", &self.guide_vs)?;
        module("baseline", &self.baseline_vs)?;
        let plate = data_plate(data, batch_size, self.device);
        let p = plate.enter()?;
        let indices = p.indices().shallow_clone();
        let batch = data.index_select(0, &indices);
        let n = batch.size()[0];
        let mut state = State {
            h: self.h_init.expand([n, -1], true),
            c: self.c_init.expand([n, -1], true),
            bl_h: self.bl_h_init.expand([n, -1], true),
            bl_c: self.bl_c_init.expand([n, -1], true),
            z_pres: Tensor::ones([n, 1], (Kind::Float, self.device)),
            z_where: self.z_where_init.expand([n, -1], true),
            z_what: self.z_what_init.expand([n, -1], true),
        };
        let (mut z_pres, mut z_where, mut z_what) = (Vec::new(), Vec::new(), Vec::new());
        for t in 0..self.cfg.num_steps {
            state = self.guide_step(t, &batch, state)?;
            z_pres.push(state.z_pres.shallow_clone());
            z_where.push(state.z_where.shallow_clone());
            z_what.push(state.z_what.shallow_clone());
        }
        Ok(Latents {
            z_pres,
            z_where,
            z_what,
            indices,
        })
    }

    /// The canvas the decoder draws from the latents (the mean of the likelihood), (n, x, x).
    pub fn reconstruct(&self, z: &Latents) -> Tensor {
        let n = z.z_pres[0].size()[0];
        let s = self.cfg.x_size;
        let mut x = Tensor::zeros([n, s, s], (Kind::Float, self.device));
        for t in 0..z.z_pres.len() {
            let y_att = self.decode(&z.z_what[t]);
            let y = super::image::window_to_image(&z.z_where[t], self.cfg.window_size, s, &y_att);
            x += y * z.z_pres[t].view([-1, 1, 1]);
        }
        x
    }
}
