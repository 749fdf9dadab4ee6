//! The index: opening or creating one, what it holds, and loading its gallery.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use super::layout::{self, CREATING, DATABASE, DirState};
use super::schema::{self, FileRow, SCHEMA_VERSION};
use super::vectors::VectorFile;
use crate::{ExactSearcher, FileId, Gallery, Preprocess, SearchError};

/// What made an index's vectors; vectors of another identity are never mixed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    /// The model, opaque to this crate and compared as a string: the caller's description of
    /// its weights (a hash), layer and pooling, e.g. JSON.
    pub model: String,
    /// How images are prepared for the model (also how a query image must be prepared).
    pub preprocess: Preprocess,
    /// The dimension of the model's vectors.
    pub dim: usize,
}

/// An indexed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its id.
    pub id: FileId,
    /// Its path relative to the indexed folder, `/`-separated.
    pub path: String,
    /// Its size in bytes when indexed.
    pub size: u64,
    /// Its modification time when indexed, in nanoseconds since 1970.
    pub mtime_ns: i64,
    /// The SHA-256 of its content.
    pub sha256: [u8; 32],
    /// The top-level folder it is in (`None` for a file directly in the indexed folder).
    pub label: Option<String>,
}

/// A search index of a folder of images, in a directory of its own: file metadata in SQLite,
/// vectors in a flat file. It is updated incrementally ([`Index::update`]) and survives being
/// killed at any point: what was committed stays, what was not is redone.
///
/// One handle at a time may have a directory open (a lock file enforces it, across
/// processes). A directory that is neither an index nor empty is never written into.
#[derive(Debug)]
pub struct Index {
    pub(crate) dir: PathBuf,
    pub(crate) database: PathBuf,
    pub(crate) conn: Connection,
    pub(crate) identity: ModelIdentity,
    pub(crate) root: PathBuf,
    pub(crate) generation: u64,
    pub(crate) vectors: VectorFile,
    /// Held for the lifetime of the handle.
    _lock: File,
}

impl Index {
    /// Opens the index in `dir` for the folder `root` and the model `identity`, creating it
    /// (and `dir`) when `dir` is missing or empty.
    ///
    /// # Errors
    /// [`SearchError::NotAnIndex`] when `dir` holds anything else (nothing is changed);
    /// [`SearchError::IdentityMismatch`] or [`SearchError::RootMismatch`] when the index was
    /// built with another model, preprocessing or dimension, or for another folder;
    /// [`SearchError::Locked`], [`SearchError::InvalidInput`] (an impossible `identity`),
    /// [`SearchError::Io`] (also when `root` cannot be read), [`SearchError::Database`].
    pub fn open_or_create(
        dir: &Path,
        root: &Path,
        identity: &ModelIdentity,
    ) -> Result<Self, SearchError> {
        identity.preprocess.check()?;
        if identity.dim == 0 {
            return Err(SearchError::invalid("identity.dim", "must be at least 1"));
        }
        let root = fs::canonicalize(root).map_err(|e| SearchError::io("read", root, e))?;
        match layout::inspect(dir)? {
            DirState::Foreign(found) => return not_an_index(dir, found),
            DirState::Missing => {
                fs::create_dir_all(dir).map_err(|e| SearchError::io("create", dir, e))?
            }
            DirState::Empty | DirState::Index => {}
        }
        let lock = layout::lock(dir)?;
        // Checked again under the lock: another process may have created it meanwhile.
        match layout::inspect(dir)? {
            DirState::Foreign(found) => not_an_index(dir, found),
            DirState::Missing => Err(SearchError::io(
                "open",
                dir,
                std::io::ErrorKind::NotFound.into(),
            )),
            DirState::Empty => {
                create_database(dir, &root, identity)?;
                Self::open_locked(dir, lock)
            }
            DirState::Index => {
                let index = Self::open_locked(dir, lock)?;
                index.check_identity(identity)?;
                if index.root != root {
                    return Err(SearchError::RootMismatch {
                        path: dir.to_path_buf(),
                        stored: index.root,
                        given: root,
                    });
                }
                Ok(index)
            }
        }
    }

    /// Opens the existing index in `dir`, whatever its model (for searching it).
    ///
    /// # Errors
    /// [`SearchError::NotAnIndex`] when `dir` is not an index (missing, empty or other
    /// files); [`SearchError::Locked`], [`SearchError::SchemaVersion`],
    /// [`SearchError::Corrupt`], [`SearchError::Io`], [`SearchError::Database`].
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        match layout::inspect(dir)? {
            DirState::Index => Self::open_locked(dir, layout::lock(dir)?),
            DirState::Missing => not_an_index(dir, "the directory does not exist"),
            DirState::Empty => not_an_index(dir, "the directory is empty"),
            DirState::Foreign(found) => not_an_index(dir, found),
        }
    }

    /// Opens the index database of `dir` under `lock` and brings the directory to its
    /// committed state: the rows of an interrupted batch are cut from the vectors file, and
    /// vectors files of other generations (left by an interrupted compaction) are deleted.
    fn open_locked(dir: &Path, lock: File) -> Result<Self, SearchError> {
        let database = dir.join(DATABASE);
        let db = |e| SearchError::database(&database, e);
        let conn = Connection::open_with_flags(
            &database,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        check_schema_version(&conn, &database)?;
        // WAL: a commit is one append to the log; FULL: it is on disk when commit returns.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SearchError::corrupt(
                &database,
                format!("journal mode {mode}, WAL expected"),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        let (identity, root) = read_identity(&conn, &database)?;
        let state = schema::state(&conn, &database)?;
        for generation in layout::vector_generations(dir)? {
            if generation != state.generation {
                layout::remove_if_present(&layout::vectors_path(dir, generation))?;
            }
        }
        let vectors = VectorFile::open(
            layout::vectors_path(dir, state.generation),
            identity.dim,
            state.rows,
        )?;
        layout::sync_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            database,
            conn,
            identity,
            root,
            generation: state.generation,
            vectors,
            _lock: lock,
        })
    }

    /// [`SearchError::IdentityMismatch`] unless `given` is this index's identity.
    fn check_identity(&self, given: &ModelIdentity) -> Result<(), SearchError> {
        let stored = &self.identity;
        let mismatch = |field, stored: String, given: String| {
            Err(SearchError::IdentityMismatch {
                path: self.dir.clone(),
                field,
                stored,
                given,
            })
        };
        if stored.dim != given.dim {
            return mismatch("dim", stored.dim.to_string(), given.dim.to_string());
        }
        if stored.preprocess != given.preprocess {
            let json = |p: &Preprocess| serde_json::to_string(p).unwrap_or_default();
            return mismatch(
                "preprocess",
                json(&stored.preprocess),
                json(&given.preprocess),
            );
        }
        if stored.model != given.model {
            return mismatch(
                "model",
                format!("`{}`", stored.model),
                format!("`{}`", given.model),
            );
        }
        Ok(())
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The indexed folder (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The model, preprocessing and dimension of the vectors.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The number of indexed files.
    ///
    /// # Errors
    /// [`SearchError::Database`].
    pub fn len(&self) -> Result<usize, SearchError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM files", [], |row| row.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| SearchError::database(&self.database, e))
    }

    /// Whether no file is indexed.
    ///
    /// # Errors
    /// [`SearchError::Database`].
    pub fn is_empty(&self) -> Result<bool, SearchError> {
        Ok(self.len()? == 0)
    }

    /// Every indexed file, by increasing id.
    ///
    /// # Errors
    /// [`SearchError::Database`], [`SearchError::Corrupt`].
    pub fn entries(&self) -> Result<Vec<Entry>, SearchError> {
        Ok(schema::files(&self.conn, &self.database)?
            .into_iter()
            .map(|f| f.entry)
            .collect())
    }

    /// The files recorded as unreadable, by path, with why; each is tried again once its size
    /// or modification time changes.
    ///
    /// # Errors
    /// [`SearchError::Database`].
    pub fn failures(&self) -> Result<Vec<crate::Failure>, SearchError> {
        Ok(schema::failures(&self.conn, &self.database)?
            .into_iter()
            .map(|f| crate::Failure {
                path: f.path,
                reason: f.reason,
            })
            .collect())
    }

    /// The rows of the vectors file that no file points at any more (removed files, old
    /// contents); compaction drops them.
    ///
    /// # Errors
    /// [`SearchError::Database`].
    pub fn dead_rows(&self) -> Result<u64, SearchError> {
        let live: i64 = self
            .conn
            .query_row("SELECT COUNT(DISTINCT row) FROM files", [], |row| {
                row.get(0)
            })
            .map_err(|e| SearchError::database(&self.database, e))?;
        Ok(self.vectors.rows().saturating_sub(live as u64))
    }

    /// The indexed files' vectors, paths and labels in memory, by increasing id.
    ///
    /// # Errors
    /// [`SearchError::Io`], [`SearchError::Database`], [`SearchError::Corrupt`].
    pub fn gallery(&self) -> Result<Gallery, SearchError> {
        let files = schema::files(&self.conn, &self.database)?;
        let all = self.vectors.read_all()?;
        gallery_of(files, &all, self.identity.dim, &self.database)
    }

    /// An exact searcher over [`Index::gallery`].
    ///
    /// # Errors
    /// As [`Index::gallery`].
    pub fn searcher(&self) -> Result<ExactSearcher, SearchError> {
        Ok(ExactSearcher::new(self.gallery()?))
    }
}

/// [`SearchError::SchemaVersion`] unless the database `conn` (at `database`) has this build's
/// layout.
pub(super) fn check_schema_version(conn: &Connection, database: &Path) -> Result<(), SearchError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| SearchError::database(database, e))?;
    if version != SCHEMA_VERSION {
        return Err(SearchError::SchemaVersion {
            path: database.to_path_buf(),
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// The identity and the indexed folder the database `conn` (at `database`) records.
pub(super) fn read_identity(
    conn: &Connection,
    database: &Path,
) -> Result<(ModelIdentity, PathBuf), SearchError> {
    let dim_text = schema::meta(conn, database, "dim")?;
    let dim = dim_text
        .parse()
        .ok()
        .filter(|&d: &usize| d > 0)
        .ok_or_else(|| SearchError::corrupt(database, format!("dimension `{dim_text}`")))?;
    let preprocess = serde_json::from_str(&schema::meta(conn, database, "preprocess")?)
        .map_err(|e| SearchError::corrupt(database, format!("preprocess: {e}")))?;
    let identity = ModelIdentity {
        model: schema::meta(conn, database, "model")?,
        preprocess,
        dim,
    };
    let root = PathBuf::from(schema::meta(conn, database, "root")?);
    Ok((identity, root))
}

/// The gallery of `files`, whose vectors are the rows of `all` (the committed rows of the
/// vectors file, row-major, `dim` values each).
pub(super) fn gallery_of(
    files: Vec<FileRow>,
    all: &[f32],
    dim: usize,
    database: &Path,
) -> Result<Gallery, SearchError> {
    let mut gallery = Gallery::with_capacity(dim, files.len());
    for file in files {
        let start = usize::try_from(file.row)
            .unwrap_or(usize::MAX)
            .saturating_mul(dim);
        let entry = file.entry;
        let vector = all.get(start..start.saturating_add(dim)).ok_or_else(|| {
            SearchError::corrupt(
                database,
                format!(
                    "{} points at row {}, past the committed rows",
                    entry.path, file.row
                ),
            )
        })?;
        gallery.push(entry.id, vector, entry.path, entry.label);
    }
    Ok(gallery)
}

pub(super) fn not_an_index<T>(dir: &Path, found: &'static str) -> Result<T, SearchError> {
    Err(SearchError::NotAnIndex {
        path: dir.to_path_buf(),
        found,
    })
}

/// Creates the database of a new index in `dir` under its temporary name, complete, then
/// renames it into place: a crash leaves either no index or a whole one.
fn create_database(dir: &Path, root: &Path, identity: &ModelIdentity) -> Result<(), SearchError> {
    let creating = dir.join(CREATING);
    layout::remove_if_present(&creating)?;
    layout::remove_if_present(&dir.join(format!("{CREATING}-journal")))?;
    let root_text = root.to_str().ok_or_else(|| {
        SearchError::invalid("root", format!("{} is not valid UTF-8", root.display()))
    })?;
    let preprocess = serde_json::to_string(&identity.preprocess)
        .map_err(|e| SearchError::invalid("identity.preprocess", e.to_string()))?;
    let meta = [
        ("format", "repr-search index".to_string()),
        ("model", identity.model.clone()),
        ("preprocess", preprocess),
        ("dim", identity.dim.to_string()),
        ("root", root_text.to_string()),
    ];
    let mut conn = Connection::open(&creating).map_err(|e| SearchError::database(&creating, e))?;
    schema::create(&mut conn, &creating, &meta)?;
    conn.close()
        .map_err(|(_, e)| SearchError::database(&creating, e))?;
    File::open(&creating)
        .and_then(|f| f.sync_all())
        .map_err(|e| SearchError::io("sync", &creating, e))?;
    let database = dir.join(DATABASE);
    fs::rename(&creating, &database).map_err(|e| SearchError::io("rename", &creating, e))?;
    layout::sync_dir(dir)
}
