//! The graph of an index's approximate searcher, kept in the index directory so that it is
//! built once per state of the index.
//!
//! - `approx-<generation>-<rows>.usearch`: the graph of the gallery whose vectors are the
//!   `rows` committed rows of the vectors file of `generation`;
//! - `approx-<generation>-<rows>.json`: what the graph was built from: the graph
//!   configuration, the library version and a SHA-256 of the gallery's ids and vectors, so that
//!   a gallery that changed without a new row (a file removed, or changed to a content already
//!   indexed) is detected as well as one that did.
//!
//! A graph whose description does not match the gallery is rebuilt and replaces it; graphs of
//! other states are deleted once the new one is saved. The files are a cache: losing them
//! costs a rebuild, nothing more.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::approx::{ApproxConfig, ApproxSearcher};
use crate::index::State;
use crate::{Gallery, Index, IndexReader, SearchError};

/// The start of the name of every file this module writes.
const PREFIX: &str = "approx-";

/// Bumped when what the graph file holds changes meaning.
const FORMAT: u32 = 1;

/// What a saved graph was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Built {
    format: u32,
    library: String,
    connectivity: usize,
    expansion_add: usize,
    items: usize,
    dim: usize,
    gallery_sha256: String,
    graph_bytes: u64,
}

impl Index {
    /// An approximate searcher over [`Index::gallery`]. Its graph is loaded from the index
    /// directory when one was saved there for the index's current state and `config`'s
    /// `connectivity` and `expansion_add`; otherwise it is built (on all cores) and saved,
    /// replacing the graphs of earlier states. `expansion_search` applies either way.
    ///
    /// # Errors
    /// As [`Index::gallery`]; as [`ApproxSearcher::build`]; [`SearchError::Io`] or
    /// [`SearchError::Graph`] when the graph cannot be saved.
    pub fn approx_searcher(&self, config: &ApproxConfig) -> Result<ApproxSearcher, SearchError> {
        config.check()?;
        let gallery = self.gallery()?;
        let stem = stem(State {
            generation: self.generation,
            rows: self.vectors.rows(),
        });
        let mut wanted = built(&gallery, config);
        let gallery = match load_saved(&self.dir, &stem, gallery, &wanted, config) {
            Ok(searcher) => return Ok(searcher),
            Err(gallery) => gallery,
        };
        let graph = self.dir.join(format!("{stem}.usearch"));
        let description = self.dir.join(format!("{stem}.json"));
        // The description goes first, so that a graph is never described by another's.
        remove_if_present(&description)?;
        let searcher = ApproxSearcher::build(gallery, config)?;
        let partial = self.dir.join(format!("{stem}.usearch.partial"));
        searcher.save(&partial)?;
        fs::rename(&partial, &graph).map_err(|e| SearchError::io("rename", &partial, e))?;
        wanted.graph_bytes = file_len(&graph).unwrap_or(0);
        let json = serde_json::to_vec_pretty(&wanted)
            .map_err(|e| SearchError::invalid("approx", e.to_string()))?;
        let partial = self.dir.join(format!("{stem}.json.partial"));
        fs::write(&partial, json).map_err(|e| SearchError::io("write", &partial, e))?;
        fs::rename(&partial, &description).map_err(|e| SearchError::io("rename", &partial, e))?;
        remove_other_graphs(&self.dir, &stem)?;
        Ok(searcher)
    }
}

impl IndexReader {
    /// An approximate searcher over `gallery`, the gallery of a snapshot of the committed
    /// state `state`: the graph an [`Index`] saved for that state when there is a valid one
    /// ([`Index::approx_searcher`]), otherwise one built in memory (a reader writes nothing).
    ///
    /// # Errors
    /// As [`ApproxSearcher::build`].
    pub(crate) fn approx_searcher(
        &self,
        gallery: Gallery,
        state: State,
        config: &ApproxConfig,
    ) -> Result<ApproxSearcher, SearchError> {
        config.check()?;
        let wanted = built(&gallery, config);
        match load_saved(self.dir(), &stem(state), gallery, &wanted, config) {
            Ok(searcher) => Ok(searcher),
            Err(gallery) => ApproxSearcher::build(gallery, config),
        }
    }
}

/// The start of the names of the graph files of the committed state `state`.
fn stem(state: State) -> String {
    format!("{PREFIX}{}-{}", state.generation, state.rows)
}

/// The graph saved in `dir` under `stem` when its description is `wanted` (whatever its
/// size) and the file is whole and loads; `gallery` back otherwise.
fn load_saved(
    dir: &Path,
    stem: &str,
    gallery: Gallery,
    wanted: &Built,
    config: &ApproxConfig,
) -> Result<ApproxSearcher, Gallery> {
    let graph = dir.join(format!("{stem}.usearch"));
    let Some(found) = read_built(&dir.join(format!("{stem}.json"))) else {
        return Err(gallery);
    };
    let described = found
        == Built {
            graph_bytes: found.graph_bytes,
            ..wanted.clone()
        };
    if !described || file_len(&graph) != Some(found.graph_bytes) {
        return Err(gallery);
    }
    ApproxSearcher::try_load(gallery, &graph, config).map_err(|failed| failed.0)
}

/// The description of a graph of `gallery` under `config` (`graph_bytes` left at 0).
fn built(gallery: &Gallery, config: &ApproxConfig) -> Built {
    Built {
        format: FORMAT,
        library: format!("usearch {}", usearch::version()),
        connectivity: config.connectivity,
        expansion_add: config.expansion_add,
        items: gallery.len(),
        dim: gallery.dim(),
        gallery_sha256: fingerprint(gallery),
        graph_bytes: 0,
    }
}

/// SHA-256 of the gallery's dimension, ids and vectors (little-endian), in hex: a graph keyed
/// by position is valid exactly for the galleries with this fingerprint.
fn fingerprint(gallery: &Gallery) -> String {
    let mut hash = Sha256::new();
    hash.update((gallery.dim() as u64).to_le_bytes());
    hash.update((gallery.len() as u64).to_le_bytes());
    for id in gallery.ids() {
        hash.update(id.0.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(4096 * 4);
    for block in gallery.vectors().chunks(4096) {
        bytes.clear();
        bytes.extend(block.iter().flat_map(|v| v.to_le_bytes()));
        hash.update(&bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The description at `path`, or `None` when it is missing or unreadable (both mean: build).
fn read_built(path: &Path) -> Option<Built> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn file_len(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

fn remove_if_present(path: &Path) -> Result<(), SearchError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(SearchError::io("delete", path, e)),
        _ => Ok(()),
    }
}

/// Deletes the graph files in `dir` of states other than `keep` (and leftovers of
/// interrupted saves).
fn remove_other_graphs(dir: &Path, keep: &str) -> Result<(), SearchError> {
    let entries = fs::read_dir(dir).map_err(|e| SearchError::io("read", dir, e))?;
    let mut stale: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| SearchError::io("read", dir, e))?
            .file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(state) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('.').next())
        else {
            continue;
        };
        let ours = state
            .split_once('-')
            .is_some_and(|(g, r)| g.parse::<u64>().is_ok() && r.parse::<u64>().is_ok());
        let current = format!("{PREFIX}{state}") == keep && !name.ends_with(".partial");
        if ours && !current {
            stale.push(dir.join(name));
        }
    }
    stale.iter().try_for_each(|path| remove_if_present(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileId, GalleryItem};

    fn gallery(ids: &[u64]) -> Gallery {
        let items = ids
            .iter()
            .map(|&id| GalleryItem {
                id: FileId(id),
                vector: vec![id as f32, 1.0],
                path: format!("{id}.png"),
                label: None,
            })
            .collect();
        Gallery::new(2, items).unwrap()
    }

    #[test]
    fn the_fingerprint_sees_ids_and_vectors() {
        let a = fingerprint(&gallery(&[1, 2, 3]));
        assert_eq!(a, fingerprint(&gallery(&[1, 2, 3])));
        assert_ne!(a, fingerprint(&gallery(&[1, 2])));
        assert_ne!(a, fingerprint(&gallery(&[1, 2, 4])));
    }

    #[test]
    fn only_other_states_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "approx-1-10.usearch",
            "approx-1-10.json",
            "approx-0-7.usearch",
            "approx-0-7.json",
            "approx-1-100.usearch",
            "approx-1-10.usearch.partial",
            "approx-notes.txt",
            "vectors-1.f32",
        ];
        for name in names {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_other_graphs(dir.path(), "approx-1-10").unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "approx-1-10.json",
                "approx-1-10.usearch",
                "approx-notes.txt",
                "vectors-1.f32"
            ]
        );
    }
}
