//! Gaussian blur (SimCLR, Chen et al. 2020, Appendix A: kernel 10% of the image side, sigma in
//! `[0.1, 2.0]`), with torchvision's `GaussianBlur` semantics: reflect padding, a `f32` kernel,
//! `u8` results rounded half to even.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ImageDims;
use crate::error::{AugmentError, check_probability, check_range};
use crate::resized_crop::uniform;

/// Configuration of [`GaussianBlur`] (torchvision's `GaussianBlur(kernel_size, sigma)`, applied
/// with `probability`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianBlurConfig {
    /// Side of the square kernel: odd and positive, and `kernel_size / 2` smaller than the image
    /// sides (reflect padding).
    pub kernel_size: usize,
    /// Range of the standard deviation, drawn uniformly per image; positive.
    pub sigma: [f64; 2],
    /// Probability of blurring an image.
    pub probability: f64,
}

impl Default for GaussianBlurConfig {
    /// SimCLR's ImageNet blur: kernel 23 (10% of 224, made odd), sigma in `[0.1, 2.0]`, p = 0.5.
    fn default() -> Self {
        Self {
            kernel_size: 23,
            sigma: [0.1, 2.0],
            probability: 0.5,
        }
    }
}

impl GaussianBlurConfig {
    /// SimCLR's blur for images of side `size`: kernel `0.1 * size` rounded down to an odd number
    /// (at least 3), sigma in `[0.1, 2.0]`, applied with `probability`.
    pub fn simclr(size: usize, probability: f64) -> Self {
        Self {
            kernel_size: ((size / 10) | 1).max(3),
            sigma: [0.1, 2.0],
            probability,
        }
    }

    /// Builds the op for images of `dims`.
    pub fn init(&self, dims: ImageDims) -> Result<GaussianBlur, AugmentError> {
        dims.validate()?;
        let k = self.kernel_size;
        if k == 0 || k.is_multiple_of(2) {
            return Err(AugmentError::OutOfRange {
                field: "gaussian_blur.kernel_size",
                value: k as f64,
                allowed: "an odd positive kernel size",
            });
        }
        if k / 2 >= dims.height.min(dims.width) {
            return Err(AugmentError::OutOfRange {
                field: "gaussian_blur.kernel_size",
                value: k as f64,
                allowed: "kernel_size / 2 < image height and width (reflect padding)",
            });
        }
        check_range("gaussian_blur.sigma", self.sigma)?;
        if self.sigma[0] <= 0.0 {
            return Err(AugmentError::OutOfRange {
                field: "gaussian_blur.sigma",
                value: self.sigma[0],
                allowed: "sigma > 0",
            });
        }
        check_probability("gaussian_blur.probability", self.probability)?;
        Ok(GaussianBlur {
            config: *self,
            dims,
        })
    }
}

/// Blur with a Gaussian kernel of random width.
#[derive(Debug, Clone)]
pub struct GaussianBlur {
    config: GaussianBlurConfig,
    dims: ImageDims,
}

/// The normalised 1-D Gaussian kernel `exp(-(i - c)^2 / (2 sigma^2))`, `c = (k - 1) / 2`
/// (torchvision's `softmax(-(x / sigma)^2 / 2)` over `linspace(-c, c, k)`), in `f32`.
pub fn gaussian_kernel(kernel_size: usize, sigma: f64) -> Vec<f32> {
    let c = (kernel_size as f64 - 1.0) / 2.0;
    let w: Vec<f64> = (0..kernel_size)
        .map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| (v / total) as f32).collect()
}

/// Reflect index (mirror without repeating the edge): -1 -> 1, n -> n - 2.
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let i = if i < 0 { -i } else { i };
    (if i >= n { 2 * (n - 1) - i } else { i }) as usize
}

impl GaussianBlur {
    /// The configuration.
    pub fn config(&self) -> &GaussianBlurConfig {
        &self.config
    }

    /// Draws whether to blur and, if so, sigma.
    pub fn sample(&self, rng: &mut impl Rng) -> Option<f64> {
        let apply = rng.random::<f64>() < self.config.probability;
        let [lo, hi] = self.config.sigma;
        apply.then(|| uniform(rng, lo, hi))
    }

    /// Blurs a CHW `u8` image with `sigma`, in place: separable passes in `f32` over the
    /// reflect-padded image, rounded half to even at the end.
    pub fn apply(&self, sigma: f64, image: &mut [u8], scratch: &mut Vec<f32>) {
        let ImageDims {
            height: h,
            width: w,
            ..
        } = self.dims;
        let k = self.config.kernel_size;
        let r = (k / 2) as isize;
        let kernel = gaussian_kernel(k, sigma);
        // scratch: [h * w] vertical result, then a padded line and an accumulator row.
        let padded = w + 2 * r as usize;
        scratch.clear();
        scratch.resize(h * w + padded + w, 0.0);
        let (vertical, rest) = scratch.split_at_mut(h * w);
        let (line, acc) = rest.split_at_mut(padded);
        for channel in image.chunks_exact_mut(h * w) {
            // Vertical pass (row-wise multiply-adds, taps in order).
            for y in 0..h {
                let out = &mut vertical[y * w..(y + 1) * w];
                out.fill(0.0);
                for (d, &wk) in kernel.iter().enumerate() {
                    let sy = reflect(y as isize + d as isize - r, h);
                    for (o, &v) in out.iter_mut().zip(&channel[sy * w..(sy + 1) * w]) {
                        *o += wk * v as f32;
                    }
                }
            }
            // Horizontal pass on the reflect-padded row, the same order of taps per output.
            for y in 0..h {
                let row = &vertical[y * w..(y + 1) * w];
                for (i, l) in line.iter_mut().enumerate() {
                    *l = row[reflect(i as isize - r, w)];
                }
                acc.fill(0.0);
                for (d, &wk) in kernel.iter().enumerate() {
                    for (a, &v) in acc.iter_mut().zip(&line[d..d + w]) {
                        *a += wk * v;
                    }
                }
                for (v, &a) in channel[y * w..(y + 1) * w].iter_mut().zip(acc.iter()) {
                    *v = a.round_ties_even().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_matches_the_fixture_formula() {
        // ops.json: gaussian_kernel_1d_k9_sigma2.
        let expected = [
            0.027630550638898833,
            0.06628224528636122,
            0.12383153680577533,
            0.1801738229113809,
            0.20416368871516757,
        ];
        let k = gaussian_kernel(9, 2.0);
        for (i, e) in expected.iter().enumerate() {
            assert!((k[i] as f64 - e).abs() < 1e-7 && (k[8 - i] as f64 - e).abs() < 1e-7);
        }
    }

    #[test]
    fn reflect_mirrors_without_the_edge() {
        let got: Vec<usize> = (-2..7).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, vec![2, 1, 0, 1, 2, 3, 4, 3, 2]);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let dims = ImageDims {
            channels: 3,
            height: 8,
            width: 8,
        };
        for (config, needle) in [
            (
                GaussianBlurConfig {
                    kernel_size: 4,
                    ..Default::default()
                },
                "kernel_size",
            ),
            (
                GaussianBlurConfig {
                    kernel_size: 17,
                    ..Default::default()
                },
                "kernel_size",
            ),
            (
                GaussianBlurConfig {
                    kernel_size: 3,
                    sigma: [-1.0, 2.0],
                    ..Default::default()
                },
                "sigma",
            ),
            (
                GaussianBlurConfig {
                    kernel_size: 3,
                    sigma: [2.0, 1.0],
                    ..Default::default()
                },
                "sigma",
            ),
            (
                GaussianBlurConfig {
                    kernel_size: 3,
                    probability: -0.5,
                    ..Default::default()
                },
                "probability",
            ),
        ] {
            let msg = config.init(dims).unwrap_err().to_string();
            assert!(msg.contains(&format!("gaussian_blur.{needle}")), "{msg}");
        }
    }
}
