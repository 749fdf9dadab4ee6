//! Near-duplicate images: pairs above a similarity threshold, grouped by connected
//! components.

use crate::{FileId, Filter, SearchError, Searcher};

/// Queries searched at a time: bounds the memory of the hit lists.
const QUERY_CHUNK: usize = 1024;

/// The groups of near-duplicate images of `searcher`'s gallery: two images are linked when
/// one is among the other's `neighbours` most similar images with a cosine similarity of at
/// least `threshold`, and a group is a connected component of these links (so a chain of
/// close images forms one group even where its ends are further apart). Groups have at
/// least two images; ids are sorted within a group, groups by their first id. Images with a
/// zero vector are in no group.
///
/// With an exact searcher and `neighbours` at least the size of the largest group minus one,
/// every pair above the threshold is found.
///
/// ```
/// use repr_search::{ExactSearcher, FileId, Gallery, GalleryItem, duplicate_groups};
///
/// let item = |id, vector: [f32; 2]| GalleryItem {
///     id: FileId(id), vector: vector.to_vec(), path: format!("{id}.png"), label: None,
/// };
/// let gallery = Gallery::new(2, vec![
///     item(1, [1.0, 0.0]), item(2, [1.0, 0.01]), item(3, [0.0, 1.0]), item(4, [0.01, 1.0]),
///     item(5, [1.0, 1.0]),
/// ])?;
/// let groups = duplicate_groups(&ExactSearcher::new(gallery), 0.99, 4)?;
/// assert_eq!(groups, [vec![FileId(1), FileId(2)], vec![FileId(3), FileId(4)]]);
/// # Ok::<(), repr_search::SearchError>(())
/// ```
///
/// # Errors
/// [`SearchError::InvalidInput`] when `threshold` is not in `[-1, 1]` or `neighbours` is 0;
/// as [`Searcher::search`].
pub fn duplicate_groups<S: Searcher + ?Sized>(
    searcher: &S,
    threshold: f32,
    neighbours: usize,
) -> Result<Vec<Vec<FileId>>, SearchError> {
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(SearchError::invalid(
            "threshold",
            format!("{threshold} is not a cosine similarity (from -1 to 1)"),
        ));
    }
    if neighbours == 0 {
        return Err(SearchError::invalid("neighbours", "must be at least 1"));
    }
    let gallery = searcher.gallery();
    let mut components = Components::new(gallery.len());
    // A zero vector has no direction: it is nobody's duplicate.
    let nonzero: Vec<bool> = (0..gallery.len())
        .map(|i| gallery.vector(i).iter().any(|&v| v != 0.0))
        .collect();
    let searchable: Vec<usize> = (0..gallery.len()).filter(|&i| nonzero[i]).collect();
    for chunk in searchable.chunks(QUERY_CHUNK) {
        let queries: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| gallery.vector(i).iter().copied())
            .collect();
        // One more than asked: each image finds itself.
        let hits = searcher.search(&queries, neighbours + 1, &Filter::default())?;
        for (&position, hits) in chunk.iter().zip(hits) {
            let id = gallery.ids()[position];
            for hit in hits {
                if hit.id != id
                    && hit.score >= threshold
                    && let Some(other) = gallery.position(hit.id)
                    && nonzero[other]
                {
                    components.join(position, other);
                }
            }
        }
    }
    Ok(components
        .groups()
        .into_iter()
        .map(|group| group.into_iter().map(|i| gallery.ids()[i]).collect())
        .collect())
}

/// Union-find over positions, with path halving and union by size.
struct Components {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl Components {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a == b {
            return;
        }
        let (big, small) = if self.size[a] >= self.size[b] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
    }

    /// The components of more than one position, each sorted, ordered by their first.
    fn groups(mut self) -> Vec<Vec<usize>> {
        let n = self.parent.len();
        let mut by_root: Vec<Vec<usize>> = vec![Vec::new(); n];
        for i in 0..n {
            let root = self.root(i);
            by_root[root].push(i);
        }
        // Positions were pushed in increasing order, so each group is sorted.
        let mut groups: Vec<Vec<usize>> = by_root.into_iter().filter(|g| g.len() > 1).collect();
        groups.sort_by_key(|g| g[0]);
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExactSearcher, Gallery, GalleryItem};

    fn searcher(vectors: &[[f32; 2]]) -> ExactSearcher {
        let items = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| GalleryItem {
                id: FileId(10 * i as u64 + 10),
                vector: v.to_vec(),
                path: format!("{i}.png"),
                label: None,
            })
            .collect();
        ExactSearcher::new(Gallery::new(2, items).unwrap())
    }

    /// Angles in degrees as unit vectors.
    fn at(degrees: &[f32]) -> Vec<[f32; 2]> {
        degrees
            .iter()
            .map(|d| [d.to_radians().cos(), d.to_radians().sin()])
            .collect()
    }

    #[test]
    fn a_chain_of_close_images_is_one_group() {
        // 0°, 5°, 10°, 15° are 5° apart in a chain; 0° and 15° are not close themselves.
        let searcher = searcher(&at(&[0.0, 5.0, 10.0, 15.0, 60.0, 90.0, 93.0]));
        let threshold = 6.0f32.to_radians().cos();
        let groups = duplicate_groups(&searcher, threshold, 2).unwrap();
        let ids = |ids: &[u64]| ids.iter().map(|&i| FileId(i)).collect::<Vec<_>>();
        assert_eq!(groups, [ids(&[10, 20, 30, 40]), ids(&[60, 70])]);
    }

    #[test]
    fn the_threshold_is_inclusive_and_zero_vectors_are_left_out() {
        let searcher = searcher(&[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]);
        let groups = duplicate_groups(&searcher, 1.0, 3).unwrap();
        assert_eq!(groups, [vec![FileId(10), FileId(20)]]);
        assert!(duplicate_groups(&searcher, 1.01, 3).is_err());
        assert!(duplicate_groups(&searcher, 0.9, 0).is_err());
        assert!(duplicate_groups(&searcher, f32::NAN, 3).is_err());
        // Everything at or above -1: all but the zero vector.
        let all = duplicate_groups(&searcher, -1.0, 3).unwrap();
        assert_eq!(all, [vec![FileId(10), FileId(20), FileId(40)]]);
    }

    #[test]
    fn many_identical_images_form_one_group_with_few_neighbours() {
        let searcher = searcher(&vec![[0.3, 0.4]; 50]);
        let groups = duplicate_groups(&searcher, 0.999, 3).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 50);
    }
}
