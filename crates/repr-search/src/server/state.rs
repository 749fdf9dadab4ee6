//! What the handlers share: the loaded index (swapped whole when the index changes), the
//! encoder, the limits and the thumbnail cache.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::config::ServerConfig;
use super::encoder::QueryEncoder;
use super::thumbnails::ThumbnailCache;
use crate::{
    AnySearcher, ApproxConfig, Entry, ExactSearcher, FileId, Index, IndexReader, IndexSnapshot,
    IndexVersion, ModelIdentity, SearchError, SearchKind, Searcher,
};

/// One committed state of the index, ready to search.
#[derive(Debug)]
pub(super) struct Loaded {
    pub searcher: AnySearcher,
    /// The entries, in the gallery's order.
    pub entries: Vec<Entry>,
    pub failures: usize,
    pub version: IndexVersion,
}

impl Loaded {
    /// The state `reader` read as `snapshot`, searched by `kind` (for an approximate search:
    /// the graph the indexer saved for this state, or one built here).
    ///
    /// # Errors
    /// As [`IndexReader::approx_searcher`].
    fn new(
        reader: &IndexReader,
        snapshot: IndexSnapshot,
        kind: SearchKind,
    ) -> Result<Self, SearchError> {
        let IndexSnapshot {
            entries,
            failures,
            gallery,
            version,
            state,
        } = snapshot;
        let searcher = match kind.for_items(gallery.len()) {
            SearchKind::Approx => AnySearcher::Approx(reader.approx_searcher(
                gallery,
                state,
                &ApproxConfig::default(),
            )?),
            _ => AnySearcher::Exact(ExactSearcher::new(gallery)),
        };
        Ok(Self {
            failures: failures.len(),
            entries,
            searcher,
            version,
        })
    }

    /// The entry of `id`.
    ///
    /// # Errors
    /// [`SearchError::UnknownId`].
    pub fn entry(&self, id: FileId) -> Result<&Entry, SearchError> {
        let position = self.searcher.gallery().position(id);
        position
            .map(|p| &self.entries[p])
            .ok_or(SearchError::UnknownId { id })
    }
}

/// The near-duplicate groups last listed, with the state and parameters they were listed for.
#[derive(Clone, Debug)]
pub(super) struct ListedDuplicates {
    pub version: IndexVersion,
    pub threshold: f32,
    pub neighbours: usize,
    pub groups: Arc<Vec<Vec<FileId>>>,
}

/// The state of a server.
#[derive(Debug)]
pub(super) struct AppState {
    loaded: RwLock<Arc<Loaded>>,
    pub identity: ModelIdentity,
    /// The indexed folder, canonical.
    pub root: PathBuf,
    pub config: ServerConfig,
    pub encoder: QueryEncoder,
    pub embeddings: Arc<Semaphore>,
    pub thumbnail_work: Arc<Semaphore>,
    pub thumbnails: ThumbnailCache,
    pub duplicates: Mutex<Option<ListedDuplicates>>,
}

impl AppState {
    /// The state serving the index `reader` reads.
    ///
    /// # Errors
    /// As [`IndexReader::snapshot`]; [`SearchError::Io`] when the indexed folder is gone.
    pub fn load(
        reader: &IndexReader,
        config: ServerConfig,
        encoder: QueryEncoder,
    ) -> Result<Self, SearchError> {
        let root = reader.root();
        let root = std::fs::canonicalize(root).map_err(|e| SearchError::io("read", root, e))?;
        let loaded = Loaded::new(reader, reader.snapshot()?, config.search)?;
        Ok(Self {
            loaded: RwLock::new(Arc::new(loaded)),
            identity: reader.identity().clone(),
            root,
            embeddings: Arc::new(Semaphore::new(config.max_concurrent_embeddings)),
            thumbnail_work: Arc::new(Semaphore::new(config.max_concurrent_thumbnails)),
            thumbnails: ThumbnailCache::new(config.thumbnail_cache_bytes),
            duplicates: Mutex::new(None),
            config,
            encoder,
        })
    }

    /// The index as loaded now; a reload replaces it whole, never under a request's feet.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn replace(&self, loaded: Loaded) {
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
    }
}

/// The thread that reloads the index when it changes; stopped (and joined) when dropped.
#[derive(Debug)]
pub(super) struct Reloader {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reloader {
    /// Checks `reader`'s index every `interval` and replaces `state`'s loaded index when it
    /// changed, off the request path; a failed reload is reported on stderr and tried again
    /// at the next check, the previous state still served.
    pub fn start(reader: IndexReader, state: Arc<AppState>, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("repr-search reload".into())
            .spawn(move || {
                let mut last_error = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let result = reload_if_changed(&reader, &state);
                    report(reader.dir(), result, &mut last_error);
                }
            })
            .expect("spawning the reload thread");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reloads when the index changed since the state loaded; whether it did.
fn reload_if_changed(reader: &IndexReader, state: &AppState) -> Result<bool, SearchError> {
    if reader.version()? == state.loaded().version {
        return Ok(false);
    }
    state.replace(Loaded::new(
        reader,
        reader.snapshot()?,
        state.config.search,
    )?);
    *state.duplicates.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(true)
}

/// Prints a reload and the first of a run of identical failures.
fn report(dir: &Path, result: Result<bool, SearchError>, last_error: &mut Option<String>) {
    match result {
        Ok(true) => {
            println!("repr-search: reloaded {}", dir.display());
            *last_error = None;
        }
        Ok(false) => *last_error = None,
        Err(e) => {
            let message = e.to_string();
            if last_error.as_deref() != Some(&message) {
                eprintln!("repr-search: cannot reload {}: {message}", dir.display());
            }
            *last_error = Some(message);
        }
    }
}

/// Opens the index of `config` read-only with its state.
///
/// # Errors
/// As [`Index::open_read_only`] and [`AppState::load`].
pub(super) fn open(
    config: ServerConfig,
    encoder: QueryEncoder,
) -> Result<(IndexReader, AppState), SearchError> {
    let reader = Index::open_read_only(&config.index)?;
    let state = AppState::load(&reader, config, encoder)?;
    Ok((reader, state))
}
