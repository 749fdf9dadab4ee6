//! The vectors file: rows of `dim` little-endian f32, no header; the database records how
//! many rows are committed, and only those count.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::SearchError;

const F32_BYTES: u64 = 4;

/// Bytes read from disk at a time when loading rows.
const READ_CHUNK: usize = 1 << 20;

/// An open vectors file and its committed row count.
#[derive(Debug)]
pub(crate) struct VectorFile {
    path: PathBuf,
    file: File,
    dim: usize,
    rows: u64,
}

impl VectorFile {
    /// Opens `path` holding `rows` committed rows: creates it when `rows` is 0 and it is
    /// missing; cuts the rows of an interrupted batch beyond `rows`.
    ///
    /// # Errors
    /// [`SearchError::Corrupt`] when the file is shorter than its committed rows (or missing
    /// while rows are committed); [`SearchError::Io`].
    pub fn open(path: PathBuf, dim: usize, rows: u64) -> Result<Self, SearchError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(rows == 0)
            .truncate(false)
            .open(&path);
        let file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SearchError::corrupt(
                    &path,
                    format!("missing, but {rows} rows are committed"),
                ));
            }
            Err(e) => return Err(SearchError::io("open", &path, e)),
        };
        let len = committed_length(&file, &path, dim, rows)?;
        let committed = rows * dim as u64 * F32_BYTES;
        let mut vectors = Self {
            path,
            file,
            dim,
            rows,
        };
        if len > committed {
            vectors.cut_to_committed()?;
        }
        Ok(vectors)
    }

    /// The committed row count.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` (whole rows) after the committed rows, over whatever an interrupted
    /// batch left there, and makes it durable. The rows count once [`VectorFile::commit`] is
    /// called, after the database transaction that records them.
    pub fn append(&mut self, data: &[f32]) -> Result<(), SearchError> {
        debug_assert!(data.len().is_multiple_of(self.dim));
        let committed = self.rows * self.dim as u64 * F32_BYTES;
        let len = self
            .file
            .metadata()
            .map_err(|e| SearchError::io("read", &self.path, e))?
            .len();
        if len > committed {
            self.cut_to_committed()?;
        }
        let io = |e| SearchError::io("write", &self.path, e);
        self.file.seek(SeekFrom::Start(committed)).map_err(io)?;
        let mut writer = BufWriter::new(&self.file);
        for v in data {
            writer.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        writer.flush().map_err(io)?;
        drop(writer);
        self.file.sync_data().map_err(io)
    }

    /// Counts `rows` more rows as committed (the database now records them).
    pub fn commit(&mut self, rows: u64) {
        self.rows += rows;
    }

    /// Every committed row, row-major.
    pub fn read_all(&self) -> Result<Vec<f32>, SearchError> {
        read_values(&self.file, &self.path, self.rows as usize * self.dim)
    }

    /// Writes a complete new vectors file at `path` holding `data`, durably, replacing any
    /// stale file of that name (a new generation's file is only ever stale, never live).
    pub fn create(path: PathBuf, dim: usize, data: &[f32]) -> Result<Self, SearchError> {
        let io = |e| SearchError::io("write", &path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io)?;
        let mut writer = BufWriter::new(&file);
        for v in data {
            writer.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        writer.flush().map_err(io)?;
        drop(writer);
        file.sync_all().map_err(io)?;
        Ok(Self {
            rows: (data.len() / dim) as u64,
            path,
            file,
            dim,
        })
    }

    /// Cuts the file back to its committed rows.
    fn cut_to_committed(&mut self) -> Result<(), SearchError> {
        let committed = self.rows * self.dim as u64 * F32_BYTES;
        self.file
            .set_len(committed)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| SearchError::io("truncate", &self.path, e))
    }
}

/// The first `rows` rows of `dim` values of the vectors file at `path`, read without writing
/// anything: what a reader that does not own the index sees of it. A missing file is an
/// [`std::io::ErrorKind::NotFound`] error ([`SearchError::Io`]), so that a reader can tell a
/// generation switched under it from a corrupt index.
///
/// # Errors
/// [`SearchError::Io`]; [`SearchError::Corrupt`] when the file is shorter than `rows` rows.
pub(crate) fn read_committed(path: &Path, dim: usize, rows: u64) -> Result<Vec<f32>, SearchError> {
    let file = File::open(path).map_err(|e| SearchError::io("open", path, e))?;
    committed_length(&file, path, dim, rows)?;
    read_values(&file, path, rows as usize * dim)
}

/// The length of the vectors file `file` (at `path`), which must hold `rows` rows of `dim`
/// values.
///
/// # Errors
/// [`SearchError::Corrupt`] when it is shorter; [`SearchError::Io`].
fn committed_length(file: &File, path: &Path, dim: usize, rows: u64) -> Result<u64, SearchError> {
    let committed = rows * dim as u64 * F32_BYTES;
    let len = file
        .metadata()
        .map_err(|e| SearchError::io("read", path, e))?
        .len();
    if len < committed {
        return Err(SearchError::corrupt(
            path,
            format!(
                "{len} bytes, but {rows} rows of {dim} floats ({committed} bytes) are committed"
            ),
        ));
    }
    Ok(len)
}

/// The first `total` values of the vectors file `file` (at `path`).
fn read_values(file: &File, path: &Path, total: usize) -> Result<Vec<f32>, SearchError> {
    let io = |e| SearchError::io("read", path, e);
    let mut values = Vec::with_capacity(total);
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut chunk = vec![0u8; READ_CHUNK];
    while values.len() < total {
        let want = ((total - values.len()) * F32_BYTES as usize).min(READ_CHUNK);
        reader.read_exact(&mut chunk[..want]).map_err(io)?;
        values.extend(
            chunk[..want]
                .chunks_exact(F32_BYTES as usize)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok(values)
}
