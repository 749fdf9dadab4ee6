//! The settings and the outcome of an index update.

use repr_data::DEFAULT_MAX_IMAGE_PIXELS;
use serde::{Deserialize, Serialize};

/// Settings of [`crate::Index::update`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateOptions {
    /// Images per encoder call, and per commit: an interrupted update loses at most one
    /// batch of work.
    pub batch_size: usize,
    /// The most pixels an image file may declare; larger ones are recorded as failures
    /// unread (see [`repr_data::DEFAULT_MAX_IMAGE_PIXELS`] for the memory this bounds).
    pub max_image_pixels: u64,
    /// Compact the vectors file at the end when more than half of its rows are dead.
    pub auto_compact: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            batch_size: 64,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            auto_compact: true,
        }
    }
}

/// How far an update is: `done` of the `total` files to look at (new files and files whose
/// size or modification time changed) have been hashed and, where needed, embedded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Files done.
    pub done: usize,
    /// Files to do in this update.
    pub total: usize,
}

/// A file that is not in the index because it could not be read, hashed or decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its path, relative to the indexed folder (`/`-separated; for a path that is not
    /// UTF-8, its lossy rendering).
    pub path: String,
    /// Why.
    pub reason: String,
}

/// What an update did. Paths are relative to the indexed folder, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// Files new to the index.
    pub added: Vec<String>,
    /// Files whose content changed: re-embedded (or given the vector of identical content).
    pub changed: Vec<String>,
    /// Files found as indexed (including those touched without a change of content, whose
    /// size and time were updated).
    pub unchanged: usize,
    /// Files gone from the folder, and so from the index.
    pub removed: Vec<String>,
    /// Files tried in this update that could not be read; recorded, and tried again only
    /// once they change.
    pub failed: Vec<Failure>,
    /// Files that failed before and have not changed since: not tried again.
    pub known_failures: Vec<Failure>,
    /// Images given to the encoder (added and changed files whose content was not already
    /// in the index).
    pub embedded: usize,
    /// Whether the vectors file was compacted at the end.
    pub compacted: bool,
}
