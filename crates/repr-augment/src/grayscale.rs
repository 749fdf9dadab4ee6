//! Random grayscale (SimCLR's colour drop, p = 0.2).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{AugmentError, check_probability};

/// Configuration of [`RandomGrayscale`] (torchvision's `RandomGrayscale(p)`; the output keeps
/// the input's channel count).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomGrayscaleConfig {
    /// Probability of converting an image to gray.
    pub probability: f64,
}

impl Default for RandomGrayscaleConfig {
    fn default() -> Self {
        Self { probability: 0.2 }
    }
}

impl RandomGrayscaleConfig {
    /// Builds the op.
    pub fn init(&self) -> Result<RandomGrayscale, AugmentError> {
        check_probability("random_grayscale.probability", self.probability)?;
        Ok(RandomGrayscale {
            probability: self.probability,
        })
    }
}

/// Replace the colours by their luma with a given probability (no effect on 1 channel).
#[derive(Debug, Clone)]
pub struct RandomGrayscale {
    probability: f64,
}

impl RandomGrayscale {
    /// Draws whether to convert.
    pub fn sample(&self, rng: &mut impl Rng) -> bool {
        rng.random::<f64>() < self.probability
    }
}
