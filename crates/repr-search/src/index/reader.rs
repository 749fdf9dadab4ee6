//! Reading an index that another process may be updating: no lock taken, nothing written.
//!
//! SQLite gives a reader in WAL mode a consistent view of the metadata for the length of a
//! read transaction while a writer commits. The vectors file needs no lock either: a writer
//! only appends past the committed rows (the reader reads only the rows its snapshot counts)
//! and a compaction writes a new generation's file, deleting the old one after the switch.
//! A reader that finds its generation's file already deleted reads again from a new snapshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::base::{check_schema_version, gallery_of, not_an_index, read_identity};
use super::layout::{self, DATABASE, DirState};
use super::schema;
use super::vectors::read_committed;
use crate::{Entry, Failure, Gallery, Index, ModelIdentity, SearchError};

/// How many times a snapshot is taken again when a compaction deletes the vectors file of
/// the generation it was reading; each retry reads a newer generation, so only a writer
/// compacting over and over could exhaust them.
const GENERATION_RETRIES: usize = 8;

/// How long a read waits on a writer's lock (SQLite's busy timeout); in WAL mode a reader
/// waits only while a writer resets the log.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A read-only view of an index directory that another process (or an [`Index`] in this one)
/// may be updating at the same time: it takes no lock and writes nothing of the index. Each
/// [`IndexReader::snapshot`] is consistent — the files, failures and vectors of one committed
/// state — and [`IndexReader::version`] tells cheaply whether a newer state was committed.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use image::{Rgb, RgbImage};
/// use repr_data::Normalize;
/// use repr_search::{Index, ModelIdentity, Preprocess, Sizing, UpdateOptions};
///
/// let photos = tempfile::tempdir()?;
/// RgbImage::from_pixel(4, 4, Rgb([200, 20, 20])).save(photos.path().join("red.png"))?;
/// let identity = ModelIdentity {
///     model: "mean colour".into(),
///     preprocess: Preprocess {
///         channels: 3,
///         size: Sizing::Resize { height: 4, width: 4 },
///         normalize: Normalize::identity(3),
///     },
///     dim: 3,
/// };
/// let dir = tempfile::tempdir()?;
/// let mut index = Index::open_or_create(dir.path(), photos.path(), &identity)?;
/// let reader = Index::open_read_only(dir.path())?; // while `index` is open for writing
/// let before = reader.snapshot()?;
/// assert_eq!((before.entries.len(), reader.version()?), (0, before.version()));
///
/// let mean_colour = |x: Tensor<4>| x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
/// index.update(&UpdateOptions::default(), &Device::flex(), mean_colour, |_| {})?;
/// assert_ne!(reader.version()?, before.version());
/// assert_eq!(reader.snapshot()?.gallery.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct IndexReader {
    dir: PathBuf,
    database: PathBuf,
    conn: Connection,
    identity: ModelIdentity,
    root: PathBuf,
}

/// One committed state of an index, read by [`IndexReader::snapshot`]: `entries` and
/// `gallery` hold the same files in the same order (increasing id).
#[derive(Clone, Debug)]
pub struct IndexSnapshot {
    /// Every indexed file, by increasing id.
    pub entries: Vec<Entry>,
    /// The files recorded as unreadable, by path.
    pub failures: Vec<Failure>,
    /// The indexed files' vectors, paths and labels.
    pub gallery: Gallery,
    pub(crate) version: IndexVersion,
    /// The vectors file's generation and rows of this state (which saved graph is its own).
    pub(crate) state: schema::State,
}

/// Which committed state of an index a reader saw; two versions from the same
/// [`IndexReader`] differ when something was committed in between. (Versions of different
/// readers are not comparable.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexVersion(i64);

impl IndexSnapshot {
    /// The version of the state this snapshot holds.
    pub fn version(&self) -> IndexVersion {
        self.version
    }
}

impl Index {
    /// Opens the existing index in `dir` for reading only, while another process may be
    /// updating it: see [`IndexReader`]. Takes no lock, so it succeeds while an [`Index`]
    /// has the directory open, and does not stop one from opening it.
    ///
    /// # Errors
    /// As [`Index::open`], except [`SearchError::Locked`].
    pub fn open_read_only(dir: &Path) -> Result<IndexReader, SearchError> {
        IndexReader::open(dir)
    }
}

impl IndexReader {
    fn open(dir: &Path) -> Result<Self, SearchError> {
        match layout::inspect(dir)? {
            DirState::Index => {}
            DirState::Missing => return not_an_index(dir, "the directory does not exist"),
            DirState::Empty => return not_an_index(dir, "the directory is empty"),
            DirState::Foreign(found) => return not_an_index(dir, found),
        }
        let database = dir.join(DATABASE);
        let db = |e| SearchError::database(&database, e);
        let conn = Connection::open_with_flags(
            &database,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        check_schema_version(&conn, &database)?;
        let (identity, root) = read_identity(&conn, &database)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            database,
            conn,
            identity,
            root,
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The indexed folder (canonical when the index was created).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The model, preprocessing and dimension of the vectors.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The latest committed state: files, failures and vectors, consistent with each other
    /// whatever a writer does meanwhile (rows it has not committed are not read).
    ///
    /// # Errors
    /// [`SearchError::Database`], [`SearchError::Io`], [`SearchError::Corrupt`] (also when
    /// the vectors file of the committed generation is missing).
    pub fn snapshot(&self) -> Result<IndexSnapshot, SearchError> {
        let db = |e| SearchError::database(&self.database, e);
        for attempt in 1..=GENERATION_RETRIES {
            // One read transaction: everything below sees the same commit.
            let tx = self.conn.unchecked_transaction().map_err(db)?;
            let state = schema::state(&tx, &self.database)?;
            let version = data_version(&tx, &self.database)?;
            let files = schema::files(&tx, &self.database)?;
            let failures = schema::failures(&tx, &self.database)?;
            let dim = self.identity.dim;
            let path = layout::vectors_path(&self.dir, state.generation);
            let all = if state.rows == 0 {
                Vec::new()
            } else {
                match read_committed(&path, dim, state.rows) {
                    Ok(all) => all,
                    Err(SearchError::Io { error, .. })
                        if error.kind() == std::io::ErrorKind::NotFound =>
                    {
                        if attempt < GENERATION_RETRIES {
                            continue; // compacted meanwhile: the next snapshot is newer
                        }
                        return Err(SearchError::corrupt(
                            &path,
                            format!("missing, but {} rows are committed", state.rows),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            };
            tx.finish().map_err(db)?;
            let entries: Vec<Entry> = files.iter().map(|f| f.entry.clone()).collect();
            let gallery = gallery_of(files, &all, dim, &self.database)?;
            let failures = failures
                .into_iter()
                .map(|f| Failure {
                    path: f.path,
                    reason: f.reason,
                })
                .collect();
            return Ok(IndexSnapshot {
                entries,
                failures,
                gallery,
                version,
                state,
            });
        }
        unreachable!("the last attempt returns")
    }

    /// The version of the latest committed state: compare it with
    /// [`IndexSnapshot::version`] to tell whether the index changed since the snapshot.
    /// Cheap (no table is read).
    ///
    /// # Errors
    /// [`SearchError::Database`].
    pub fn version(&self) -> Result<IndexVersion, SearchError> {
        data_version(&self.conn, &self.database)
    }
}

/// SQLite's `data_version` of `conn`: it changes when another connection commits.
fn data_version(conn: &Connection, database: &Path) -> Result<IndexVersion, SearchError> {
    conn.pragma_query_value(None, "data_version", |row| row.get(0))
        .map(IndexVersion)
        .map_err(|e| SearchError::database(database, e))
}
