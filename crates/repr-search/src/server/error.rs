//! Every failure of a request as a status and a JSON body `{ "error": "..." }`.

use axum::Json;
use axum::body::to_bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use repr_data::DataError;
use serde::Serialize;

use crate::SearchError;

/// The largest error body of a layer or of the router (plain text) turned into JSON.
const MAX_PLAIN_ERROR_BYTES: usize = 16 << 10;

/// Why a request failed.
#[derive(Debug)]
pub(super) enum ApiError {
    /// A query parameter or path segment is missing, unknown or has an impossible value.
    BadParameter { name: String, message: String },
    /// The uploaded query image is not an image this server decodes, or too large.
    BadUpload(DataError),
    /// The upload is over the limit of this many bytes.
    UploadTooLarge(usize),
    /// The index has no such id, or the file is not there any more.
    NotFound(String),
    /// The library refused or failed.
    Search(SearchError),
    /// The server failed (a task panicked, a file of the index cannot be read).
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    pub fn bad_parameter(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadParameter {
            name: name.into(),
            message: message.into(),
        }
    }

    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            Self::BadParameter { name, message } => {
                (StatusCode::BAD_REQUEST, format!("`{name}`: {message}"))
            }
            Self::BadUpload(error) => upload_error(error),
            Self::UploadTooLarge(limit) => (StatusCode::PAYLOAD_TOO_LARGE, too_large(*limit)),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            Self::Search(error) => search_error(error),
            Self::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, message.clone()),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Image(error) => Self::BadUpload(error),
            error => Self::Search(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        json_error(status, &message)
    }
}

/// A response of `status` with the body `{ "error": message }`.
pub(super) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

fn too_large(limit: usize) -> String {
    format!("the upload is larger than the limit of {limit} bytes")
}

/// What is wrong with an uploaded image, without the server's paths.
fn upload_error(error: &DataError) -> (StatusCode, String) {
    match error {
        DataError::BadImage { reason, .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the upload is not a PNG or JPEG image this server can read: {reason}"),
        ),
        DataError::ImageTooLarge {
            width,
            height,
            limit,
            ..
        } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the uploaded image is {width} × {height} pixels, more than the limit of \
                 {limit} pixels"
            ),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            format!("the upload cannot be read: {other}"),
        ),
    }
}

/// The status of a library error: the caller's fault (400, 404) or the server's (500).
fn search_error(error: &SearchError) -> (StatusCode, String) {
    let status = match error {
        SearchError::UnknownId { .. } => StatusCode::NOT_FOUND,
        SearchError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, error.to_string())
}

/// Gives the error responses of layers and of the router (a body over `max_upload_bytes`, a
/// timeout, an unknown method) the JSON body every other error has; other responses pass
/// unchanged.
pub(super) async fn errors_as_json(
    State(max_upload_bytes): State<usize>,
    response: Response,
) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::UploadTooLarge(max_upload_bytes).into_response();
    }
    let text = to_bytes(response.into_body(), MAX_PLAIN_ERROR_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    json_error(status, &message)
}
