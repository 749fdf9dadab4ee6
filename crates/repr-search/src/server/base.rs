//! Starting and stopping a server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::config::ServerConfig;
use super::encoder::QueryEncoder;
use super::routes;
use super::state::{self, AppState, Reloader};
use crate::{IndexReader, SearchError, SearchKind};

/// A server bound to its address, with its index loaded, not yet serving: bind, read
/// [`Server::local_addr`] (useful with port 0), then [`Server::run`].
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    address: SocketAddr,
    reader: IndexReader,
    state: Arc<AppState>,
}

impl Server {
    /// Opens the index of `config` read-only, loads it, and binds `config.address`.
    /// `encoder` must be the model that built the index (its identity is
    /// [`IndexReader::identity`]): its output dimension is checked at each query.
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`] for an impossible `config`; as
    /// [`crate::Index::open_read_only`] and [`IndexReader::snapshot`];
    /// [`SearchError::Server`] when the address cannot be bound.
    pub async fn bind(config: ServerConfig, encoder: QueryEncoder) -> Result<Self, SearchError> {
        config.check()?;
        let address = config.address;
        let (reader, state) = tokio::task::spawn_blocking(move || state::open(config, encoder))
            .await
            .map_err(|e| server_error("load the index", std::io::Error::other(e)))??;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| server_error(&format!("listen on {address}"), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| server_error("read the address listened on", e))?;
        Ok(Self {
            listener,
            address,
            reader,
            state: Arc::new(state),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The number of images served.
    pub fn images(&self) -> usize {
        self.state.loaded().entries.len()
    }

    /// How the loaded state is searched: exact or approximate.
    pub fn search(&self) -> SearchKind {
        self.state.loaded().searcher.kind()
    }

    /// Serves until `shutdown` completes, then stops taking connections, lets the requests
    /// in progress finish, and returns. The index is checked for changes every
    /// [`ServerConfig::reload_interval_ms`] and reloaded off the request path.
    ///
    /// # Errors
    /// [`SearchError::Server`] when serving fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SearchError> {
        let interval = self.state.config.reload_interval();
        let reloader = Reloader::start(self.reader, self.state.clone(), interval);
        let served = axum::serve(self.listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| server_error(&format!("serve on {}", self.address), e));
        // Stopping the reloader waits for a reload in progress: not on the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || drop(reloader)).await;
        served
    }
}

/// Serves the index of `config` with `encoder` until `shutdown` completes; prints the address
/// listened on (see [`Server`] to read it instead).
///
/// # Errors
/// As [`Server::bind`] and [`Server::run`].
pub async fn serve(
    config: ServerConfig,
    encoder: QueryEncoder,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SearchError> {
    let index = config.index.clone();
    let server = Server::bind(config, encoder).await?;
    println!(
        "repr-search: serving {} images of {} ({} search) on http://{}/",
        server.images(),
        index.display(),
        server.search(),
        server.local_addr()
    );
    server.run(shutdown).await
}

/// [`serve`] from synchronous code (a command line's `main`): its own runtime, stopped by
/// Ctrl-C.
///
/// # Errors
/// As [`serve`]; [`SearchError::Server`] when the runtime cannot start.
pub fn run_blocking(config: ServerConfig, encoder: QueryEncoder) -> Result<(), SearchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("repr-search server")
        .build()
        .map_err(|e| server_error("start the server's runtime", e))?;
    runtime.block_on(serve(config, encoder, ctrl_c()))
}

/// Completes at Ctrl-C (never, where the handler cannot be installed).
async fn ctrl_c() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => println!("repr-search: stopping (requests in progress finish first)"),
        Err(e) => {
            eprintln!("repr-search: Ctrl-C cannot stop the server: {e}");
            std::future::pending::<()>().await;
        }
    }
}

fn server_error(action: &str, error: std::io::Error) -> SearchError {
    SearchError::Server {
        action: action.to_string(),
        error,
    }
}
