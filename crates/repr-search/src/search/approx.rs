//! Approximate search: an HNSW graph (Malkov & Yashunin, "Efficient and robust approximate
//! nearest neighbor search using Hierarchical Navigable Small World graphs", 2016) built by
//! `usearch` over the gallery, with exact re-scoring and an exact fallback for filters.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use usearch::{IndexOptions, MetricKind, ScalarKind};

use super::exact::normalized_queries;
use super::scores::dot;
use super::slots::Slots;
use super::subset::{admitted_positions, search_positions};
use super::top_k::TopK;
use crate::{Filter, Gallery, Hit, SearchError, Searcher};

/// How the graph of an [`ApproxSearcher`] is built and searched. The defaults reach a
/// recall@10 of at least 0.95 against [`crate::ExactSearcher`] on clustered vectors (as
/// learned embeddings are) up to a million items; `scripts/ann-choice/RESULTS.md` has the
/// measurements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApproxConfig {
    /// Links per node and layer (HNSW's `M`; the bottom layer keeps `2 M`). More links: higher
    /// recall, a larger graph, a slower build.
    pub connectivity: usize,
    /// Candidates kept while inserting an item (`efConstruction`): a better graph for a slower
    /// build.
    pub expansion_add: usize,
    /// Candidates kept while searching (`efSearch`, at least `k` is used): higher recall for
    /// slower queries. Not part of the graph: it can change without a rebuild.
    pub expansion_search: usize,
    /// A filter admitting fewer items than this is searched exactly among the admitted
    /// items (default [`crate::APPROX_MIN_ITEMS`]: below it, exact search is the faster).
    /// Not part of the graph.
    pub exact_below: usize,
}

impl Default for ApproxConfig {
    fn default() -> Self {
        Self {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 128,
            exact_below: super::auto::APPROX_MIN_ITEMS,
        }
    }
}

impl ApproxConfig {
    /// [`SearchError::InvalidInput`] naming the field that is impossible.
    pub(crate) fn check(&self) -> Result<(), SearchError> {
        if !(2..=255).contains(&self.connectivity) {
            return Err(SearchError::invalid(
                "approx.connectivity",
                format!("{} is not in 2..=255", self.connectivity),
            ));
        }
        for (field, value) in [
            ("approx.expansion_add", self.expansion_add),
            ("approx.expansion_search", self.expansion_search),
        ] {
            if value == 0 {
                return Err(SearchError::invalid(field, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A filter admitting fewer than one item in this many is searched exactly among the
/// admitted items: a graph search would walk past mostly refused nodes, and the admitted
/// items are few enough to score them all.
const SPARSE_FILTER: usize = 8;

/// Approximate cosine search over a [`Gallery`] through an HNSW graph (`usearch`), keyed by
/// gallery position.
///
/// - Scores are exact: every candidate the graph returns is scored again against the
///   gallery's vector, so a hit's score is the same cosine similarity
///   [`crate::ExactSearcher`] reports; only which items are found is approximate.
/// - Filters are never violated: the graph search skips refused items; a filter admitting
///   fewer than [`ApproxConfig::exact_below`] items, or a small fraction of the gallery,
///   is searched exactly among the admitted items, and so is any query for which the graph
///   finds fewer than `k` admitted items while more exist. `k` hits are returned whenever
///   `k` items are admitted.
///
/// [`crate::Index::approx_searcher`] keeps the graph in the index directory, so that it is
/// built once.
///
/// ```
/// use repr_search::{ApproxConfig, ApproxSearcher, FileId, Filter, Gallery, GalleryItem, Searcher};
///
/// // 200 items on a circle; the nearest ones to an angle are the items at angles next to it.
/// let items = (0..200u64)
///     .map(|i| {
///         let angle = i as f32 * std::f32::consts::TAU / 200.0;
///         GalleryItem { id: FileId(i), vector: vec![angle.cos(), angle.sin()], path: format!("{i}.png"), label: None }
///     })
///     .collect();
/// let searcher = ApproxSearcher::build(Gallery::new(2, items)?, &ApproxConfig::default())?;
/// // Items 9 and 8 excluded, the two nearest to item 10 are 11 and 12 (no ties).
/// let hits = searcher.search_id(FileId(10), 2, &Filter::default().excluding([FileId(8), FileId(9)]))?;
/// assert_eq!(hits.iter().map(|h| h.id.0).collect::<Vec<_>>(), [11, 12]);
/// # Ok::<(), repr_search::SearchError>(())
/// ```
pub struct ApproxSearcher {
    gallery: Gallery,
    graph: usearch::Index,
    config: ApproxConfig,
    /// Bounds the threads inside `graph` to the search contexts it has.
    slots: Slots,
}

impl std::fmt::Debug for ApproxSearcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproxSearcher")
            .field("items", &self.gallery.len())
            .field("dim", &self.gallery.dim())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ApproxSearcher {
    /// Builds the graph of `gallery` on all cores.
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`] for an impossible `config`; [`SearchError::Graph`] when
    /// the graph library fails (out of memory).
    pub fn build(gallery: Gallery, config: &ApproxConfig) -> Result<Self, SearchError> {
        let searcher = Self::empty(gallery, config)?;
        (0..searcher.gallery.len())
            .into_par_iter()
            .try_for_each(|position| {
                let _slot = searcher.slots.acquire();
                searcher
                    .graph
                    .add(position as u64, searcher.gallery.vector(position))
                    .map_err(|e| SearchError::graph("build", None, e.what()))
            })?;
        Ok(searcher)
    }

    /// Loads a graph of `gallery` that [`ApproxSearcher::save`] wrote, with `config`'s
    /// `expansion_search`.
    ///
    /// The file must be of this gallery: its dimension and item count are checked here; that
    /// its items are this gallery's, in this order, is the caller's to know
    /// ([`crate::Index::approx_searcher`] records a fingerprint of the gallery beside it).
    ///
    /// # Errors
    /// [`SearchError::Graph`] naming the file when it cannot be read or is not a graph of
    /// `gallery.len()` items of `gallery.dim()` dimensions; [`SearchError::InvalidInput`]
    /// for an impossible `config` or a path that is not UTF-8.
    pub fn load(gallery: Gallery, path: &Path, config: &ApproxConfig) -> Result<Self, SearchError> {
        Self::try_load(gallery, path, config).map_err(|failed| failed.1)
    }

    /// [`ApproxSearcher::load`], giving the gallery back on failure.
    pub(crate) fn try_load(
        gallery: Gallery,
        path: &Path,
        config: &ApproxConfig,
    ) -> Result<Self, Box<(Gallery, SearchError)>> {
        let slots = Slots::new(search_threads());
        let graph = Self::check_file(&gallery, path)
            .and_then(|()| new_graph(&gallery, config, slots.len()))
            .and_then(|graph| {
                graph
                    .load(utf8(path)?)
                    .map_err(|e| SearchError::graph("load", Some(path), e.what()))?;
                // Loading replaces the sizes reserved before.
                reserve(&graph, gallery.len(), slots.len())?;
                graph.change_expansion_search(config.expansion_search);
                Ok(graph)
            });
        match graph {
            Ok(graph) => Ok(Self {
                gallery,
                graph,
                config: config.clone(),
                slots,
            }),
            Err(e) => Err(Box::new((gallery, e))),
        }
    }

    /// [`SearchError::Graph`] unless the file at `path` holds a graph of as many vectors as
    /// `gallery`, of its dimension, for inner products of f32 values.
    fn check_file(gallery: &Gallery, path: &Path) -> Result<(), SearchError> {
        let fail = |message: String| SearchError::graph("load", Some(path), message);
        let meta = usearch::Index::metadata(utf8(path)?).map_err(|e| fail(e.what().into()))?;
        let expected = (gallery.dim() as u64, gallery.len() as u64, 0);
        let found = (meta.dimensions, meta.count_present, meta.count_deleted);
        if found != expected
            || meta.metric != MetricKind::IP
            || meta.quantization != ScalarKind::F32
        {
            return Err(fail(format!(
                "holds {} vectors of {} dimensions ({} deleted, {:?} metric, {:?} scalars); \
                 expected {} of {} (none deleted, IP, F32)",
                found.1, found.0, found.2, meta.metric, meta.quantization, expected.1, expected.0
            )));
        }
        Ok(())
    }

    /// Writes the graph to `path` (the vectors it holds included; the gallery's paths and
    /// labels are not).
    ///
    /// # Errors
    /// [`SearchError::Graph`] naming the file; [`SearchError::InvalidInput`] for a path that
    /// is not UTF-8.
    pub fn save(&self, path: &Path) -> Result<(), SearchError> {
        self.graph
            .save(utf8(path)?)
            .map_err(|e| SearchError::graph("save", Some(path), e.what()))
    }

    /// The configuration the graph was built and is searched with.
    pub fn config(&self) -> &ApproxConfig {
        &self.config
    }

    /// Searches with `expansion_search` candidates from now on (at least 1): the recall and
    /// latency trade-off, changed without a rebuild.
    pub fn set_expansion_search(&mut self, expansion_search: usize) {
        let expansion_search = expansion_search.max(1);
        self.config.expansion_search = expansion_search;
        self.graph.change_expansion_search(expansion_search);
    }

    /// A searcher over `gallery` with an empty graph, with room for all its items.
    fn empty(gallery: Gallery, config: &ApproxConfig) -> Result<Self, SearchError> {
        let slots = Slots::new(search_threads());
        let graph = new_graph(&gallery, config, slots.len())?;
        Ok(Self {
            gallery,
            graph,
            config: config.clone(),
            slots,
        })
    }

    /// The top `k` of one normalised query through the graph, among the `admitted` items
    /// (`admitted_count` of them); `None` when the graph found fewer than `k` of them while
    /// more exist.
    fn search_graph(
        &self,
        query: &[f32],
        k: usize,
        admitted: Option<&[bool]>,
        admitted_count: usize,
    ) -> Result<Option<Vec<Hit>>, SearchError> {
        let matches = {
            let _slot = self.slots.acquire();
            match admitted {
                None => self.graph.search(query, k),
                Some(admitted) => self.graph.filtered_search(query, k, |key| {
                    admitted.get(key as usize).copied().unwrap_or(false)
                }),
            }
            .map_err(|e| SearchError::graph("search", None, e.what()))?
        };
        let mut top = TopK::new(k);
        for key in matches.keys {
            let position = key as usize;
            // The graph holds positions of this gallery only; checked again all the same,
            // since a refused item must never be returned.
            if position < self.gallery.len() && admitted.is_none_or(|a| a[position]) {
                top.push(
                    self.gallery.ids()[position],
                    dot(query, self.gallery.vector(position)),
                );
            }
        }
        let hits = top.into_hits();
        Ok((hits.len() >= k.min(admitted_count)).then_some(hits))
    }
}

impl Searcher for ApproxSearcher {
    fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    fn search(
        &self,
        queries: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Vec<Hit>>, SearchError> {
        let dim = self.gallery.dim();
        let queries = normalized_queries(queries, dim)?;
        let admitted = self.gallery.admitted(filter);
        let admitted = admitted.as_deref();
        let admitted_count =
            admitted.map_or(self.gallery.len(), |a| a.iter().filter(|&&x| x).count());
        if k == 0 || admitted_count == 0 {
            return Ok(vec![Vec::new(); queries.len() / dim]);
        }
        let sparse = admitted_count < self.config.exact_below
            || admitted_count * SPARSE_FILTER < self.gallery.len();
        let positions = || admitted_positions(&self.gallery, admitted);
        if sparse {
            return Ok(search_positions(&self.gallery, &queries, k, &positions()));
        }
        queries
            .par_chunks(dim)
            .map(|query| {
                match self.search_graph(query, k, admitted, admitted_count)? {
                    Some(hits) => Ok(hits),
                    // Rare: the graph walk ended among refused items.
                    None => Ok(search_positions(&self.gallery, query, k, &positions())
                        .pop()
                        .unwrap_or_default()),
                }
            })
            .collect()
    }
}

/// An empty graph for the vectors of `gallery` under `config`, with room for all of them
/// and `threads` threads at once.
fn new_graph(
    gallery: &Gallery,
    config: &ApproxConfig,
    threads: usize,
) -> Result<usearch::Index, SearchError> {
    config.check()?;
    let options = IndexOptions {
        dimensions: gallery.dim(),
        // Inner product on unit vectors is cosine: the gallery and queries are normalised.
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: config.connectivity,
        expansion_add: config.expansion_add,
        expansion_search: config.expansion_search,
        multi: false,
    };
    let graph =
        usearch::Index::new(&options).map_err(|e| SearchError::graph("create", None, e.what()))?;
    reserve(&graph, gallery.len(), threads)?;
    Ok(graph)
}

/// Room in `graph` for `items` and `threads` threads at once.
fn reserve(graph: &usearch::Index, items: usize, threads: usize) -> Result<(), SearchError> {
    graph
        .reserve_capacity_and_threads(items, threads)
        .map_err(|e| SearchError::graph("reserve", None, e.what()))
}

/// The threads that may search at once: rayon's pool or the machine's cores, whichever is
/// larger; more callers wait for a free slot.
fn search_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::current_num_threads().max(cores)
}

/// `path` as the UTF-8 string the graph library takes.
fn utf8(path: &Path) -> Result<&str, SearchError> {
    path.to_str().ok_or_else(|| {
        SearchError::invalid("path", format!("{} is not valid UTF-8", path.display()))
    })
}
