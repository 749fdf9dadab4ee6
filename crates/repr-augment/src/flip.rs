//! Random horizontal flip.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, ImageDims};

/// Configuration of [`RandomHorizontalFlip`] (torchvision's `RandomHorizontalFlip(p)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomHorizontalFlipConfig {
    /// Probability of flipping, in `[0, 1]`.
    pub probability: f64,
}

impl Default for RandomHorizontalFlipConfig {
    fn default() -> Self {
        Self { probability: 0.5 }
    }
}

impl RandomHorizontalFlipConfig {
    /// Builds the op for images of `dims`.
    pub fn init(&self, dims: ImageDims) -> Result<RandomHorizontalFlip, AugmentError> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(AugmentError::OutOfRange {
                field: "horizontal_flip.probability",
                value: self.probability,
                allowed: "0 <= probability <= 1",
            });
        }
        Ok(RandomHorizontalFlip {
            probability: self.probability,
            dims,
        })
    }
}

/// Mirror the image left-right with a given probability.
#[derive(Debug, Clone)]
pub struct RandomHorizontalFlip {
    probability: f64,
    dims: ImageDims,
}

impl RandomHorizontalFlip {
    /// Flips `image` (CHW) in place with probability `p`; returns whether it flipped.
    pub fn apply(&self, image: &mut [u8], rng: &mut impl Rng) -> bool {
        let flip = self.sample(rng);
        if flip {
            flip_rows(image, self.dims.width);
        }
        flip
    }

    /// Draws whether to flip (one draw whatever the outcome).
    pub fn sample(&self, rng: &mut impl Rng) -> bool {
        rng.random::<f64>() < self.probability
    }
}

/// Mirrors every row of a CHW image of `width` columns, in place.
pub fn flip_rows(image: &mut [u8], width: usize) {
    for row in image.chunks_exact_mut(width) {
        row.reverse();
    }
}

impl RandomHorizontalFlip {
    /// The flip probability.
    pub fn probability(&self) -> f64 {
        self.probability
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_rng;

    const DIMS: ImageDims = ImageDims {
        channels: 1,
        height: 2,
        width: 3,
    };

    #[test]
    fn flips_rows_and_respects_probability() {
        let flip = RandomHorizontalFlipConfig { probability: 0.5 }
            .init(DIMS)
            .unwrap();
        let mut flipped = 0;
        for index in 0..1000 {
            let mut image = vec![1, 2, 3, 4, 5, 6];
            if flip.apply(&mut image, &mut image_rng(3, 0, index)) {
                assert_eq!(image, vec![3, 2, 1, 6, 5, 4]);
                flipped += 1;
            } else {
                assert_eq!(image, vec![1, 2, 3, 4, 5, 6]);
            }
        }
        assert!(
            (430..570).contains(&flipped),
            "{flipped} flips in 1000 draws at p = 0.5"
        );
    }

    #[test]
    fn probability_outside_unit_interval_is_rejected() {
        assert!(
            RandomHorizontalFlipConfig { probability: 1.5 }
                .init(DIMS)
                .is_err()
        );
    }
}
