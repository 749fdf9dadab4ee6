//! Losses and heads for learning image representations.
//!
//! Each loss has a `Config` (hyperparameters, validated) and a module with `forward` (reduced
//! to a scalar) and `forward_no_reduction` (one value per sample).
#![warn(missing_docs)]

mod cross_entropy;
mod error;
mod reduction;

pub use cross_entropy::{CrossEntropyLoss, CrossEntropyLossConfig};
pub use error::ObjectiveError;
pub use reduction::Reduction;
