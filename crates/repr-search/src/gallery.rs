//! The searchable vectors of an index in memory, with what filters need to know of each file.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Filter, SearchError};

/// The id of an indexed file: stable while the file stays in the index (a change of content
/// keeps it; compaction keeps it), never reused after the file is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub u64);

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The gallery a search runs over: one L2-normalised vector per file, in increasing id order,
/// with each file's path (relative to the indexed folder, `/`-separated) and label (its
/// top-level folder). [`crate::Index::gallery`] loads one; [`Gallery::new`] builds one from
/// vectors in memory.
#[derive(Clone, Debug)]
pub struct Gallery {
    dim: usize,
    ids: Vec<FileId>,
    vectors: Vec<f32>,
    paths: Vec<String>,
    labels: Vec<Option<String>>,
}

/// One gallery item's data, as [`Gallery::new`] takes it.
#[derive(Clone, Debug)]
pub struct GalleryItem {
    /// Its id.
    pub id: FileId,
    /// Its vector (normalised by [`Gallery::new`]; a zero vector stays zero).
    pub vector: Vec<f32>,
    /// Its path, relative to the indexed folder, `/`-separated.
    pub path: String,
    /// Its label, if any.
    pub label: Option<String>,
}

impl Gallery {
    /// A gallery of `dim`-dimensional `items`, sorted by id; each vector is L2-normalised.
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`] when `dim` is 0, a vector has another length or a
    /// non-finite value, or two items share an id.
    pub fn new(dim: usize, mut items: Vec<GalleryItem>) -> Result<Self, SearchError> {
        if dim == 0 {
            return Err(SearchError::invalid("dim", "must be at least 1"));
        }
        items.sort_by_key(|item| item.id);
        if let Some(pair) = items.windows(2).find(|pair| pair[0].id == pair[1].id) {
            return Err(SearchError::invalid(
                "items",
                format!("id {} appears twice", pair[0].id),
            ));
        }
        let mut gallery = Self::with_capacity(dim, items.len());
        for item in items {
            if item.vector.len() != dim {
                return Err(SearchError::invalid(
                    format!("items[id {}].vector", item.id),
                    format!("{} values, expected {dim}", item.vector.len()),
                ));
            }
            if item.vector.iter().any(|v| !v.is_finite()) {
                return Err(SearchError::invalid(
                    format!("items[id {}].vector", item.id),
                    "holds NaN or infinity",
                ));
            }
            let mut vector = item.vector;
            normalize(&mut vector);
            gallery.push(item.id, &vector, item.path, item.label);
        }
        Ok(gallery)
    }

    /// An empty gallery of `dim`-dimensional vectors with room for `len` items.
    pub(crate) fn with_capacity(dim: usize, len: usize) -> Self {
        Self {
            dim,
            ids: Vec::with_capacity(len),
            vectors: Vec::with_capacity(len * dim),
            paths: Vec::with_capacity(len),
            labels: Vec::with_capacity(len),
        }
    }

    /// Appends an item whose vector is already normalised; ids must come in increasing order.
    pub(crate) fn push(&mut self, id: FileId, vector: &[f32], path: String, label: Option<String>) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        debug_assert_eq!(vector.len(), self.dim);
        self.ids.push(id);
        self.vectors.extend_from_slice(vector);
        self.paths.push(path);
        self.labels.push(label);
    }

    /// The dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the gallery has no item.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in increasing order (position `i` holds `ids()[i]`).
    pub fn ids(&self) -> &[FileId] {
        &self.ids
    }

    /// All vectors, row-major: item `i` at `[i * dim, (i + 1) * dim)`.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// The position of `id`, if the gallery holds it.
    pub fn position(&self, id: FileId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The vector of the item at `position`.
    ///
    /// # Panics
    /// If `position >= len()`.
    pub fn vector(&self, position: usize) -> &[f32] {
        &self.vectors[position * self.dim..(position + 1) * self.dim]
    }

    /// The path of the item at `position`, relative to the indexed folder.
    ///
    /// # Panics
    /// If `position >= len()`.
    pub fn path(&self, position: usize) -> &str {
        &self.paths[position]
    }

    /// The label of the item at `position`.
    ///
    /// # Panics
    /// If `position >= len()`.
    pub fn label(&self, position: usize) -> Option<&str> {
        self.labels[position].as_deref()
    }

    /// Which items `filter` keeps, by position; `None` when it keeps them all.
    pub fn admitted(&self, filter: &Filter) -> Option<Vec<bool>> {
        if filter.keeps_all() {
            return None;
        }
        Some(
            (0..self.len())
                .map(|i| filter.admits(self.ids[i], &self.paths[i], self.label(i)))
                .collect(),
        )
    }
}

/// Scales `vector` to unit L2 norm (in f64, so that the norm is exact to f32 precision); a
/// zero vector is left as it is.
pub(crate) fn normalize(vector: &mut [f32]) {
    let norm = vector
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for v in vector {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64, vector: Vec<f32>, path: &str) -> GalleryItem {
        GalleryItem {
            id: FileId(id),
            vector,
            path: path.into(),
            label: path.split_once('/').map(|(label, _)| label.into()),
        }
    }

    #[test]
    fn items_are_sorted_by_id_and_normalised() {
        let gallery = Gallery::new(
            2,
            vec![
                item(7, vec![3.0, 4.0], "a/x.png"),
                item(2, vec![0.0, 0.0], "y.png"),
            ],
        )
        .unwrap();
        assert_eq!(gallery.ids(), &[FileId(2), FileId(7)]);
        assert_eq!(gallery.vector(0), &[0.0, 0.0]);
        assert_eq!(gallery.vector(1), &[0.6, 0.8]);
        assert_eq!((gallery.label(0), gallery.label(1)), (None, Some("a")));
        assert_eq!(gallery.position(FileId(7)), Some(1));
        assert_eq!(gallery.position(FileId(3)), None);
    }

    #[test]
    fn bad_items_are_refused() {
        let err = |items| Gallery::new(2, items).unwrap_err().to_string();
        assert!(err(vec![item(1, vec![1.0], "a.png")]).contains("1 values, expected 2"));
        assert!(err(vec![item(1, vec![f32::NAN, 1.0], "a.png")]).contains("NaN"));
        let twice = vec![
            item(1, vec![1.0, 0.0], "a.png"),
            item(1, vec![0.0, 1.0], "b.png"),
        ];
        assert!(err(twice).contains("id 1 appears twice"));
    }
}
