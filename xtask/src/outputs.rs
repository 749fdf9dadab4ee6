//! Output files of `embed` and `retrieve`: written only where nothing of the user's is lost.

use std::io::Read;
use std::path::Path;

use anyhow::{Result, bail};

/// The kind of file a command writes, recognised by its extension and first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A NumPy array (`.npy`).
    Npy,
    /// A PNG picture (`.png`).
    Png,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Png => "png",
        }
    }

    fn magic(self) -> &'static [u8] {
        match self {
            Format::Npy => b"\x93NUMPY",
            Format::Png => b"\x89PNG\r\n\x1a\n",
        }
    }
}

/// Checks that `path` (given as `flag`) may be written as a `format` file: its extension is
/// the format's, and it does not exist, or `overwrite` is set and it holds a file of that
/// format (so a mistyped path never replaces a document, and nothing is replaced unasked).
pub fn check_output_file(path: &Path, flag: &str, format: Format, overwrite: bool) -> Result<()> {
    let extension = format.extension();
    let has_extension = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(extension));
    if !has_extension {
        bail!(
            "{flag} {}: expected a file name ending in .{extension}",
            path.display()
        );
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("{flag} {}: {e}", path.display()),
    };
    if !meta.is_file() {
        bail!(
            "{flag} {}: exists and is not a regular file; nothing was written",
            path.display()
        );
    }
    if !overwrite {
        bail!(
            "{flag} {}: the file exists; pass --overwrite to replace it, or choose another name",
            path.display()
        );
    }
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(format.magic().len() as u64).read_to_end(&mut head))
        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
    if head != format.magic() {
        bail!(
            "{flag} {}: exists and is not a .{extension} file (its first bytes are not a \
             {extension} header), so it is not replaced even with --overwrite",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absent_files_or_our_own_kind_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("e.npy");
        check_output_file(&npy, "--out", Format::Npy, false).unwrap();
        let err = check_output_file(&dir.path().join("e.txt"), "--out", Format::Npy, true);
        assert!(err.unwrap_err().to_string().contains("ending in .npy"));

        std::fs::write(&npy, b"\x93NUMPY\x01\x00rest").unwrap();
        let err = check_output_file(&npy, "--out", Format::Npy, false).unwrap_err();
        assert!(err.to_string().contains("--overwrite"), "{err}");
        check_output_file(&npy, "--out", Format::Npy, true).unwrap();

        let notes = dir.path().join("notes.png");
        std::fs::write(&notes, b"my notes").unwrap();
        let err = check_output_file(&notes, "--out", Format::Png, true).unwrap_err();
        assert!(err.to_string().contains("not a .png file"), "{err}");
        assert_eq!(std::fs::read(&notes).unwrap(), b"my notes");

        let folder = dir.path().join("folder.png");
        std::fs::create_dir(&folder).unwrap();
        let err = check_output_file(&folder, "--out", Format::Png, true).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
