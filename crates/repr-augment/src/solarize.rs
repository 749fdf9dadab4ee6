//! Random solarization (BYOL, Grill et al. 2020, Table 6: p = 0 / 0.2 for the two views).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{AugmentError, check_probability};

/// Configuration of [`Solarize`] (torchvision's `RandomSolarize(threshold, p)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolarizeConfig {
    /// Values `>= threshold` (a fraction of the maximum, in `[0, 1]`) are inverted; 0.5 is
    /// torchvision's `uint8` threshold 128.
    pub threshold: f64,
    /// Probability of solarizing an image.
    pub probability: f64,
}

impl Default for SolarizeConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            probability: 0.2,
        }
    }
}

impl SolarizeConfig {
    /// Builds the op.
    pub fn init(&self) -> Result<Solarize, AugmentError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(AugmentError::OutOfRange {
                field: "solarize.threshold",
                value: self.threshold,
                allowed: "a fraction of the maximum value in [0, 1]",
            });
        }
        check_probability("solarize.probability", self.probability)?;
        Ok(Solarize { config: *self })
    }
}

/// Invert the values above a threshold with a given probability.
#[derive(Debug, Clone)]
pub struct Solarize {
    config: SolarizeConfig,
}

impl Solarize {
    /// The configuration.
    pub fn config(&self) -> &SolarizeConfig {
        &self.config
    }

    /// Draws whether to solarize.
    pub fn sample(&self, rng: &mut impl Rng) -> bool {
        rng.random::<f64>() < self.config.probability
    }
}
