//! The files of an index directory, how a directory is recognised as an index, and the lock
//! that keeps one writer at a time.
//!
//! An index directory holds `index.sqlite` (with its WAL files), `vectors-<generation>.f32` and
//! `lock`. A directory is only ever written into when it is an index (its database carries
//! this crate's application id in its header) or empty; anything else is refused untouched.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::SearchError;

/// The metadata database.
pub(crate) const DATABASE: &str = "index.sqlite";

/// The database while it is being created; renamed to [`DATABASE`] once complete, so that a
/// directory with a [`DATABASE`] always holds a whole one.
pub(crate) const CREATING: &str = "index.sqlite.creating";

/// The lock file, held exclusively by the one open [`crate::Index`].
const LOCK: &str = "lock";

/// SQLite's `application_id` of an index database: "RPRS".
pub(crate) const APPLICATION_ID: i32 = 0x5250_5253;

/// What a directory holds, as far as indexing goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirState {
    /// Nothing there.
    Missing,
    /// Empty, or holding only what an interrupted creation leaves (the lock, a half-made
    /// database under its temporary name).
    Empty,
    /// An index.
    Index,
    /// Anything else: never written into.
    Foreign(&'static str),
}

/// What `dir` holds. Reads only.
pub(crate) fn inspect(dir: &Path) -> Result<DirState, SearchError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(SearchError::io("read", dir, e)),
    };
    let mut leftovers_only = true;
    for entry in entries {
        let entry = entry.map_err(|e| SearchError::io("read", dir, e))?;
        let name = entry.file_name();
        if name == DATABASE {
            return Ok(if is_index_database(&dir.join(DATABASE))? {
                DirState::Index
            } else {
                DirState::Foreign("its index.sqlite is not an index database")
            });
        }
        let creation_leftover =
            name == LOCK || name.to_str().is_some_and(|name| name.starts_with(CREATING));
        leftovers_only &= creation_leftover;
    }
    Ok(if leftovers_only {
        DirState::Empty
    } else {
        DirState::Foreign("it holds other files")
    })
}

/// Whether `path` is an SQLite database whose header carries [`APPLICATION_ID`] (read from
/// the file itself, so that a foreign database is never opened, and so never changed).
fn is_index_database(path: &Path) -> Result<bool, SearchError> {
    let mut header = [0u8; 100];
    let mut file = File::open(path).map_err(|e| SearchError::io("read", path, e))?;
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(SearchError::io("read", path, e)),
    }
    let id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    Ok(header.starts_with(b"SQLite format 3\0") && id == APPLICATION_ID)
}

/// Takes the index directory's lock, or fails with [`SearchError::Locked`] when another
/// handle holds it. The lock lasts as long as the returned file is open.
pub(crate) fn lock(dir: &Path) -> Result<File, SearchError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SearchError::io("create", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(SearchError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(SearchError::io("lock", &path, e)),
    }
}

/// The vectors file of `generation`.
pub(crate) fn vectors_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("vectors-{generation}.f32"))
}

/// The generations of the vectors files in `dir`.
pub(crate) fn vector_generations(dir: &Path) -> Result<Vec<u64>, SearchError> {
    let mut generations = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| SearchError::io("read", dir, e))? {
        let entry = entry.map_err(|e| SearchError::io("read", dir, e))?;
        let name = entry.file_name();
        let generation: Option<u64> = name.to_str().and_then(|name| {
            name.strip_prefix("vectors-")?
                .strip_suffix(".f32")?
                .parse()
                .ok()
        });
        generations.extend(generation);
    }
    Ok(generations)
}

/// Makes the creations, renames and deletions of entries of `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SearchError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SearchError::io("sync", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir; // a directory opens as a file only on Unix; elsewhere this is left to the OS
    Ok(())
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), SearchError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SearchError::io("delete", path, e))
        }
        _ => Ok(()),
    }
}
