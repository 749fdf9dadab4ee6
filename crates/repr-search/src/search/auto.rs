//! Choosing exact or approximate search by the size of the gallery.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::approx::{ApproxConfig, ApproxSearcher};
use crate::{ExactSearcher, Filter, Gallery, Hit, Index, SearchError, Searcher};

/// Galleries of at least this many items are searched approximately by [`SearchKind::Auto`]:
/// the size at which [`ApproxSearcher`] (default [`ApproxConfig`], recall@10 ≥ 0.95) answers a
/// single query faster than [`ExactSearcher`], measured on this project's 2-core reference
/// machine with `cargo xtask bench search` (`scripts/ann-choice/RESULTS.md`). Below it exact
/// search is both faster and exact.
pub const APPROX_MIN_ITEMS: usize = 20_000;

/// Which search a caller asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// Exact below [`APPROX_MIN_ITEMS`] items, approximate from there on.
    #[default]
    Auto,
    /// [`ExactSearcher`]: every item scored.
    Exact,
    /// [`ApproxSearcher`]: an HNSW graph.
    Approx,
}

impl SearchKind {
    /// The kind to use for a gallery of `items` items: [`SearchKind::Auto`] resolved, the
    /// others as they are.
    ///
    /// ```
    /// use repr_search::{APPROX_MIN_ITEMS, SearchKind};
    ///
    /// assert_eq!(SearchKind::Auto.for_items(APPROX_MIN_ITEMS - 1), SearchKind::Exact);
    /// assert_eq!(SearchKind::Auto.for_items(APPROX_MIN_ITEMS), SearchKind::Approx);
    /// assert_eq!(SearchKind::Approx.for_items(10), SearchKind::Approx);
    /// ```
    pub fn for_items(self, items: usize) -> SearchKind {
        match self {
            SearchKind::Auto if items >= APPROX_MIN_ITEMS => SearchKind::Approx,
            SearchKind::Auto => SearchKind::Exact,
            kind => kind,
        }
    }
}

impl fmt::Display for SearchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SearchKind::Auto => "auto",
            SearchKind::Exact => "exact",
            SearchKind::Approx => "approx",
        })
    }
}

impl FromStr for SearchKind {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SearchKind::Auto),
            "exact" => Ok(SearchKind::Exact),
            "approx" => Ok(SearchKind::Approx),
            other => Err(SearchError::invalid(
                "search kind",
                format!("`{other}` is not one of auto, exact, approx"),
            )),
        }
    }
}

/// An exact or an approximate searcher, chosen at run time ([`SearchKind`]).
///
/// ```
/// use repr_search::{AnySearcher, ApproxConfig, FileId, Filter, Gallery, GalleryItem, SearchKind, Searcher};
///
/// let items = (0..100u64)
///     .map(|i| GalleryItem { id: FileId(i), vector: vec![1.0, i as f32], path: format!("{i}.png"), label: None })
///     .collect();
/// let gallery = Gallery::new(2, items)?;
/// // A small gallery: Auto searches it exactly.
/// let searcher = AnySearcher::new(gallery, SearchKind::Auto, &ApproxConfig::default())?;
/// assert_eq!(searcher.kind(), SearchKind::Exact);
/// let hits = searcher.search(&[0.0, 1.0], 1, &Filter::default())?;
/// assert_eq!(hits[0][0].id, FileId(99));
/// # Ok::<(), repr_search::SearchError>(())
/// ```
#[derive(Debug)]
pub enum AnySearcher {
    /// Exact search.
    Exact(ExactSearcher),
    /// Approximate search.
    Approx(ApproxSearcher),
}

impl AnySearcher {
    /// A searcher of `kind` over `gallery` (an approximate one builds its graph here, in
    /// memory; [`Index::searcher_of`] keeps it on disk).
    ///
    /// # Errors
    /// As [`ApproxSearcher::build`].
    pub fn new(
        gallery: Gallery,
        kind: SearchKind,
        config: &ApproxConfig,
    ) -> Result<Self, SearchError> {
        Ok(match kind.for_items(gallery.len()) {
            SearchKind::Approx => AnySearcher::Approx(ApproxSearcher::build(gallery, config)?),
            _ => AnySearcher::Exact(ExactSearcher::new(gallery)),
        })
    }

    /// [`SearchKind::Exact`] or [`SearchKind::Approx`]: which one this is.
    pub fn kind(&self) -> SearchKind {
        match self {
            AnySearcher::Exact(_) => SearchKind::Exact,
            AnySearcher::Approx(_) => SearchKind::Approx,
        }
    }
}

impl Searcher for AnySearcher {
    fn gallery(&self) -> &Gallery {
        match self {
            AnySearcher::Exact(s) => s.gallery(),
            AnySearcher::Approx(s) => s.gallery(),
        }
    }

    fn search(
        &self,
        queries: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Vec<Hit>>, SearchError> {
        match self {
            AnySearcher::Exact(s) => s.search(queries, k, filter),
            AnySearcher::Approx(s) => s.search(queries, k, filter),
        }
    }
}

impl Index {
    /// The searcher [`SearchKind::Auto`] picks for this index's size, the approximate one
    /// with the default [`ApproxConfig`] and its graph kept in the index directory.
    ///
    /// # Errors
    /// As [`Index::searcher_of`].
    pub fn searcher_auto(&self) -> Result<AnySearcher, SearchError> {
        self.searcher_of(SearchKind::Auto, &ApproxConfig::default())
    }

    /// A searcher of `kind` over this index: [`Index::searcher`] or
    /// [`Index::approx_searcher`].
    ///
    /// # Errors
    /// As [`Index::searcher`] and [`Index::approx_searcher`].
    pub fn searcher_of(
        &self,
        kind: SearchKind,
        config: &ApproxConfig,
    ) -> Result<AnySearcher, SearchError> {
        Ok(match kind.for_items(self.len()?) {
            SearchKind::Approx => AnySearcher::Approx(self.approx_searcher(config)?),
            _ => AnySearcher::Exact(self.searcher()?),
        })
    }
}
