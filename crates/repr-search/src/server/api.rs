//! The JSON bodies of the API's answers.

use serde::Serialize;

use crate::{Entry, FileId, ModelIdentity, SearchKind};

/// An indexed image: its id, its path relative to the indexed folder (for display: images are
/// fetched by id) and its label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Image {
    pub id: FileId,
    pub path: String,
    pub label: Option<String>,
}

impl From<&Entry> for Image {
    fn from(entry: &Entry) -> Self {
        Self {
            id: entry.id,
            path: entry.path.clone(),
            label: entry.label.clone(),
        }
    }
}

/// A search result: an image and its cosine similarity to the query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Found {
    #[serde(flatten)]
    pub image: Image,
    pub similarity: f32,
}

/// The answer to a search: the query image when it is an indexed one, and the results, most
/// similar first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct SearchAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<Image>,
    pub results: Vec<Found>,
}

/// What is served.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Info {
    /// Indexed images.
    pub count: usize,
    /// Files the index could not read.
    pub failures: usize,
    pub identity: ModelIdentity,
    /// The model as the page names it.
    pub model_description: String,
    pub default_k: usize,
    pub max_k: usize,
    pub max_upload_bytes: usize,
    /// `exact` or `approx`: how the loaded state is searched.
    pub search: SearchKind,
}

/// Groups of near-duplicate images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Duplicates {
    pub threshold: f32,
    pub neighbours: usize,
    pub groups: Vec<Vec<Image>>,
}
