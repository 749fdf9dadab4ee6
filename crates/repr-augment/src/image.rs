//! The layout of an image buffer.

use crate::AugmentError;

/// Dimensions of a CHW `u8` image buffer: `data[(c * height + y) * width + x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDims {
    /// Channels (1 for gray, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageDims {
    /// Dimensions from a `[channels, height, width]` shape (repr-data's `ImageDataset::shape`).
    pub fn from_shape([channels, height, width]: [usize; 3]) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Number of bytes of one image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels per channel.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Checks that the image can be augmented: no zero dimension, 1 or 3 channels.
    pub fn validate(&self) -> Result<(), AugmentError> {
        let reason = if self.is_empty() {
            "a dimension is zero"
        } else if self.channels != 1 && self.channels != 3 {
            "expected 1 or 3 channels"
        } else {
            return Ok(());
        };
        Err(AugmentError::InvalidImage {
            channels: self.channels,
            height: self.height,
            width: self.width,
            reason,
        })
    }
}
