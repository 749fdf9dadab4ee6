//! The query parameters and path segments of requests, parsed with errors that name them.
//!
//! An empty value (`threshold=`) counts as not given, as an empty form field does.

use crate::{FileId, Filter};

use super::error::ApiError;

/// The parameters of a search: `k`, `threshold` (results below it are left out) and the
/// filters `label` (repeatable: any of them), `folder` and `exclude` (ids, repeatable or
/// comma-separated).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SearchParams {
    pub k: usize,
    pub threshold: Option<f32>,
    pub filter: Filter,
}

/// The parameters of a near-duplicate listing: `threshold` and `neighbours` (the most
/// similar images looked at per image).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DuplicateParams {
    pub threshold: f32,
    pub neighbours: usize,
}

/// The similarity above which two images count as near-duplicates when a request names none.
const DEFAULT_DUPLICATE_THRESHOLD: f32 = 0.95;

/// The neighbours looked at per image when a request names none.
const DEFAULT_NEIGHBOURS: usize = 16;

impl SearchParams {
    pub fn parse(
        pairs: &[(String, String)],
        default_k: usize,
        max_k: usize,
    ) -> Result<Self, ApiError> {
        let mut params = Self {
            k: default_k,
            threshold: None,
            filter: Filter::default(),
        };
        let mut labels = Vec::new();
        for (name, value) in given(pairs) {
            match name {
                "k" => params.k = count(name, value, max_k)?,
                "threshold" => params.threshold = Some(similarity(name, value)?),
                "label" => labels.push(value.to_string()),
                "folder" => params.filter.folder = Some(value.to_string()),
                "exclude" => {
                    for id in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        params.filter.exclude.insert(parse_id(name, id)?);
                    }
                }
                _ => return Err(unknown(name, "k, threshold, label, folder, exclude")),
            }
        }
        if !labels.is_empty() {
            params.filter = params.filter.with_labels(labels);
        }
        Ok(params)
    }
}

impl DuplicateParams {
    pub fn parse(pairs: &[(String, String)], max_neighbours: usize) -> Result<Self, ApiError> {
        let mut params = Self {
            threshold: DEFAULT_DUPLICATE_THRESHOLD,
            neighbours: DEFAULT_NEIGHBOURS.min(max_neighbours),
        };
        for (name, value) in given(pairs) {
            match name {
                "threshold" => params.threshold = similarity(name, value)?,
                "neighbours" => params.neighbours = count(name, value, max_neighbours)?,
                _ => return Err(unknown(name, "threshold, neighbours")),
            }
        }
        Ok(params)
    }
}

/// Refuses every parameter: for requests that take none.
pub(super) fn no_params(pairs: &[(String, String)]) -> Result<(), ApiError> {
    match given(pairs).next() {
        Some((name, _)) => Err(unknown(name, "none")),
        None => Ok(()),
    }
}

/// The id in a path segment or parameter `name`.
pub(super) fn parse_id(name: &str, text: &str) -> Result<FileId, ApiError> {
    text.parse().map(FileId).map_err(|_| {
        ApiError::bad_parameter(
            name,
            format!("`{text}` is not an image id (a whole number)"),
        )
    })
}

/// The pairs with a value.
fn given(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| (name.as_str(), value.trim()))
}

fn unknown(name: &str, expected: &str) -> ApiError {
    ApiError::bad_parameter(
        name,
        format!("unknown parameter; this request takes {expected}"),
    )
}

/// A whole number from 1 to `max`.
fn count(name: &str, value: &str, max: usize) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_parameter(
            name,
            format!("`{value}` is not a whole number from 1 to {max}"),
        )),
    }
}

/// A cosine similarity, from -1 to 1.
fn similarity(name: &str, value: &str) -> Result<f32, ApiError> {
    match value.parse::<f32>() {
        Ok(v) if (-1.0..=1.0).contains(&v) => Ok(v),
        _ => Err(ApiError::bad_parameter(
            name,
            format!("`{value}` is not a similarity from -1 to 1"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn message(error: ApiError) -> String {
        match error {
            ApiError::BadParameter { name, message } => format!("{name}: {message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_parameters_and_their_defaults() {
        let params = SearchParams::parse(&pairs(&[]), 24, 100).unwrap();
        assert_eq!((params.k, params.threshold), (24, None));
        assert!(params.filter.keeps_all());
        let query = pairs(&[
            ("k", "5"),
            ("threshold", "0.5"),
            ("label", "cats"),
            ("label", "dogs"),
            ("folder", "cats/2024"),
            ("exclude", "3, 4"),
            ("exclude", "9"),
            ("folder", ""),
        ]);
        let params = SearchParams::parse(&query, 24, 100).unwrap();
        assert_eq!((params.k, params.threshold), (5, Some(0.5)));
        let expected = Filter::default()
            .excluding([FileId(3), FileId(4), FileId(9)])
            .with_labels(["cats", "dogs"])
            .in_folder("cats/2024");
        assert_eq!(params.filter, expected);
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |query: &[(&str, &str)]| {
            message(SearchParams::parse(&pairs(query), 24, 100).unwrap_err())
        };
        assert!(err(&[("k", "0")]).starts_with("k: `0` is not a whole number from 1 to 100"));
        assert!(err(&[("k", "101")]).starts_with("k:"));
        assert!(err(&[("k", "-1")]).starts_with("k:"));
        assert!(err(&[("threshold", "1.5")]).starts_with("threshold:"));
        assert!(err(&[("threshold", "NaN")]).starts_with("threshold:"));
        assert!(err(&[("exclude", "../etc")]).starts_with("exclude: `../etc` is not an image id"));
        assert!(err(&[("path", "/etc/passwd")]).starts_with("path: unknown parameter"));
        let err = DuplicateParams::parse(&pairs(&[("k", "3")]), 100).unwrap_err();
        assert!(message(err).starts_with("k: unknown parameter"));
        assert!(no_params(&pairs(&[("x", "1")])).is_err());
        assert!(no_params(&pairs(&[("x", "")])).is_ok());
    }

    #[test]
    fn duplicate_parameters() {
        let params = DuplicateParams::parse(&pairs(&[]), 8).unwrap();
        assert_eq!((params.threshold, params.neighbours), (0.95, 8));
        let query = pairs(&[("threshold", "0.9"), ("neighbours", "3")]);
        let params = DuplicateParams::parse(&query, 8).unwrap();
        assert_eq!((params.threshold, params.neighbours), (0.9, 3));
    }
}
