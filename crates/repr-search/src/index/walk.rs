//! Finding the image files under the indexed folder.

use std::fs;
use std::path::{Component, Path};
use std::time::{SystemTime, UNIX_EPOCH};

use repr_data::has_image_extension;
use walkdir::{DirEntry, WalkDir};

use super::report::Failure;
use crate::SearchError;

/// The extensions (case-insensitive) of the files indexed: those repr-data decodes.
pub use repr_data::IMAGE_EXTENSIONS;

/// An image file found under the folder.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// The top-level folder it is in, if any.
    pub label: Option<String>,
}

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// The image files, sorted by path.
    pub files: Vec<Found>,
    /// Entries that could not be read (a file's metadata, a folder's listing, a path that is
    /// not UTF-8).
    pub failed: Vec<Failure>,
    /// Relative paths under which not everything could be listed: the index keeps what it
    /// has there rather than taking the files for removed.
    pub unlisted: Vec<String>,
}

impl Walk {
    /// Whether `path` lies under a folder that could not be listed.
    pub fn is_unlisted(&self, path: &str) -> bool {
        self.unlisted.iter().any(|dir| {
            path == dir
                || path
                    .strip_prefix(dir.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// Walks `root` (which must exist): regular files and links to files with an image
/// extension; hidden entries (names starting with `.`), links to folders and `skip` (the index
/// directory, when it lies inside the folder) are passed over.
///
/// # Errors
/// [`SearchError::Io`] when `root` itself cannot be read: a missing folder must not read as
/// one whose files were all deleted.
pub(crate) fn walk(root: &Path, skip: &Path) -> Result<Walk, SearchError> {
    fs::read_dir(root).map_err(|e| SearchError::io("read", root, e))?;
    let mut walk = Walk::default();
    let entries = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || (!is_hidden(e) && e.path() != skip));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e
                    .path()
                    .map_or_else(String::new, |p| relative_lossy(root, p));
                walk.failed.push(Failure {
                    reason: e.to_string(),
                    path: path.clone(),
                });
                walk.unlisted.push(path);
                continue;
            }
        };
        if entry.file_type().is_dir() || !has_image_extension(entry.path()) {
            continue;
        }
        // Follows a link to its target; a link to a folder is not descended into.
        let metadata = match fs::metadata(entry.path()) {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => continue,
            Err(e) => {
                let path = relative_lossy(root, entry.path());
                walk.failed.push(Failure {
                    reason: format!("cannot read its metadata: {e}"),
                    path: path.clone(),
                });
                walk.unlisted.push(path);
                continue;
            }
        };
        let Some(path) = relative(root, entry.path()) else {
            walk.failed.push(Failure {
                path: relative_lossy(root, entry.path()),
                reason: "its path is not valid UTF-8".into(),
            });
            continue;
        };
        let label = path.split_once('/').map(|(top, _)| top.to_string());
        walk.files.push(Found {
            path,
            size: metadata.len(),
            mtime_ns: metadata.modified().map_or(0, nanos_since_epoch),
            label,
        });
    }
    walk.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walk)
}

fn is_hidden(entry: &DirEntry) -> bool {
    entry
        .file_name()
        .to_str()
        .is_some_and(|name| name.starts_with('.'))
}

/// `path` relative to `root`, `/`-separated; `None` when a component is not UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for component in rest.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn relative_lossy(root: &Path, path: &Path) -> String {
    let rest = path.strip_prefix(root).unwrap_or(path);
    rest.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A modification time in nanoseconds since 1970 (negative before), saturating.
pub(crate) fn nanos_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_images_with_labels_and_passes_over_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for path in [
            "top.PNG",
            "cats/a.jpg",
            "cats/deep/b.jpeg",
            "dogs/c.png",
            "dogs/notes.txt",
            ".hidden/d.png",
            "dogs/.e.png",
            "index/vectors.png",
        ] {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        let walk = walk(root, &root.join("index")).unwrap();
        let found: Vec<(&str, Option<&str>)> = walk
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.label.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("cats/a.jpg", Some("cats")),
                ("cats/deep/b.jpeg", Some("cats")),
                ("dogs/c.png", Some("dogs")),
                ("top.PNG", None),
            ]
        );
        assert!(walk.failed.is_empty());
        assert!(walk.files.iter().all(|f| f.size == 1 && f.mtime_ns > 0));
    }

    #[cfg(unix)]
    #[test]
    fn links_to_files_are_followed_and_links_to_folders_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(&root).unwrap();
        fs::write(outside.join("o.png"), b"xy").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.join("o.png"), root.join("l.png")).unwrap();
        let walk = walk(&root, &root.join("index")).unwrap();
        let paths: Vec<&str> = walk.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["l.png"]);
        assert_eq!(walk.files[0].size, 2);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_unlisted_prefixes_match_whole_components() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            walk(&dir.path().join("nope"), dir.path()),
            Err(SearchError::Io { .. })
        ));
        let walk = Walk {
            unlisted: vec!["a/b".into()],
            ..Walk::default()
        };
        assert!(walk.is_unlisted("a/b/c.png"));
        assert!(!walk.is_unlisted("a/bc.png"));
    }
}
