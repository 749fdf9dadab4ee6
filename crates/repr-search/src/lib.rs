//! Image search over a folder of photos with a learned encoder.
//!
//! - [`Index`]: an index of a folder in a directory of its own — per file its path, size,
//!   modification time, SHA-256, label (its top-level folder) and vector; metadata in SQLite,
//!   vectors in a flat file. [`Index::update`] embeds only new and changed files, records the
//!   unreadable ones instead of failing, and survives being killed at any point. The model's
//!   [`ModelIdentity`] (model, [`Preprocess`], dimension) is stored: vectors of another model
//!   are refused, never mixed in. [`Index::open_read_only`] reads an index while another
//!   process updates it ([`IndexReader`]: consistent snapshots, a cheap change check).
//! - [`Searcher`]: k-nearest-neighbour search by cosine similarity with [`Filter`]s (a
//!   stop-list of ids, labels, a folder); [`ExactSearcher`] is exact, multi-threaded, and the
//!   reference for approximate backends.
//! - [`Preprocess`]: how an image becomes the encoder's input (torchvision's resize and
//!   centre crop, or a plain resize; PIL's colour conversions; per-channel normalisation), and
//!   [`embed_images`] and [`embed_image_bytes`] for query images.
//! - [`duplicate_groups`]: near-duplicate images, grouped.
//! - `server` (feature `server`): an HTTP server and page to search an index by an uploaded or
//!   an indexed image, updated while it serves.
//!
//! The encoder is any closure from a batch of images `[n, c, h, w]` to vectors `[n, dim]` on
//! a Burn [`Device`](burn::tensor::Device): a backbone's pooled layer, a trained method's
//! embedding, anything.
//!
//! Index a folder of three images with an encoder that takes each image's mean colour, then
//! find the image most like the red one:
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use image::{Rgb, RgbImage};
//! use repr_data::Normalize;
//! use repr_search::{Filter, Index, ModelIdentity, Preprocess, Searcher, Sizing, UpdateOptions};
//!
//! let photos = tempfile::tempdir()?;
//! for (name, colour) in [("red.png", [250, 10, 10]), ("pink.png", [240, 90, 90]), ("blue.png", [10, 10, 250])] {
//!     RgbImage::from_pixel(8, 8, Rgb(colour)).save(photos.path().join(name))?;
//! }
//! let identity = ModelIdentity {
//!     model: "mean colour".into(),
//!     preprocess: Preprocess {
//!         channels: 3,
//!         size: Sizing::Resize { height: 8, width: 8 },
//!         normalize: Normalize::identity(3),
//!     },
//!     dim: 3,
//! };
//! let index_dir = tempfile::tempdir()?;
//! let mut index = Index::open_or_create(index_dir.path(), photos.path(), &identity)?;
//! // [n, 3, 8, 8] -> [n, 3]: the mean of each channel.
//! let mean_colour = |x: Tensor<4>| x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
//! let report = index.update(&UpdateOptions::default(), &Device::flex(), mean_colour, |_| {})?;
//! assert_eq!((report.added.len(), report.embedded), (3, 3));
//!
//! let searcher = index.searcher()?;
//! let red = index.entries()?.into_iter().find(|e| e.path == "red.png").unwrap();
//! let hits = searcher.search_id(red.id, 1, &Filter::default())?;
//! let nearest = index.entries()?.into_iter().find(|e| e.id == hits[0].id).unwrap();
//! assert_eq!(nearest.path, "pink.png");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod duplicates;
mod embed;
mod error;
mod filter;
mod gallery;
mod index;
mod preprocess;
mod search;
#[cfg(feature = "server")]
pub mod server;

pub use duplicates::duplicate_groups;
pub use embed::{embed_image_bytes, embed_images};
pub use error::SearchError;
pub use filter::Filter;
pub use gallery::{FileId, Gallery, GalleryItem};
pub use index::{
    Entry, Failure, IMAGE_EXTENSIONS, Index, IndexReader, IndexSnapshot, IndexVersion,
    ModelIdentity, Progress, UpdateOptions, UpdateReport, sha256_of,
};
pub use preprocess::{Preprocess, Sizing};
pub use search::{
    APPROX_MIN_ITEMS, AnySearcher, ApproxConfig, ApproxSearcher, ExactSearcher, Hit, SearchKind,
    Searcher,
};
