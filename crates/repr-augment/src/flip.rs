//! Random horizontal flip.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, ImageDims};

/// Configuration of [`RandomHorizontalFlip`] (torchvision's `RandomHorizontalFlip(p)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomHorizontalFlipConfig {
    /// Probability of flipping, in `[0, 1]`.
    pub probability: f64,
}

impl RandomHorizontalFlipConfig {
    /// Builds the op for images of `dims`.
    pub fn init(&self, dims: ImageDims) -> Result<RandomHorizontalFlip, AugmentError> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(AugmentError::OutOfRange {
                field: "probability",
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
        // Always draw, so the stream advances the same way whatever the outcome.
        let flip = rng.random::<f64>() < self.probability;
        if flip {
            for row in image.chunks_exact_mut(self.dims.width) {
                row.reverse();
            }
        }
        flip
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
