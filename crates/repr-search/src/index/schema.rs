//! The metadata database: its tables, and reading and writing what it records.
//!
//! - `meta`: the index's identity (`model`, `preprocess` as JSON, `dim`) and `root`;
//! - `state`: one row, the generation of the vectors file and its committed row count — rows
//!   past it are an interrupted batch's and are cut on open;
//! - `files`: one row per indexed file, pointing at its vector's row (files of identical
//!   content share one);
//! - `failures`: files that could not be read, with why, not retried until they change.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::layout::APPLICATION_ID;
use crate::{Entry, FileId, SearchError};

/// The version of this layout, SQLite's `user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE state (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    generation INTEGER NOT NULL,
    rows INTEGER NOT NULL
) STRICT;
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    label TEXT,
    row INTEGER NOT NULL
) STRICT;
CREATE INDEX files_by_sha256 ON files (sha256);
CREATE TABLE failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL
) STRICT;
INSERT INTO state (only, generation, rows) VALUES (0, 0, 0);
";

/// Creates the tables in the new database `conn` (at `path`) and records `meta`, all in one
/// transaction.
pub(crate) fn create(
    conn: &mut Connection,
    path: &Path,
    meta: &[(&str, String)],
) -> Result<(), SearchError> {
    let db = |e| SearchError::database(path, e);
    let tx = conn.transaction().map_err(db)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(db)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db)?;
    tx.execute_batch(TABLES).map_err(db)?;
    for (key, value) in meta {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map_err(db)?;
    }
    tx.commit().map_err(db)
}

/// The value of `key` in `meta`.
pub(crate) fn meta(conn: &Connection, path: &Path, key: &str) -> Result<String, SearchError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
    .map_err(|e| SearchError::database(path, e))?
    .ok_or_else(|| SearchError::corrupt(path, format!("no `{key}` in its metadata")))
}

/// The committed state: the vectors file's generation and row count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub generation: u64,
    pub rows: u64,
}

pub(crate) fn state(conn: &Connection, path: &Path) -> Result<State, SearchError> {
    let (generation, rows): (i64, i64) = conn
        .query_row("SELECT generation, rows FROM state", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(|e| SearchError::database(path, e))?;
    let non_negative = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| SearchError::corrupt(path, format!("{what} {v}")))
    };
    Ok(State {
        generation: non_negative(generation, "generation")?,
        rows: non_negative(rows, "row count")?,
    })
}

/// A file as the `files` table records it: its entry and its vector's row.
#[derive(Clone, Debug)]
pub(crate) struct FileRow {
    pub entry: Entry,
    pub row: u64,
}

/// Every indexed file, by increasing id.
pub(crate) fn files(conn: &Connection, path: &Path) -> Result<Vec<FileRow>, SearchError> {
    let db = |e| SearchError::database(path, e);
    let mut statement = conn
        .prepare("SELECT id, path, size, mtime_ns, sha256, label, row FROM files ORDER BY id")
        .map_err(db)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Vec<u8>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })
        .map_err(db)?;
    let mut files = Vec::new();
    for row in rows {
        let (id, file, size, mtime_ns, sha256, label, vector_row) = row.map_err(db)?;
        let bad = |what: &str| SearchError::corrupt(path, format!("file {file}: bad {what}"));
        let row = u64::try_from(vector_row).map_err(|_| bad("row"))?;
        let entry = Entry {
            id: FileId(u64::try_from(id).map_err(|_| bad("id"))?),
            size: u64::try_from(size).map_err(|_| bad("size"))?,
            mtime_ns,
            sha256: sha256.try_into().map_err(|_| bad("sha256"))?,
            label,
            path: file,
        };
        files.push(FileRow { entry, row });
    }
    Ok(files)
}

/// A file that could not be read, as the `failures` table records it.
#[derive(Clone, Debug)]
pub(crate) struct FailureRow {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub reason: String,
}

/// Every recorded failure, by path.
pub(crate) fn failures(conn: &Connection, path: &Path) -> Result<Vec<FailureRow>, SearchError> {
    let db = |e| SearchError::database(path, e);
    let mut statement = conn
        .prepare("SELECT path, size, mtime_ns, reason FROM failures ORDER BY path")
        .map_err(db)?;
    let rows = statement
        .query_map([], |row| {
            Ok(FailureRow {
                path: row.get(0)?,
                size: row.get::<_, i64>(1)?.max(0) as u64,
                mtime_ns: row.get(2)?,
                reason: row.get(3)?,
            })
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// A size as SQLite stores integers.
pub(crate) fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
