//! Conversion of `u8` images to normalised `f32` (torchvision's `ToDtype(float32, scale=True)`
//! followed by `Normalize(mean, std)`).

use serde::{Deserialize, Serialize};

use crate::AugmentError;

/// Configuration of [`Normalize`]: per-channel mean and standard deviation in `[0, 1]` units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel (positive).
    pub std: Vec<f32>,
}

impl Default for NormalizeConfig {
    /// The ImageNet statistics torchvision's models use.
    fn default() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }
}

impl NormalizeConfig {
    /// Scaling to `[0, 1]` only (mean 0, std 1): torchvision's `ToDtype(float32, scale=True)`.
    pub fn unit(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// Builds the op for images of `channels` channels.
    pub fn init(&self, channels: usize) -> Result<Normalize, AugmentError> {
        for (field, len) in [
            ("normalize.mean", self.mean.len()),
            ("normalize.std", self.std.len()),
        ] {
            if len != channels {
                return Err(AugmentError::LengthMismatch {
                    field,
                    expected: channels,
                    actual: len,
                });
            }
        }
        if let Some(&s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(AugmentError::OutOfRange {
                field: "normalize.std",
                value: s as f64,
                allowed: "a positive finite standard deviation",
            });
        }
        if let Some(&m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(AugmentError::OutOfRange {
                field: "normalize.mean",
                value: m as f64,
                allowed: "a finite mean",
            });
        }
        let tables = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(&m, &s)| std::array::from_fn(|v| (to_unit(v as u8) - m) / s))
            .collect();
        Ok(Normalize {
            config: self.clone(),
            tables,
        })
    }
}

/// torchvision's `u8` -> `f32` conversion: `v * (1 / 255)` (the constant rounded to `f32`; not
/// `v / 255`, which differs by one ulp for 126 of the 256 values).
#[inline]
pub fn to_unit(v: u8) -> f32 {
    v as f32 * (1.0f32 / 255.0)
}

/// Per-channel normalisation of `u8` CHW images into `f32`: `(v * (1/255) - mean) / std`.
#[derive(Debug, Clone)]
pub struct Normalize {
    config: NormalizeConfig,
    tables: Vec<[f32; 256]>,
}

impl Normalize {
    /// The configuration.
    pub fn config(&self) -> &NormalizeConfig {
        &self.config
    }

    /// Writes the normalised values of a CHW `u8` image into `out` (same length).
    ///
    /// # Panics
    /// If the lengths differ or do not split into the configured channels.
    pub fn apply(&self, image: &[u8], out: &mut [f32]) {
        assert_eq!(image.len(), out.len(), "input and output lengths differ");
        let plane = image.len() / self.tables.len();
        assert_eq!(
            plane * self.tables.len(),
            image.len(),
            "channels do not divide the image"
        );
        for ((table, values), out) in self
            .tables
            .iter()
            .zip(image.chunks_exact(plane))
            .zip(out.chunks_exact_mut(plane))
        {
            for (o, &v) in out.iter_mut().zip(values) {
                *o = table[v as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_conversion_is_torchvisions() {
        // 1/255 rounded to f32, times v: differs from v / 255 for some values.
        let differs = (0..=255u8)
            .filter(|&v| to_unit(v) != v as f32 / 255.0)
            .count();
        assert_eq!(differs, 126);
        let n = NormalizeConfig {
            mean: vec![0.5],
            std: vec![0.25],
        }
        .init(1)
        .unwrap();
        let mut out = [0.0; 3];
        n.apply(&[0, 255, 51], &mut out);
        assert_eq!(out[..2], [-2.0, 2.0]);
        assert!((out[2] - (0.2 - 0.5) / 0.25).abs() < 1e-6);
    }

    #[test]
    fn bad_statistics_are_rejected() {
        assert!(
            NormalizeConfig::default()
                .init(1)
                .unwrap_err()
                .to_string()
                .contains("normalize.mean")
        );
        let zero = NormalizeConfig {
            mean: vec![0.0],
            std: vec![0.0],
        };
        assert!(
            zero.init(1)
                .unwrap_err()
                .to_string()
                .contains("normalize.std")
        );
    }
}
