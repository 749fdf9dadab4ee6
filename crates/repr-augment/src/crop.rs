//! Random crop after zero padding (the standard CIFAR / Fashion-MNIST training augmentation).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, ImageDims};

/// Configuration of [`RandomCrop`]: pad each side with zeros, then crop back to the input size at
/// a uniformly random offset (torchvision's `RandomCrop(size, padding)` with `size` = input size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCropConfig {
    /// Zero padding added on each side, in pixels.
    pub padding: usize,
}

impl RandomCropConfig {
    /// Builds the op for images of `dims`; the padding must be smaller than the image.
    pub fn init(&self, dims: ImageDims) -> Result<RandomCrop, AugmentError> {
        if self.padding >= dims.height.min(dims.width) {
            return Err(AugmentError::OutOfRange {
                field: "padding",
                value: self.padding as f64,
                allowed: "padding < image height and width",
            });
        }
        Ok(RandomCrop {
            padding: self.padding,
            dims,
        })
    }
}

/// Zero-pad then random-crop to the original size.
#[derive(Debug, Clone)]
pub struct RandomCrop {
    padding: usize,
    dims: ImageDims,
}

impl RandomCrop {
    /// Writes the augmented `src` into `out` (both CHW, `dims` as given to `init`).
    pub fn apply(&self, src: &[u8], out: &mut [u8], rng: &mut impl Rng) {
        let ImageDims {
            channels,
            height,
            width,
        } = self.dims;
        let range = 2 * self.padding;
        // Offset of the crop window in padded coordinates, minus the padding: -p..=p.
        let dy = rng.random_range(0..=range) as isize - self.padding as isize;
        let dx = rng.random_range(0..=range) as isize - self.padding as isize;
        for c in 0..channels {
            let plane = c * height * width;
            for y in 0..height {
                let sy = y as isize + dy;
                let row = &mut out[plane + y * width..plane + (y + 1) * width];
                if sy < 0 || sy >= height as isize {
                    row.fill(0);
                    continue;
                }
                let src_row = &src[plane + sy as usize * width..plane + (sy as usize + 1) * width];
                for (x, value) in row.iter_mut().enumerate() {
                    let sx = x as isize + dx;
                    *value = if (0..width as isize).contains(&sx) {
                        src_row[sx as usize]
                    } else {
                        0
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_rng;

    const DIMS: ImageDims = ImageDims {
        channels: 2,
        height: 4,
        width: 5,
    };

    fn ramp() -> Vec<u8> {
        (1..=DIMS.len() as u8).collect()
    }

    #[test]
    fn zero_padding_is_identity() {
        let crop = RandomCropConfig { padding: 0 }.init(DIMS).unwrap();
        let mut out = vec![0; DIMS.len()];
        crop.apply(&ramp(), &mut out, &mut image_rng(0, 0, 0));
        assert_eq!(out, ramp());
    }

    #[test]
    fn crops_are_shifted_copies_with_zero_border() {
        let crop = RandomCropConfig { padding: 2 }.init(DIMS).unwrap();
        let src = ramp();
        let mut shifts = std::collections::HashSet::new();
        for index in 0..200 {
            let mut out = vec![0; DIMS.len()];
            crop.apply(&src, &mut out, &mut image_rng(7, 0, index));
            // Recover the shift from a surviving pixel and check every pixel against it.
            let shift = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..DIMS.channels).all(|c| {
                        (0..DIMS.height).all(|y| {
                            (0..DIMS.width).all(|x| {
                                let (sy, sx) = (y as isize + dy, x as isize + dx);
                                let inside = (0..DIMS.height as isize).contains(&sy)
                                    && (0..DIMS.width as isize).contains(&sx);
                                let expected = if inside {
                                    src[(c * DIMS.height + sy as usize) * DIMS.width + sx as usize]
                                } else {
                                    0
                                };
                                out[(c * DIMS.height + y) * DIMS.width + x] == expected
                            })
                        })
                    })
                });
            shifts.insert(shift.expect("output is not a shifted copy of the input"));
        }
        assert_eq!(
            shifts.len(),
            25,
            "all 5x5 offsets should occur in 200 draws"
        );
    }

    #[test]
    fn padding_as_large_as_the_image_is_rejected() {
        let err = RandomCropConfig { padding: 4 }.init(DIMS).unwrap_err();
        assert!(err.to_string().contains("padding"));
    }
}
