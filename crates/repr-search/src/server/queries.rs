//! What each request does, as blocking functions of the state: the handlers run them on
//! blocking threads and only translate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;

use super::api::{Duplicates, Found, Image, Info, SearchAnswer};
use super::error::ApiError;
use super::files::{Unavailable, resolve};
use super::params::{DuplicateParams, SearchParams};
use super::state::{AppState, ListedDuplicates, Loaded};
use super::thumbnails;
use crate::{FileId, Hit, SearchError, Searcher, duplicate_groups, embed_image_bytes};

/// The name of an uploaded image in error messages.
const UPLOAD: &str = "the upload";

pub(super) fn info(state: &AppState) -> Info {
    let loaded = state.loaded();
    Info {
        count: loaded.entries.len(),
        failures: loaded.failures,
        identity: state.identity.clone(),
        model_description: (state.config.model_description.clone())
            .unwrap_or_else(|| state.identity.model.clone()),
        default_k: state.config.default_k,
        max_k: state.config.max_k,
        max_upload_bytes: state.config.max_upload_bytes,
        search: loaded.searcher.kind(),
    }
}

/// Embeds an uploaded image with the index's preprocessing and the server's encoder.
pub(super) fn embed_upload(state: &AppState, bytes: &[u8]) -> Result<Vec<f32>, ApiError> {
    let encoder = &state.encoder;
    Ok(embed_image_bytes(
        bytes,
        Path::new(UPLOAD),
        &state.identity,
        state.config.max_image_pixels,
        encoder.device(),
        |x| encoder.encode(x),
    )?)
}

/// The results for a query vector.
pub(super) fn search_vector(
    state: &AppState,
    vector: &[f32],
    params: &SearchParams,
) -> Result<SearchAnswer, ApiError> {
    let loaded = state.loaded();
    let mut hits = loaded
        .searcher
        .search(vector, params.k, &params.filter)?
        .pop()
        .unwrap_or_default();
    Ok(SearchAnswer {
        query: None,
        results: found(&loaded, &mut hits, params.threshold)?,
    })
}

/// The results for an indexed image.
pub(super) fn search_id(
    state: &AppState,
    id: FileId,
    params: &SearchParams,
) -> Result<SearchAnswer, ApiError> {
    let loaded = state.loaded();
    let query = Image::from(loaded.entry(id)?);
    let mut hits = loaded.searcher.search_id(id, params.k, &params.filter)?;
    Ok(SearchAnswer {
        query: Some(query),
        results: found(&loaded, &mut hits, params.threshold)?,
    })
}

/// The hits at or above `threshold`, with their paths and labels.
fn found(
    loaded: &Loaded,
    hits: &mut Vec<Hit>,
    threshold: Option<f32>,
) -> Result<Vec<Found>, ApiError> {
    if let Some(threshold) = threshold {
        hits.retain(|hit| hit.score >= threshold);
    }
    hits.iter()
        .map(|hit| {
            Ok(Found {
                image: Image::from(loaded.entry(hit.id)?),
                similarity: hit.score,
            })
        })
        .collect()
}

/// The content of an indexed image's file and its media type.
pub(super) fn image_file(state: &AppState, id: FileId) -> Result<(Bytes, &'static str), ApiError> {
    let loaded = state.loaded();
    let entry = loaded.entry(id)?;
    let path = file_of(state, id, &entry.path)?;
    let bytes = std::fs::read(&path).map_err(|_| gone(id))?;
    let media_type = super::files::media_type(&bytes);
    Ok((Bytes::from(bytes), media_type))
}

/// The JPEG thumbnail of an indexed image, from the cache or made now.
pub(super) fn thumbnail(state: &AppState, id: FileId) -> Result<Bytes, ApiError> {
    let loaded = state.loaded();
    let entry = loaded.entry(id)?;
    let key = (id, entry.sha256);
    if let Some(thumbnail) = state.thumbnails.get(&key) {
        return Ok(thumbnail);
    }
    let path = file_of(state, id, &entry.path)?;
    let config = &state.config;
    let thumbnail = thumbnails::make(&path, config.thumbnail_side, config.max_image_pixels)
        .map_err(|e| {
            ApiError::Internal(format!(
                "cannot make a thumbnail of image {id} ({}): {}",
                entry.path,
                without_path(&e)
            ))
        })?;
    state.thumbnails.insert(key, thumbnail.clone());
    Ok(thumbnail)
}

/// The near-duplicate groups of the loaded index (listed again only when the index or the
/// parameters changed).
pub(super) fn duplicates(
    state: &AppState,
    params: &DuplicateParams,
) -> Result<Duplicates, ApiError> {
    let loaded = state.loaded();
    let cached = state
        .duplicates
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .filter(|listed| {
            listed.version == loaded.version
                && listed.threshold == params.threshold
                && listed.neighbours == params.neighbours
        });
    let groups = match cached {
        Some(listed) => listed.groups,
        None => {
            let groups = Arc::new(duplicate_groups(
                &loaded.searcher,
                params.threshold,
                params.neighbours,
            )?);
            *state.duplicates.lock().unwrap_or_else(|e| e.into_inner()) = Some(ListedDuplicates {
                version: loaded.version,
                threshold: params.threshold,
                neighbours: params.neighbours,
                groups: groups.clone(),
            });
            groups
        }
    };
    let groups = groups
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|&id| Ok(Image::from(loaded.entry(id)?)))
                .collect::<Result<Vec<_>, SearchError>>()
        })
        .collect::<Result<_, _>>()?;
    Ok(Duplicates {
        threshold: params.threshold,
        neighbours: params.neighbours,
        groups,
    })
}

/// The file of image `id` stored at `relative`, if it is still there and inside the folder.
fn file_of(state: &AppState, id: FileId, relative: &str) -> Result<PathBuf, ApiError> {
    resolve(&state.root, relative).map_err(|why| match why {
        Unavailable::Missing => gone(id),
        Unavailable::Outside => ApiError::NotFound(format!(
            "the file of image {id} is not inside the indexed folder"
        )),
    })
}

fn gone(id: FileId) -> ApiError {
    ApiError::NotFound(format!(
        "the file of image {id} is no longer in the indexed folder"
    ))
}

/// A decoding error's message without the server's path.
fn without_path(error: &repr_data::DataError) -> String {
    match error {
        repr_data::DataError::BadImage { reason, .. } => reason.clone(),
        repr_data::DataError::ImageTooLarge {
            width,
            height,
            limit,
            ..
        } => format!("{width} × {height} pixels is more than the limit of {limit}"),
        repr_data::DataError::Io { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}
