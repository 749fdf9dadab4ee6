//! Search over a [`crate::Gallery`]: the [`Searcher`] trait, its exact and approximate
//! implementations, and the choice between them.

mod approx;
mod auto;
mod base;
mod exact;
mod scores;
mod slots;
mod stored;
mod subset;
mod top_k;

pub use approx::{ApproxConfig, ApproxSearcher};
pub use auto::{APPROX_MIN_ITEMS, AnySearcher, SearchKind};
pub use base::{Hit, Searcher};
pub use exact::ExactSearcher;
