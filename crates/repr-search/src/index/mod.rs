//! The index on disk: layout, metadata database, vectors file, update and compaction.

mod base;
mod compact;
mod layout;
mod report;
mod schema;
mod update;
mod vectors;
mod walk;

pub use base::{Entry, Index, ModelIdentity};
pub use report::{Failure, Progress, UpdateOptions, UpdateReport};
pub use walk::IMAGE_EXTENSIONS;
