//! Spatial transformers (affine grid + grid sample) and PNG output with boxes drawn.

use std::io::Write;
use std::path::Path;

use ppl::tch::{Kind, Tensor};

/// `[s, x, y]` rows to `[[s, 0, x], [0, s, y]]` matrices: (n, 3) to (n, 2, 3).
pub fn expand_z_where(z_where: &Tensor) -> Tensor {
    let n = z_where.size()[0];
    let out = Tensor::cat(
        &[
            z_where.zeros_like().narrow(1, 0, 1),
            z_where.shallow_clone(),
        ],
        1,
    );
    let ix = Tensor::from_slice(&[1i64, 0, 2, 0, 1, 3]).to_device(z_where.device());
    out.index_select(1, &ix).view([n, 2, 3])
}

/// The inverse transform's parameters: `[s, x, y]` to `[1/s, -x/s, -y/s]`.
pub fn z_where_inv(z_where: &Tensor) -> Tensor {
    let ones = z_where.ones_like().narrow(1, 0, 1);
    let out = Tensor::cat(&[ones, -z_where.narrow(1, 1, 2)], 1);
    out / z_where.narrow(1, 0, 1)
}

fn sample_grid(src: &Tensor, theta: &Tensor, out_size: i64) -> Tensor {
    let n = src.size()[0];
    let grid = Tensor::affine_grid_generator(theta, [n, 1, out_size, out_size], false);
    // Bilinear interpolation, zero padding, align_corners = false (torch's defaults).
    src.grid_sampler(&grid, 0, 0, false)
}

/// Places windows (n, window²) on canvases (n, image, image) at the poses `z_where` (n, 3).
pub fn window_to_image(z_where: &Tensor, window: i64, image: i64, windows: &Tensor) -> Tensor {
    let n = windows.size()[0];
    let theta = expand_z_where(z_where);
    sample_grid(&windows.view([n, 1, window, window]), &theta, image).view([n, image, image])
}

/// Crops windows (n, window²) out of images (n, image, image) at the poses `z_where` (n, 3).
pub fn image_to_window(z_where: &Tensor, window: i64, image: i64, images: &Tensor) -> Tensor {
    let n = images.size()[0];
    let theta = expand_z_where(&z_where_inv(z_where));
    sample_grid(&images.view([n, 1, image, image]), &theta, window).view([n, -1])
}

/// An RGB image in memory.
#[derive(Clone, Debug)]
pub struct Rgb {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Rgb {
        Rgb {
            width,
            height,
            pixels: vec![0; width * height * 3],
        }
    }

    /// Sets one pixel (ignored outside the image).
    pub fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Copies a grey image (h, w) with values in [0, 1] to `(x0, y0)`.
    pub fn blit_grey(&mut self, img: &Tensor, x0: i64, y0: i64) {
        let (h, w) = (img.size()[0], img.size()[1]);
        let v: Vec<f32> = Vec::try_from(
            img.to_kind(Kind::Float)
                .clamp(0.0, 1.0)
                .to_device(ppl::tch::Device::Cpu)
                .contiguous()
                .view([-1]),
        )
        .expect("pixels");
        for y in 0..h {
            for x in 0..w {
                let g = (v[(y * w + x) as usize] * 255.0).round() as u8;
                self.put(x0 + x, y0 + y, [g, g, g]);
            }
        }
    }

    /// Draws the outline of a rectangle.
    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for x in x0..=x1 {
            self.put(x, y0, c);
            self.put(x, y1, c);
        }
        for y in y0..=y1 {
            self.put(x0, y, c);
            self.put(x1, y, c);
        }
    }

    /// Writes the image as an 8-bit RGB PNG.
    pub fn save_png(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let mut raw = Vec::with_capacity((self.width * 3 + 1) * self.height);
        for row in self.pixels.chunks(self.width * 3) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&raw)?;
        let idat = z.finish()?;
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.width as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.height as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        std::fs::write(path, out)
    }
}

/// Colors of the boxes of steps 0, 1, 2, ...
pub const BOX_COLORS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [64, 128, 255], [255, 255, 0]];

/// The box of pose `[s, x, y]` on an image of side `size` drawn at `(x0, y0)`: the window
/// covers canvas coordinates `(-1 - x)/s .. (1 - x)/s` (and likewise in y).
pub fn draw_box(img: &mut Rgb, z_where: [f32; 3], size: i64, x0: i64, y0: i64, c: [u8; 3]) {
    let [s, x, y] = z_where;
    let to_px = |u: f32| ((u + 1.0) / 2.0 * size as f32).round() as i64;
    let (l, r) = (to_px((-1.0 - x) / s), to_px((1.0 - x) / s));
    let (t, b) = (to_px((-1.0 - y) / s), to_px((1.0 - y) / s));
    img.rect(x0 + l, y0 + t, x0 + r - 1, y0 + b - 1, c);
}
