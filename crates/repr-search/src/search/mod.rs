//! Search over a [`crate::Gallery`]: the [`Searcher`] trait and its exact implementation.

mod base;
mod exact;
mod scores;
mod top_k;

pub use base::{Hit, Searcher};
pub use exact::ExactSearcher;
