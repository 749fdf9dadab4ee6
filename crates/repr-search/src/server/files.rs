//! The files of indexed images. A request names an image by id only; the file is the indexed
//! folder joined with the path the index stores, checked again here to stay inside the
//! folder (a link, or a folder renamed since indexing, could lead elsewhere).

use std::fs;
use std::path::{Component, Path, PathBuf};

use image::ImageFormat;

/// Why an indexed file cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unavailable {
    /// The file is gone.
    Missing,
    /// The stored path, or where it leads, is not inside the indexed folder.
    Outside,
}

/// The file of an image stored at `relative` (`/`-separated) under the canonical folder
/// `root`: only plain components, and the canonical path must still lie under `root`.
pub(super) fn resolve(root: &Path, relative: &str) -> Result<PathBuf, Unavailable> {
    let plain = !relative.is_empty()
        && !relative.contains('\\')
        && Path::new(relative)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Unavailable::Outside);
    }
    let canonical = fs::canonicalize(root.join(relative)).map_err(|_| Unavailable::Missing)?;
    if !canonical.starts_with(root) {
        return Err(Unavailable::Outside);
    }
    if !canonical.is_file() {
        return Err(Unavailable::Missing);
    }
    Ok(canonical)
}

/// The media type of an image file's content (PNG or JPEG, told by its first bytes).
pub(super) fn media_type(bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Png) => "image/png",
        Ok(ImageFormat::Jpeg) => "image/jpeg",
        Ok(format) => format.to_mime_type(),
        Err(_) => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_folder_resolve() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/x.png"), b"x").unwrap();
        fs::write(outer.path().join("secret.png"), b"s").unwrap();
        let root = fs::canonicalize(&root).unwrap();
        assert_eq!(resolve(&root, "a/x.png"), Ok(root.join("a/x.png")));
        for bad in [
            "",
            "../secret.png",
            "a/../../secret.png",
            "/etc/passwd",
            "./a/x.png",
            "a\\..\\..\\secret.png",
        ] {
            assert_eq!(resolve(&root, bad), Err(Unavailable::Outside), "{bad}");
        }
        assert_eq!(resolve(&root, "a/gone.png"), Err(Unavailable::Missing));
        assert_eq!(resolve(&root, "a"), Err(Unavailable::Missing));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outer.path().join("secret.png"), root.join("link.png"))
                .unwrap();
            assert_eq!(resolve(&root, "link.png"), Err(Unavailable::Outside));
        }
    }

    #[test]
    fn media_types_come_from_the_content() {
        assert_eq!(media_type(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(media_type(b"\xff\xd8\xff\xe0...."), "image/jpeg");
        assert_eq!(media_type(b"<html>"), "application/octet-stream");
    }
}
