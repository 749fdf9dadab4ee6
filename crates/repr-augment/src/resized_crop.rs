//! Random resized crop (Szegedy et al. 2015, "Going deeper with convolutions"; the first
//! augmentation of SimCLR), with torchvision's `RandomResizedCrop` sampling.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{AugmentError, check_range};
use crate::resize::{ResizeScratch, resized_crop_u8};
use crate::{CropBox, ImageDims};

/// Resampling filter of [`RandomResizedCrop`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Bilinear (a triangle filter), torchvision's default.
    #[default]
    Bilinear,
}

/// Configuration of [`RandomResizedCrop`] (torchvision's `RandomResizedCrop(size, scale, ratio,
/// interpolation=BILINEAR, antialias=True)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomResizedCropConfig {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Range of the crop's area as a fraction of the image's, in `(0, 1]`.
    pub scale: [f64; 2],
    /// Range of the crop's aspect ratio (width / height), positive.
    pub ratio: [f64; 2],
    /// The resampling filter.
    pub interpolation: Interpolation,
    /// Widen the filter when downsampling (torchvision's `antialias=True`).
    pub antialias: bool,
}

impl Default for RandomResizedCropConfig {
    fn default() -> Self {
        Self {
            size: [224, 224],
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
            interpolation: Interpolation::Bilinear,
            antialias: true,
        }
    }
}

impl RandomResizedCropConfig {
    /// A square crop of `size` with the other fields at torchvision's defaults.
    pub fn new(size: usize) -> Self {
        Self {
            size: [size, size],
            ..Self::default()
        }
    }

    /// Builds the op for input images of `dims`. The output may be larger than the input (the
    /// crop is upsampled); what is invalid is an empty image or output, a scale outside `(0, 1]`,
    /// a ratio that is not positive, or a range with `min > max`.
    pub fn init(&self, dims: ImageDims) -> Result<RandomResizedCrop, AugmentError> {
        dims.validate()?;
        for (i, &s) in self.size.iter().enumerate() {
            if s == 0 {
                return Err(AugmentError::OutOfRange {
                    field: if i == 0 {
                        "random_resized_crop.size[0]"
                    } else {
                        "random_resized_crop.size[1]"
                    },
                    value: 0.0,
                    allowed: "a positive size",
                });
            }
        }
        check_range("random_resized_crop.scale", self.scale)?;
        check_range("random_resized_crop.ratio", self.ratio)?;
        for s in self.scale {
            if !(s > 0.0 && s <= 1.0) {
                return Err(AugmentError::OutOfRange {
                    field: "random_resized_crop.scale",
                    value: s,
                    allowed: "0 < scale <= 1",
                });
            }
        }
        if self.ratio[0] <= 0.0 {
            return Err(AugmentError::OutOfRange {
                field: "random_resized_crop.ratio",
                value: self.ratio[0],
                allowed: "a positive aspect ratio",
            });
        }
        Ok(RandomResizedCrop {
            config: *self,
            input: dims,
        })
    }
}

/// Crop a random area and aspect ratio, then resize it to a fixed size.
#[derive(Debug, Clone)]
pub struct RandomResizedCrop {
    config: RandomResizedCropConfig,
    input: ImageDims,
}

impl RandomResizedCrop {
    /// The configuration.
    pub fn config(&self) -> &RandomResizedCropConfig {
        &self.config
    }

    /// The input dimensions.
    pub fn input_dims(&self) -> ImageDims {
        self.input
    }

    /// The output dimensions.
    pub fn output_dims(&self) -> ImageDims {
        ImageDims {
            channels: self.input.channels,
            height: self.config.size[0],
            width: self.config.size[1],
        }
    }

    /// Draws a crop window exactly as torchvision's `RandomResizedCrop.get_params`: up to 10
    /// tries of area `U(scale) * H * W` and log-uniform aspect ratio, each kept if it fits, with a
    /// uniform position; otherwise a centre crop clamped to the ratio range.
    pub fn sample(&self, rng: &mut impl Rng) -> CropBox {
        let (height, width) = (self.input.height, self.input.width);
        let area = (height * width) as f64;
        let [smin, smax] = self.config.scale;
        let [rmin, rmax] = self.config.ratio;
        let (lmin, lmax) = (rmin.ln(), rmax.ln());
        for _ in 0..10 {
            let target_area = area * uniform(rng, smin, smax);
            let aspect = uniform(rng, lmin, lmax).exp();
            // Python's round: half to even.
            let w = (target_area * aspect).sqrt().round_ties_even() as usize;
            let h = (target_area / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropBox {
                    top,
                    left,
                    height: h,
                    width: w,
                };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (h, w) = if in_ratio < rmin {
            let w = width;
            (
                ((w as f64 / rmin).round_ties_even() as usize).clamp(1, height),
                w,
            )
        } else if in_ratio > rmax {
            let h = height;
            (
                h,
                ((h as f64 * rmax).round_ties_even() as usize).clamp(1, width),
            )
        } else {
            (height, width)
        };
        CropBox {
            top: (height - h) / 2,
            left: (width - w) / 2,
            height: h,
            width: w,
        }
    }

    /// Crops `src` (input dims) to `crop` and resizes it into `out` (output dims).
    ///
    /// # Panics
    /// If the buffers do not have the lengths of the dims or the crop is outside the image.
    pub fn apply(&self, crop: CropBox, src: &[u8], out: &mut [u8]) {
        self.apply_with(crop, src, out, &mut ResizeScratch::default());
    }

    pub(crate) fn apply_with(
        &self,
        crop: CropBox,
        src: &[u8],
        out: &mut [u8],
        scratch: &mut ResizeScratch,
    ) {
        assert_eq!(src.len(), self.input.len(), "input length");
        assert!(
            crop.top + crop.height <= self.input.height
                && crop.left + crop.width <= self.input.width
                && crop.height > 0
                && crop.width > 0,
            "crop {crop:?} outside {:?}",
            self.input
        );
        let [out_h, out_w] = self.config.size;
        resized_crop_u8(
            src,
            self.input.channels,
            self.input.width,
            crop,
            out_h,
            out_w,
            self.config.antialias,
            scratch,
            out,
        );
    }
}

/// `U(min, max)` (`min` when the range is empty).
pub(crate) fn uniform(rng: &mut impl Rng, min: f64, max: f64) -> f64 {
    min + (max - min) * rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_rng;

    const DIMS: ImageDims = ImageDims {
        channels: 3,
        height: 40,
        width: 60,
    };

    #[test]
    fn crops_fit_the_image_and_cover_the_configured_ranges() {
        let op = RandomResizedCropConfig::new(16).init(DIMS).unwrap();
        for i in 0..2000 {
            let c = op.sample(&mut image_rng(1, 0, i));
            assert!(c.height > 0 && c.width > 0);
            assert!(c.top + c.height <= DIMS.height && c.left + c.width <= DIMS.width);
        }
    }

    #[test]
    fn impossible_ratio_falls_back_to_a_centre_crop() {
        // Ratio 10..20 on a 40x60 image: width must be >= 10 x height, never fits at this area.
        let config = RandomResizedCropConfig {
            scale: [0.9, 1.0],
            ratio: [10.0, 20.0],
            ..RandomResizedCropConfig::new(8)
        };
        let c = config.init(DIMS).unwrap().sample(&mut image_rng(0, 0, 0));
        // in_ratio 1.5 < 10: w = 60, h = round(60 / 10) = 6, centred.
        assert_eq!(
            c,
            CropBox {
                top: 17,
                left: 0,
                height: 6,
                width: 60
            }
        );
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let bad = [
            RandomResizedCropConfig {
                scale: [0.0, 1.0],
                ..Default::default()
            },
            RandomResizedCropConfig {
                scale: [0.5, 1.5],
                ..Default::default()
            },
            RandomResizedCropConfig {
                scale: [0.9, 0.1],
                ..Default::default()
            },
            RandomResizedCropConfig {
                ratio: [2.0, 1.0],
                ..Default::default()
            },
            RandomResizedCropConfig {
                ratio: [-1.0, 1.0],
                ..Default::default()
            },
        ];
        for config in bad {
            let msg = config.init(DIMS).unwrap_err().to_string();
            assert!(msg.contains("random_resized_crop."), "{msg}");
        }
        let msg = RandomResizedCropConfig {
            size: [0, 4],
            ..Default::default()
        }
        .init(DIMS)
        .unwrap_err()
        .to_string();
        assert!(msg.contains("size[0]"), "{msg}");
        let empty = ImageDims {
            channels: 3,
            height: 0,
            width: 5,
        };
        assert!(matches!(
            RandomResizedCropConfig::new(4).init(empty),
            Err(AugmentError::InvalidImage { .. })
        ));
    }
}
