//! The index on disk: layout, metadata database, vectors file, update and compaction.

mod base;
mod compact;
mod layout;
mod reader;
mod report;
mod schema;
mod update;
mod vectors;
mod walk;

pub use base::{Entry, Index, ModelIdentity};
pub use reader::{IndexReader, IndexSnapshot, IndexVersion};
pub use report::{Failure, Progress, UpdateOptions, UpdateReport};
pub use update::sha256_of;
pub use walk::IMAGE_EXTENSIONS;

pub(crate) use schema::State;
