//! The HTTP server and its page (feature `server`): search an index by an uploaded image or an
//! indexed one, browse results as thumbnails, list near-duplicates. The index is opened
//! read-only, so it can be updated while it is served; changes are picked up within
//! [`ServerConfig::reload_interval_ms`].
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /api/info` | `{ count, failures, identity, default_k, max_k, max_upload_bytes }` |
//! | `POST /api/search` (body: a PNG or JPEG file) | `{ results: [{ id, path, label, similarity }] }` |
//! | `GET /api/images/{id}/similar` | `{ query: { id, path, label }, results: [...] }` |
//! | `GET /api/images/{id}` | the image file |
//! | `GET /api/images/{id}/thumbnail` | a JPEG thumbnail |
//! | `GET /api/duplicates?threshold=&neighbours=` | `{ threshold, neighbours, groups: [[{ id, path, label }]] }` |
//!
//! Searches take `k`, `threshold` (results below it are left out), and the filters `label`
//! (repeatable), `folder` and `exclude` (ids, repeatable or comma-separated). Every error is
//! a status with `{ "error": "..." }`: 400 for a bad parameter, 404 for an unknown id, 413 for
//! an upload over [`ServerConfig::max_upload_bytes`], 415 for an upload that is not an image.
//! Images are served by id only: nothing in a request becomes a file path.

mod api;
mod base;
mod config;
mod encoder;
mod error;
mod files;
mod params;
mod queries;
mod routes;
mod state;
mod thumbnails;

pub use base::{Server, run_blocking, serve};
pub use config::ServerConfig;
pub use encoder::QueryEncoder;
