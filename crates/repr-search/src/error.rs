//! The ways indexing and searching can fail.

use std::io;
use std::path::{Path, PathBuf};

use repr_data::DataError;

use crate::FileId;

/// An error of the index or of a search. Every variant that comes from a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A file or directory could not be read or written. (The OS error is part of the
    /// message, and not also a `source()`, so that a printed chain of causes says it once.)
    #[error("cannot {action} {}: {error}", .path.display())]
    Io {
        /// What was being done: "read", "write", "create", ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// The index's SQLite database refused an operation.
    #[error("index database {}: {error}", .path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// The directory is not an index, so nothing is written into it or deleted from it.
    #[error(
        "{} is not a repr-search index ({found}); nothing in it was changed",
        .path.display()
    )]
    NotAnIndex {
        /// The directory.
        path: PathBuf,
        /// What was found there instead.
        found: &'static str,
    },
    /// The index was written by a version of this crate with another on-disk layout.
    #[error(
        "{}: index schema version {found}, this program reads version {expected}; build a new \
         index in another directory",
        .path.display()
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The version this build reads and writes.
        expected: i64,
    },
    /// Another [`crate::Index`] (in this process or another) has the directory open.
    #[error("{} is in use: another process or handle has the index open", .path.display())]
    Locked {
        /// The index directory.
        path: PathBuf,
    },
    /// The index was built by another model, preprocessing or dimension than the caller's:
    /// its vectors cannot be mixed with new ones.
    #[error(
        "{}: the index was built with {field} {stored}, not {given}; index into another \
         directory to use a different model",
        .path.display()
    )]
    IdentityMismatch {
        /// The index directory.
        path: PathBuf,
        /// `"model"`, `"preprocess"` or `"dim"`.
        field: &'static str,
        /// The value stored in the index.
        stored: String,
        /// The value given.
        given: String,
    },
    /// The index belongs to another folder of images than the one given.
    #[error(
        "{}: the index is of the folder {}, not {}",
        .path.display(), .stored.display(), .given.display()
    )]
    RootMismatch {
        /// The index directory.
        path: PathBuf,
        /// The folder the index was built for.
        stored: PathBuf,
        /// The folder given.
        given: PathBuf,
    },
    /// The index's files contradict each other (a file shorter than its committed rows, a
    /// missing value).
    #[error("{}: corrupt index: {reason}", .path.display())]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An argument or configuration field has an impossible value.
    #[error("invalid `{field}`: {message}")]
    InvalidInput {
        /// The argument or field, e.g. `"preprocess.size.crop"` or `"queries"`.
        field: String,
        /// Why it is wrong, with the values involved.
        message: String,
    },
    /// The encoder's output does not have one row per image and the index's dimension.
    #[error(
        "the encoder returned a {found:?} tensor for {images} images; expected [{images}, {dim}]"
    )]
    EncoderShape {
        /// The images in the batch.
        images: usize,
        /// The dimension expected (the index's).
        dim: usize,
        /// The shape returned.
        found: Vec<usize>,
    },
    /// The encoder produced NaN or infinity for these images; nothing of their batch was
    /// stored.
    #[error("the encoder produced NaN or infinity for {}", paths_list(.paths))]
    NonFinite {
        /// The images whose vectors are not finite.
        paths: Vec<PathBuf>,
    },
    /// An image given as a query could not be read.
    #[error(transparent)]
    Image(#[from] DataError),
    /// The approximate-search graph library failed: creating, building, saving, loading or
    /// searching a graph (then the file, when there is one, is named).
    #[error("approximate search graph{}: cannot {action}: {message}", graph_file(.path.as_deref()))]
    Graph {
        /// What was being done: "build", "save", "load", "search", ...
        action: &'static str,
        /// The graph file, for saving and loading.
        path: Option<PathBuf>,
        /// The library's message.
        message: String,
    },
    /// No file of the index has this id.
    #[error("no file with id {id} in the index")]
    UnknownId {
        /// The id asked for.
        id: FileId,
    },
    /// The HTTP server could not start or serve (feature `server`).
    #[error("cannot {action}: {error}")]
    Server {
        /// What was being done, with the address: "listen on 127.0.0.1:8080", ...
        action: String,
        /// The underlying error.
        error: io::Error,
    },
}

fn graph_file(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

fn paths_list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

impl SearchError {
    /// An [`SearchError::Io`] error: `action` on `path` failed.
    pub(crate) fn io(action: &'static str, path: &Path, error: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }

    /// A [`SearchError::Database`] error of the database at `path`.
    pub(crate) fn database(path: &Path, error: rusqlite::Error) -> Self {
        Self::Database {
            path: path.to_path_buf(),
            error,
        }
    }

    /// An [`SearchError::InvalidInput`] error for `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A [`SearchError::Graph`] error: `action` on the graph (of the file `path`) failed.
    pub(crate) fn graph(
        action: &'static str,
        path: Option<&Path>,
        message: impl Into<String>,
    ) -> Self {
        Self::Graph {
            action,
            path: path.map(Path::to_path_buf),
            message: message.into(),
        }
    }

    /// A [`SearchError::Corrupt`] error of `path`.
    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
