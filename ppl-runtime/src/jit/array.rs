//! Dense row-major float64 arrays with numpy broadcasting: the values of a compiled program.

/// A dense, row-major array of `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arr {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f64>,
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The broadcast of two shapes, or `None` if they do not broadcast.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Strides of `shape` seen from the broadcast shape `out` (0 along broadcast dimensions).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let s = strides(shape);
    let k = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < k || shape[i - k] == 1 {
                0
            } else {
                s[i - k]
            }
        })
        .collect()
}

/// For each flat index of `out`, the flat index into an array of `shape` broadcast to it.
pub(crate) fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let bs = broadcast_strides(shape, out);
    let n: usize = out.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; out.len()];
    let mut off = 0usize;
    for _ in 0..n {
        idx.push(off);
        // Increment the multi-index, updating the offset.
        for d in (0..out.len()).rev() {
            counter[d] += 1;
            off += bs[d];
            if counter[d] < out[d] {
                break;
            }
            off -= bs[d] * counter[d];
            counter[d] = 0;
        }
    }
    idx
}

impl Arr {
    /// An array of `shape` filled with `v`.
    pub fn full(shape: &[usize], v: f64) -> Arr {
        Arr {
            shape: shape.to_vec(),
            data: vec![v; shape.iter().product()],
        }
    }

    /// A scalar.
    pub fn scalar(v: f64) -> Arr {
        Arr {
            shape: Vec::new(),
            data: vec![v],
        }
    }

    /// The number of values.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// `f` applied to each value.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Arr {
        Arr {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }

    /// `f` applied elementwise to `self` and `other`, broadcast.
    pub fn zip(&self, other: &Arr, f: impl Fn(f64, f64) -> f64) -> Option<Arr> {
        if self.shape == other.shape {
            return Some(Arr {
                shape: self.shape.clone(),
                data: self
                    .data
                    .iter()
                    .zip(&other.data)
                    .map(|(&a, &b)| f(a, b))
                    .collect(),
            });
        }
        let shape = broadcast_shapes(&self.shape, &other.shape)?;
        if other.numel() == 1 && shape == self.shape {
            let b = other.data[0];
            return Some(Arr {
                shape,
                data: self.data.iter().map(|&a| f(a, b)).collect(),
            });
        }
        if self.numel() == 1 && shape == other.shape {
            let a = self.data[0];
            return Some(Arr {
                shape,
                data: other.data.iter().map(|&b| f(a, b)).collect(),
            });
        }
        let ia = broadcast_index(&self.shape, &shape);
        let ib = broadcast_index(&other.shape, &shape);
        let data = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| f(self.data[i], other.data[j]))
            .collect();
        Some(Arr { shape, data })
    }

    /// `self` broadcast to `shape` (which it must broadcast to).
    pub fn expand_to(&self, shape: &[usize]) -> Arr {
        if self.shape == shape {
            return self.clone();
        }
        if self.numel() == 1 {
            return Arr::full(shape, self.data[0]);
        }
        let idx = broadcast_index(&self.shape, shape);
        Arr {
            shape: shape.to_vec(),
            data: idx.iter().map(|&i| self.data[i]).collect(),
        }
    }

    /// [`Arr::sum_to`], reusing `self` when it already has `shape`.
    pub fn into_sum_to(self, shape: &[usize]) -> Arr {
        if self.shape == shape {
            self
        } else {
            self.sum_to(shape)
        }
    }

    /// `self` summed down to `shape`, which broadcasts to `self.shape` (the adjoint of
    /// broadcasting).
    pub fn sum_to(&self, shape: &[usize]) -> Arr {
        if self.shape == shape {
            return self.clone();
        }
        let mut out = Arr::full(shape, 0.0);
        if out.numel() == 1 {
            let mut acc = [0.0f64; 4];
            let c = self.data.chunks_exact(4);
            let tail: f64 = c.remainder().iter().sum();
            for v in c {
                for j in 0..4 {
                    acc[j] += v[j];
                }
            }
            out.data[0] = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
            return out;
        }
        let idx = broadcast_index(shape, &self.shape);
        for (v, &i) in self.data.iter().zip(&idx) {
            out.data[i] += v;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_and_its_adjoint() {
        let a = Arr {
            shape: vec![2, 1],
            data: vec![1.0, 2.0],
        };
        let b = Arr {
            shape: vec![3],
            data: vec![10.0, 20.0, 30.0],
        };
        let c = a.zip(&b, |x, y| x + y).expect("broadcasts");
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
        assert_eq!(c.sum_to(&[2, 1]).data, vec![63.0, 66.0]);
        assert_eq!(c.sum_to(&[3]).data, vec![23.0, 43.0, 63.0]);
        assert_eq!(c.sum_to(&[]).data, vec![129.0]);
        assert_eq!(a.expand_to(&[2, 2]).data, vec![1.0, 1.0, 2.0, 2.0]);
        assert!(broadcast_shapes(&[2], &[3]).is_none());
    }
}
