//! Compaction: a new vectors file without dead rows, switched to in one transaction.
//!
//! The new generation's file is written and synced under a name no committed state points
//! at; one transaction renumbers the files' rows and switches the generation; then the old
//! file is deleted. Killed before the switch, the new file is stale; after, the old one is;
//! either is deleted on the next open.

use rusqlite::params;

use super::layout;
use super::schema::sql_int;
use super::vectors::VectorFile;
use crate::{Index, SearchError};

impl Index {
    /// Rewrites the vectors file with only the rows files point at, keeping every file's id
    /// and vector (bit for bit). [`Index::update`] does it by itself when more than half of
    /// the rows are dead ([`crate::UpdateOptions::auto_compact`]).
    ///
    /// # Errors
    /// [`SearchError::Io`], [`SearchError::Database`], [`SearchError::Corrupt`].
    pub fn compact(&mut self) -> Result<(), SearchError> {
        let database = &self.database;
        let db = |e| SearchError::database(database, e);
        let live: Vec<i64> = {
            let mut statement = self
                .conn
                .prepare("SELECT DISTINCT row FROM files ORDER BY row")
                .map_err(db)?;
            let rows = statement.query_map([], |row| row.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let dim = self.identity.dim;
        let all = self.vectors.read_all()?;
        let mut data = Vec::with_capacity(live.len() * dim);
        for &row in &live {
            let start = usize::try_from(row)
                .unwrap_or(usize::MAX)
                .saturating_mul(dim);
            let vector = all.get(start..start.saturating_add(dim)).ok_or_else(|| {
                SearchError::corrupt(
                    database,
                    format!("a file points at row {row}, past the committed rows"),
                )
            })?;
            data.extend_from_slice(vector);
        }
        drop(all);

        let generation = self.generation + 1;
        let new_path = layout::vectors_path(&self.dir, generation);
        let vectors = VectorFile::create(new_path, dim, &data)?;
        layout::sync_dir(&self.dir)?;

        let tx = self.conn.transaction().map_err(db)?;
        // New rows are never above old ones, and rows are renumbered in increasing order, so
        // a file already moved is never matched again.
        for (new_row, &old_row) in live.iter().enumerate() {
            let new_row = new_row as i64;
            if new_row != old_row {
                tx.execute(
                    "UPDATE files SET row = ?1 WHERE row = ?2",
                    params![new_row, old_row],
                )
                .map_err(db)?;
            }
        }
        tx.execute(
            "UPDATE state SET generation = ?1, rows = ?2",
            params![sql_int(generation), live.len() as i64],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;

        let old = std::mem::replace(&mut self.vectors, vectors);
        self.generation = generation;
        let old_path = old.path().to_path_buf();
        drop(old);
        layout::remove_if_present(&old_path)?;
        layout::sync_dir(&self.dir)
    }
}
