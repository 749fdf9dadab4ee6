//! The settings of the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use repr_data::DEFAULT_MAX_IMAGE_PIXELS;
use serde::{Deserialize, Serialize};

use crate::{SearchError, SearchKind};

/// The settings of [`crate::server::serve`]. Every field but `index` has a default.
///
/// In TOML:
/// ```toml
/// index = "photos.index"
/// address = "127.0.0.1:8080"
/// max_upload_bytes = 20_000_000
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The index directory to serve (opened read-only: `cargo xtask index` may update it while
    /// it is served; the server picks the changes up).
    pub index: PathBuf,
    /// Where to listen; port 0 picks a free port (the address bound is printed).
    pub address: SocketAddr,
    /// The largest query image upload, in bytes; larger ones are refused with 413.
    pub max_upload_bytes: usize,
    /// The most pixels a query image or an indexed image made into a thumbnail may declare.
    pub max_image_pixels: u64,
    /// The number of results when a request names none.
    pub default_k: usize,
    /// The most results a request may ask for.
    pub max_k: usize,
    /// Query images embedded at the same time; more wait their turn.
    pub max_concurrent_embeddings: usize,
    /// Thumbnails made at the same time (each decodes a whole image); more wait their turn.
    pub max_concurrent_thumbnails: usize,
    /// The longer side of a thumbnail, in pixels.
    pub thumbnail_side: u32,
    /// The memory kept for thumbnails already made, in bytes; the least recently used go
    /// first.
    pub thumbnail_cache_bytes: usize,
    /// How often the index is checked for changes, in milliseconds.
    pub reload_interval_ms: u64,
    /// The longest a request may take, in seconds (then 408).
    pub request_timeout_s: u64,
    /// Exact or approximate search; `auto` is exact below [`crate::APPROX_MIN_ITEMS`] images
    /// and approximate (the graph `cargo xtask search` saved in the index, or one built when
    /// the server loads a state) above.
    pub search: SearchKind,
    /// The model as the page names it (`None`: the identity's `model` string).
    pub model_description: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            index: PathBuf::new(),
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_upload_bytes: 20_000_000,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            default_k: 24,
            max_k: 1000,
            max_concurrent_embeddings: 2,
            max_concurrent_thumbnails: 4,
            thumbnail_side: 256,
            thumbnail_cache_bytes: 64 << 20,
            reload_interval_ms: 1000,
            request_timeout_s: 120,
            search: SearchKind::Auto,
            model_description: None,
        }
    }
}

impl ServerConfig {
    /// The defaults, serving the index in `index`.
    pub fn new(index: impl Into<PathBuf>) -> Self {
        Self {
            index: index.into(),
            ..Self::default()
        }
    }

    /// Checks every field; the error names the first impossible one.
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`].
    pub fn check(&self) -> Result<(), SearchError> {
        if self.index.as_os_str().is_empty() {
            return Err(SearchError::invalid("index", "no index directory given"));
        }
        let at_least_one = [
            ("max_upload_bytes", self.max_upload_bytes as u64),
            ("max_image_pixels", self.max_image_pixels),
            ("default_k", self.default_k as u64),
            ("max_k", self.max_k as u64),
            (
                "max_concurrent_embeddings",
                self.max_concurrent_embeddings as u64,
            ),
            (
                "max_concurrent_thumbnails",
                self.max_concurrent_thumbnails as u64,
            ),
            ("thumbnail_side", u64::from(self.thumbnail_side)),
            ("reload_interval_ms", self.reload_interval_ms),
            ("request_timeout_s", self.request_timeout_s),
        ];
        if let Some((field, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(SearchError::invalid(*field, "must be at least 1"));
        }
        if self.default_k > self.max_k {
            return Err(SearchError::invalid(
                "default_k",
                format!("{} is more than max_k ({})", self.default_k, self.max_k),
            ));
        }
        Ok(())
    }

    pub(super) fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms)
    }

    pub(super) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_field_and_unknown_keys_are_refused() {
        assert!(ServerConfig::new("index").check().is_ok());
        let field = |config: ServerConfig| match config.check() {
            Err(SearchError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(ServerConfig::default()), "index");
        let config = ServerConfig {
            max_concurrent_embeddings: 0,
            ..ServerConfig::new("index")
        };
        assert_eq!(field(config), "max_concurrent_embeddings");
        let config = ServerConfig {
            default_k: 5,
            max_k: 4,
            ..ServerConfig::new("index")
        };
        assert_eq!(field(config), "default_k");
        let json = r#"{"index": "i", "adress": "127.0.0.1:1"}"#;
        assert!(serde_json::from_str::<ServerConfig>(json).is_err());
        let json = r#"{"index": "i", "address": "127.0.0.1:0"}"#;
        let config: ServerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.address.port(), 0);
    }
}
