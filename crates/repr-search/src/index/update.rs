//! The incremental update: walk the folder, embed what is new or changed, drop what is gone.
//!
//! Each batch is made durable in two steps: its vectors are appended to the vectors file and
//! synced, then one transaction records its files and the new committed row count. Killed
//! between the two, the appended rows are past the committed count and are cut on the next
//! open; the files of the batch are then still new, and the next update redoes that batch
//! only.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use rayon::prelude::*;
use rusqlite::params;
use sha2::{Digest, Sha256};

use super::report::{Failure, Progress, UpdateOptions, UpdateReport};
use super::schema::{self, FailureRow, FileRow, sql_int};
use super::walk::{Found, Walk, walk};
use crate::embed::encode;
use crate::{Index, Preprocess, SearchError};

/// A file to look at: new, or its size or modification time changed.
struct Candidate<'a> {
    found: &'a Found,
    previous: Option<&'a FileRow>,
}

/// What reading a candidate found.
enum Looked {
    /// Its content is what the index holds for it: only its size and time changed.
    Same,
    /// Its content is already in the index (another file's, or moved here): its vector row.
    Known([u8; 32], u64),
    /// New content, decoded and preprocessed.
    Pixels([u8; 32], Vec<u8>),
    /// It could not be read or decoded.
    Failed(String),
}

/// What a batch records for a candidate.
enum Outcome {
    Touched,
    Vector { sha256: [u8; 32], row: u64 },
    Failed(String),
}

impl Index {
    /// Brings the index up to date with its folder: embeds new files and files whose size or
    /// modification time changed *and* whose content (SHA-256) changed, updates the times of
    /// files touched without a change, drops files that disappeared, and records files that
    /// cannot be read (reported, not retried until they change). Files whose content is
    /// already indexed (moved or copied) take its vector without being embedded.
    ///
    /// `encoder` maps a batch `[n, channels, height, width]` of images prepared by the
    /// index's [`Preprocess`] to `[n, dim]` vectors on `device` (without autodiff); the
    /// images of a batch are decoded in parallel. Vectors are stored L2-normalised.
    /// `progress` is told how many of the files to look at are done, after each batch.
    ///
    /// An update that stops (an error, a panic in the encoder, the process killed) keeps
    /// every batch committed before; the next update goes on from there.
    ///
    /// # Errors
    /// [`SearchError::Io`] when the folder cannot be read (nothing is then taken for
    /// removed); [`SearchError::EncoderShape`], [`SearchError::NonFinite`] (naming the files)
    /// for bad encoder output; [`SearchError::InvalidInput`] for a zero batch size;
    /// [`SearchError::Database`], [`SearchError::Corrupt`].
    pub fn update(
        &mut self,
        options: &UpdateOptions,
        device: &Device,
        mut encoder: impl FnMut(Tensor<4>) -> Tensor<2>,
        mut progress: impl FnMut(Progress),
    ) -> Result<UpdateReport, SearchError> {
        if options.batch_size == 0 {
            return Err(SearchError::invalid(
                "options.batch_size",
                "must be at least 1",
            ));
        }
        let skip = fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        let walk = walk(&self.root, &skip)?;
        let known: HashMap<String, FileRow> = schema::files(&self.conn, &self.database)?
            .into_iter()
            .map(|f| (f.entry.path.clone(), f))
            .collect();
        let failed_before: HashMap<String, FailureRow> =
            schema::failures(&self.conn, &self.database)?
                .into_iter()
                .map(|f| (f.path.clone(), f))
                .collect();
        let mut report = UpdateReport {
            failed: walk.failed.clone(),
            ..UpdateReport::default()
        };
        let mut candidates = Vec::new();
        for found in &walk.files {
            let unchanged = |size, mtime_ns| size == found.size && mtime_ns == found.mtime_ns;
            let previous = known.get(&found.path);
            if previous.is_some_and(|p| unchanged(p.entry.size, p.entry.mtime_ns)) {
                report.unchanged += 1;
            } else if let Some(failure) = failed_before.get(&found.path)
                && unchanged(failure.size, failure.mtime_ns)
            {
                report.known_failures.push(Failure {
                    path: failure.path.clone(),
                    reason: failure.reason.clone(),
                });
            } else {
                candidates.push(Candidate { found, previous });
            }
        }

        let mut by_hash: HashMap<[u8; 32], u64> =
            known.values().map(|f| (f.entry.sha256, f.row)).collect();
        let device = device.clone().without_autodiff();
        let total = candidates.len();
        progress(Progress { done: 0, total });
        let mut done = 0;
        for batch in candidates.chunks(options.batch_size) {
            self.update_batch(
                batch,
                &mut by_hash,
                options,
                &device,
                &mut encoder,
                &mut report,
            )?;
            done += batch.len();
            progress(Progress { done, total });
        }
        self.remove_missing(&walk, &known, &failed_before, &mut report)?;
        let dead = self.dead_rows()?;
        if options.auto_compact && dead > 0 && 2 * dead > self.vectors.rows() {
            self.compact()?;
            report.compacted = true;
        }
        report.added.sort();
        report.changed.sort();
        report.removed.sort();
        report.failed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(report)
    }

    /// Reads, embeds and commits one batch of candidates.
    fn update_batch(
        &mut self,
        batch: &[Candidate<'_>],
        by_hash: &mut HashMap<[u8; 32], u64>,
        options: &UpdateOptions,
        device: &Device,
        encoder: &mut impl FnMut(Tensor<4>) -> Tensor<2>,
        report: &mut UpdateReport,
    ) -> Result<(), SearchError> {
        let (root, preprocess) = (&self.root, &self.identity.preprocess);
        let looked: Vec<Looked> = batch
            .par_iter()
            .map(|c| look(root, c, by_hash, preprocess, options.max_image_pixels))
            .collect();

        // New contents get the rows after the committed ones; a content met twice in the
        // batch is embedded once.
        let first_row = self.vectors.rows();
        let mut new_rows: HashMap<[u8; 32], u64> = HashMap::new();
        let (mut images, mut image_paths) = (Vec::new(), Vec::new());
        let mut outcomes = Vec::with_capacity(batch.len());
        for (candidate, looked) in batch.iter().zip(looked) {
            outcomes.push(match looked {
                Looked::Same => Outcome::Touched,
                Looked::Failed(reason) => Outcome::Failed(reason),
                Looked::Known(sha256, row) => Outcome::Vector { sha256, row },
                Looked::Pixels(sha256, pixels) => {
                    let row = match new_rows.get(&sha256) {
                        Some(&row) => row,
                        None => {
                            let row = first_row + images.len() as u64;
                            new_rows.insert(sha256, row);
                            images.push(pixels);
                            image_paths.push(root.join(&candidate.found.path));
                            row
                        }
                    };
                    Outcome::Vector { sha256, row }
                }
            });
        }
        if !images.is_empty() {
            let dim = Some(self.identity.dim);
            let (vectors, _) = encode(&images, &image_paths, preprocess, dim, device, encoder)?;
            self.vectors.append(&vectors)?;
        }

        let database = &self.database;
        let db = |e| SearchError::database(database, e);
        let tx = self.conn.transaction().map_err(db)?;
        for (candidate, outcome) in batch.iter().zip(outcomes) {
            let found = candidate.found;
            let (size, mtime_ns) = (sql_int(found.size), found.mtime_ns);
            let previous_id = candidate.previous.map(|p| sql_int(p.entry.id.0));
            match (outcome, previous_id) {
                (Outcome::Touched, Some(id)) => {
                    tx.execute(
                        "UPDATE files SET size = ?1, mtime_ns = ?2 WHERE id = ?3",
                        params![size, mtime_ns, id],
                    )
                    .map_err(db)?;
                    report.unchanged += 1;
                }
                (Outcome::Touched, None) => unreachable!("only an indexed file can be unchanged"),
                (Outcome::Vector { sha256, row }, previous_id) => {
                    let row = sql_int(row);
                    if let Some(id) = previous_id {
                        tx.execute(
                            "UPDATE files SET size = ?1, mtime_ns = ?2, sha256 = ?3, row = ?4 \
                             WHERE id = ?5",
                            params![size, mtime_ns, &sha256[..], row, id],
                        )
                        .map_err(db)?;
                        report.changed.push(found.path.clone());
                    } else {
                        tx.execute(
                            "INSERT INTO files (path, size, mtime_ns, sha256, label, row) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![found.path, size, mtime_ns, &sha256[..], found.label, row],
                        )
                        .map_err(db)?;
                        report.added.push(found.path.clone());
                    }
                    tx.execute("DELETE FROM failures WHERE path = ?1", [&found.path])
                        .map_err(db)?;
                }
                (Outcome::Failed(reason), previous_id) => {
                    // Its old vector no longer describes it.
                    if let Some(id) = previous_id {
                        tx.execute("DELETE FROM files WHERE id = ?1", [id])
                            .map_err(db)?;
                    }
                    tx.execute(
                        "INSERT OR REPLACE INTO failures (path, size, mtime_ns, reason) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![found.path, size, mtime_ns, reason],
                    )
                    .map_err(db)?;
                    report.failed.push(Failure {
                        path: found.path.clone(),
                        reason,
                    });
                }
            }
        }
        let added_rows = images.len() as u64;
        tx.execute("UPDATE state SET rows = rows + ?1", [sql_int(added_rows)])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        self.vectors.commit(added_rows);
        by_hash.extend(new_rows);
        report.embedded += images.len();
        Ok(())
    }

    /// Drops the files (and recorded failures) no longer in the folder, in one transaction;
    /// files under a folder that could not be listed are kept.
    fn remove_missing(
        &mut self,
        walk: &Walk,
        known: &HashMap<String, FileRow>,
        failed_before: &HashMap<String, FailureRow>,
        report: &mut UpdateReport,
    ) -> Result<(), SearchError> {
        let present: HashSet<&str> = walk.files.iter().map(|f| f.path.as_str()).collect();
        let gone = |path: &str| !present.contains(path) && !walk.is_unlisted(path);
        let database = &self.database;
        let db = |e| SearchError::database(database, e);
        let tx = self.conn.transaction().map_err(db)?;
        for (path, file) in known {
            if gone(path) {
                tx.execute(
                    "DELETE FROM files WHERE id = ?1",
                    [sql_int(file.entry.id.0)],
                )
                .map_err(db)?;
                report.removed.push(path.clone());
            }
        }
        for path in failed_before.keys() {
            if gone(path) {
                tx.execute("DELETE FROM failures WHERE path = ?1", [path])
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }
}

/// Hashes a candidate and, when its content is new to the index, decodes and preprocesses
/// it. Runs on rayon's threads.
fn look(
    root: &Path,
    candidate: &Candidate<'_>,
    by_hash: &HashMap<[u8; 32], u64>,
    preprocess: &Preprocess,
    max_pixels: u64,
) -> Looked {
    let path = root.join(&candidate.found.path);
    let sha256 = match sha256_of(&path) {
        Ok(sha256) => sha256,
        Err(e) => return Looked::Failed(format!("cannot read it: {e}")),
    };
    if candidate.previous.is_some_and(|p| p.entry.sha256 == sha256) {
        return Looked::Same;
    }
    if let Some(&row) = by_hash.get(&sha256) {
        return Looked::Known(sha256, row);
    }
    match preprocess.load(&path, max_pixels) {
        Ok(pixels) => Looked::Pixels(sha256, pixels),
        Err(e) => Looked::Failed(e.to_string()),
    }
}

/// The SHA-256 of the file at `path`, read in blocks: the content hash an index records for
/// each file (and that a caller can record for its model's weights).
///
/// # Errors
/// When the file cannot be opened or read.
pub fn sha256_of(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&block[..n]);
    }
}
