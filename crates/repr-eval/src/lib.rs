//! The evaluation toolkit of `repr`: how good are learned embeddings?
//!
//! - [`embed_with`]: the one embedding loop, over any encoder (a closure from images to
//!   vectors); [`embed_dataset`]: embeddings from any [`Layer`] of a backbone with average or max
//!   pooling; [`raw_pixel_embeddings`] for the raw-pixel baseline (the random-initialisation
//!   baseline is `embed_dataset` on a freshly initialised backbone).
//! - [`knn_classify`]: weighted k-nearest-neighbour classification with cosine similarity and
//!   votes `exp(sim / T)` (Wu et al. 2018, InstDisc), chunked on the device.
//! - [`linear_probe`]: logistic regression on frozen, standardised embeddings, trained with
//!   Adam on the device.
//! - [`nearest_neighbours`], [`retrieval_metrics`]: recall@k, precision@k and mAP@R (Musgrave
//!   et al. 2020, "A Metric Learning Reality Check").
//! - [`retrieval_grid`]: a picture of queries and their neighbours framed green or red
//!   ([`framed_grid`] with frames of one's choice).
//! - [`pca_2d`], [`plot_embedding`], [`plot_curves`]: PNG plots of embeddings and training
//!   curves.
//!
//! Protocols, definitions and conventions: `docs/evaluation.md`.
//!
//! ```
//! use burn::tensor::Device;
//! use repr_eval::{knn_classify, retrieval_metrics, Embeddings, KnnConfig};
//!
//! let device = Device::flex();
//! // Four 2-D embeddings, two per class.
//! let e = Embeddings::new(vec![1.0, 0.1, 0.9, 0.0, 0.0, 1.0, 0.2, 0.8], 4, 2)?;
//! let labels = [0, 0, 1, 1];
//! let knn = knn_classify(&e, &labels, &e, &labels, 2, &KnnConfig::new().with_k(2), &device)?;
//! assert_eq!(knn.top1, 1.0);
//! let m = retrieval_metrics(&e, &labels, &e, &labels, &[1], true, &device)?;
//! assert_eq!(m.map_at_r, 1.0);
//! # Ok::<(), repr_eval::EvalError>(())
//! ```
#![warn(missing_docs)]

mod embed;
mod embeddings;
mod error;
mod grid;
mod knn;
mod linear_probe;
mod pca;
mod plot;
mod retrieval;
mod search;

pub use embed::{EmbedConfig, Layer, embed_dataset, embed_with, raw_pixel_embeddings};
pub use embeddings::Embeddings;
pub use error::EvalError;
pub use grid::{
    BACKGROUND_COLOR, FramedTile, GRID_BORDER, GRID_GAP, GRID_SEPARATOR, LabelledImage,
    MATCH_COLOR, MISMATCH_COLOR, QUERY_COLOR, STOPLIST_COLOR, UNLABELLED_COLOR,
    check_retrieval_grid, framed_grid, retrieval_grid,
};
pub use knn::{KnnConfig, KnnResult, knn_classify};
pub use linear_probe::{
    LinearProbeConfig, LinearProbeResult, linear_probe, linear_probe_with_progress,
};
pub use pca::pca_2d;
pub use plot::{
    CURVES_PANEL_HEIGHT, CURVES_TITLE_HEIGHT, CURVES_WIDTH, EMBEDDING_SIZE, Series, palette,
    plot_curves, plot_embedding,
};
pub use retrieval::{Neighbours, RetrievalMetrics, nearest_neighbours, retrieval_metrics};
