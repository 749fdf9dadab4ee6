//! Errors of augmentation configurations and inputs.

use crate::ImageDims;

/// An augmentation configuration or input that cannot be used, naming the field (as
/// `op.field`) or the image that is wrong. Configs report these from `init`, and batch functions
/// check every input before augmenting anything, so nothing panics half-way through a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AugmentError {
    /// A field is outside its allowed range.
    #[error("`{field}` = {value} is out of range: expected {allowed}")]
    OutOfRange {
        /// The configuration field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// A `[min, max]` range field has `min > max` (or a non-finite bound).
    #[error("`{field}` = [{min}, {max}] is not a range: expected finite min <= max")]
    InvalidRange {
        /// The configuration field.
        field: &'static str,
        /// The lower bound given.
        min: f64,
        /// The upper bound given.
        max: f64,
    },
    /// The image has a zero dimension (or a channel count other than 1 or 3).
    #[error("cannot augment an image of {channels}x{height}x{width} (CHW): {reason}")]
    InvalidImage {
        /// Channels.
        channels: usize,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An image buffer does not have the length its dimensions imply.
    #[error("image {index} has {actual} values, expected {expected} ({dims:?})")]
    ImageLength {
        /// Position of the image in the batch.
        index: usize,
        /// `dims.len()`.
        expected: usize,
        /// The buffer's length.
        actual: usize,
        /// The dimensions the pipeline was built for.
        dims: ImageDims,
    },
    /// Two lists that must have one entry per image (or channel) differ in length.
    #[error("`{field}` has {actual} entries, expected {expected}")]
    LengthMismatch {
        /// What was counted.
        field: &'static str,
        /// The required count.
        expected: usize,
        /// The count given.
        actual: usize,
    },
    /// An op that changes the image size is used where the size must stay the same.
    #[error("`{field}`: an op inside random_apply must keep the image size, {from:?} -> {to:?}")]
    SizeChange {
        /// The op.
        field: &'static str,
        /// Size before.
        from: ImageDims,
        /// Size after.
        to: ImageDims,
    },
    /// The views of a multi-view batch must all have one shape to be stacked per view.
    #[error("view {view} gives {other:?} but view 0 gives {first:?}; batched views need one shape")]
    ViewShapes {
        /// The first view that differs.
        view: usize,
        /// View 0's output dims.
        first: ImageDims,
        /// That view's output dims.
        other: ImageDims,
    },
}

/// Checks that `value` is in `[0, 1]` (NaN fails).
pub(crate) fn check_probability(field: &'static str, value: f64) -> Result<(), AugmentError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(AugmentError::OutOfRange {
            field,
            value,
            allowed: "a probability in [0, 1]",
        })
    }
}

/// Checks that `[min, max]` is a finite range with `min <= max`.
pub(crate) fn check_range(field: &'static str, range: [f64; 2]) -> Result<(), AugmentError> {
    let [min, max] = range;
    if min.is_finite() && max.is_finite() && min <= max {
        Ok(())
    } else {
        Err(AugmentError::InvalidRange { field, min, max })
    }
}
