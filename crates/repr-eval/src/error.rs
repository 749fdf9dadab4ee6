//! The error type of the evaluation toolkit.

use std::path::PathBuf;

/// What went wrong in an evaluation; each variant names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An argument or configuration field has an impossible value.
    #[error("invalid `{field}`: {message}")]
    InvalidInput {
        /// The argument or field, e.g. `"config.k"` or `"memory_labels"`.
        field: String,
        /// Why it is wrong, with the values involved.
        message: String,
    },
    /// Two inputs that must agree in size do not.
    #[error("`{left}` has {left_len} {what} but `{right}` has {right_len}")]
    LengthMismatch {
        /// The first input.
        left: String,
        /// Its size.
        left_len: usize,
        /// The second input.
        right: String,
        /// Its size.
        right_len: usize,
        /// What is counted: rows, labels, dimensions.
        what: String,
    },
    /// A label is not below the number of classes.
    #[error("`{field}`: label {label} at index {index} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// The label slice.
        field: String,
        /// Position of the first bad label.
        index: usize,
        /// Its value.
        label: u32,
        /// The number of classes given.
        num_classes: usize,
    },
    /// An embedding, feature or loss is NaN or infinite.
    #[error("`{field}` holds a non-finite value at index {index}")]
    NonFinite {
        /// The input or quantity, e.g. `"queries"` or `"linear probe loss (epoch 3)"`.
        field: String,
        /// Flat index of the first non-finite value (or the epoch).
        index: usize,
    },
    /// A plot could not be drawn or written.
    #[error("cannot write plot {path}: {message}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// The drawing or encoding error.
        message: String,
    },
}

impl EvalError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn mismatch(
        left: &str,
        left_len: usize,
        right: &str,
        right_len: usize,
        what: &str,
    ) -> Self {
        Self::LengthMismatch {
            left: left.into(),
            left_len,
            right: right.into(),
            right_len,
            what: what.into(),
        }
    }
}

/// Checks that `labels` (called `labels_field`) has one label per row of `embeddings` (called
/// `field`).
pub(crate) fn check_label_count(
    field: &str,
    embeddings: &crate::Embeddings,
    labels_field: &str,
    labels: &[u32],
) -> Result<(), EvalError> {
    if labels.len() == embeddings.len {
        return Ok(());
    }
    Err(EvalError::mismatch(
        field,
        embeddings.len,
        labels_field,
        labels.len(),
        "rows",
    ))
}

/// Checks that every label is below `num_classes`.
pub(crate) fn check_labels(
    field: &str,
    labels: &[u32],
    num_classes: usize,
) -> Result<(), EvalError> {
    match labels
        .iter()
        .position(|&label| label as usize >= num_classes)
    {
        Some(index) => Err(EvalError::LabelOutOfRange {
            field: field.into(),
            index,
            label: labels[index],
            num_classes,
        }),
        None => Ok(()),
    }
}
