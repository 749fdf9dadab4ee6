//! The routes and their handlers: parse, run the query on a blocking thread, answer (the
//! table of routes is in the module's documentation).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::api::{Duplicates, Info, SearchAnswer};
use super::error::{ApiError, errors_as_json};
use super::params::{DuplicateParams, SearchParams, no_params, parse_id};
use super::queries;
use super::state::AppState;

/// The page: plain HTML, CSS and JavaScript, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

type Shared = State<Arc<AppState>>;
type Params = Query<Vec<(String, String)>>;

/// The application: routes, then the limits as layers.
pub(super) fn router(state: Arc<AppState>) -> Router {
    let max_upload_bytes = state.config.max_upload_bytes;
    let timeout = state.config.request_timeout();
    Router::new()
        .route("/", get(page))
        .route("/api/info", get(info))
        .route("/api/search", post(search_upload))
        .route("/api/images/{id}", get(image))
        .route("/api/images/{id}/thumbnail", get(thumbnail))
        .route("/api/images/{id}/similar", get(search_id))
        .route("/api/duplicates", get(duplicates))
        .fallback(not_found)
        .with_state(state)
        // The body limit is tower-http's (it refuses a declared length before reading any of
        // the body); axum's own default limit is lifted so that one limit applies.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(max_upload_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::map_response_with_state(
            max_upload_bytes,
            errors_as_json,
        ))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such page or API route".into())
}

async fn info(State(state): Shared, Query(params): Params) -> Result<Json<Info>, ApiError> {
    no_params(&params)?;
    Ok(Json(queries::info(&state)))
}

async fn search_upload(
    State(state): Shared,
    Query(params): Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let config = &state.config;
    let params = SearchParams::parse(&params, config.default_k, config.max_k)?;
    // A body declared over the limit never gets here (the limit layer answers); one that
    // turns out over it while it is read is refused here.
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::UploadTooLarge(config.max_upload_bytes),
        _ => ApiError::bad_parameter("body", e.body_text()),
    })?;
    if body.is_empty() {
        return Err(ApiError::bad_parameter(
            "body",
            "empty: send the query image file as the request body",
        ));
    }
    // The permit goes with the work: a client that leaves does not free it early.
    let permit = permit(&state.embeddings).await?;
    let vector = blocking(state.clone(), move |state| {
        let _permit = permit;
        queries::embed_upload(state, &body)
    })
    .await?;
    let answer = blocking(state, move |state| {
        queries::search_vector(state, &vector, &params)
    })
    .await?;
    Ok(Json(answer))
}

async fn search_id(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<SearchAnswer>, ApiError> {
    let id = parse_id("id", &id)?;
    let config = &state.config;
    let params = SearchParams::parse(&params, config.default_k, config.max_k)?;
    let answer = blocking(state, move |state| queries::search_id(state, id, &params)).await?;
    Ok(Json(answer))
}

async fn image(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let id = parse_id("id", &id)?;
    no_params(&params)?;
    let (bytes, media_type) = blocking(state, move |state| queries::image_file(state, id)).await?;
    Ok(image_response(bytes, media_type))
}

async fn thumbnail(
    State(state): Shared,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let id = parse_id("id", &id)?;
    no_params(&params)?;
    let permit = permit(&state.thumbnail_work).await?;
    let bytes = blocking(state, move |state| {
        let _permit = permit;
        queries::thumbnail(state, id)
    })
    .await?;
    Ok(image_response(bytes, "image/jpeg"))
}

async fn duplicates(
    State(state): Shared,
    Query(params): Params,
) -> Result<Json<Duplicates>, ApiError> {
    let params = DuplicateParams::parse(&params, state.config.max_k)?;
    let answer = blocking(state, move |state| queries::duplicates(state, &params)).await?;
    Ok(Json(answer))
}

/// An image's bytes, never taken for another type by the browser.
fn image_response(bytes: Bytes, media_type: &'static str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A turn of the work `semaphore` bounds.
async fn permit(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, ApiError> {
    semaphore
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Internal("the server is shutting down".into()))
}

/// Runs `query` on a blocking thread (decoding, the encoder, searching and file reads block).
async fn blocking<T: Send + 'static>(
    state: Arc<AppState>,
    query: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || query(&state))
        .await
        .map_err(|e| ApiError::Internal(format!("the request's task failed: {e}")))?
}
