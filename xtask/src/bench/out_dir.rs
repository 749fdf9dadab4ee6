//! The output folder of `cargo xtask bench models|profile|augment|search` (`--out-dir`): bench writes
//! only into a folder it created, recognised by its marker file, and never deletes or
//! overwrites what it did not create.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The file that marks a folder as one `cargo xtask bench` writes its outputs into.
pub const MARKER: &str = ".repr-bench";

/// The files bench writes into its folder. A folder that holds only these (written before the
/// marker existed) is adopted: they are bench's own outputs.
const OUTPUTS: [&str; 8] = [
    "models.md",
    "models.json",
    "profile.md",
    "profile.json",
    "augment.md",
    "augment.json",
    "search.md",
    "search.json",
];

/// What the marker file says to whoever opens the folder.
const MARKER_TEXT: &str = "This folder holds the outputs of `cargo xtask bench` \
(models, profile, augment, search .md/.json). bench overwrites those files here and nothing else.\n";

/// Makes `dir` ready for bench's outputs: creates it (with the marker) when absent, marks it
/// when empty or when it holds only bench's output files, accepts it when marked, and refuses
/// any other folder with one error naming it and what it holds. Runs before any measurement,
/// so a refused folder costs nothing.
pub fn prepare_out_dir(dir: &Path) -> Result<()> {
    let marker = dir.join(MARKER);
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} is a file, not a folder; choose another --out-dir",
            dir.display()
        ),
        Ok(_) => {
            if marker.is_file() {
                return Ok(());
            }
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("reading {}", dir.display()))?;
            names.sort();
            let foreign: Vec<&String> = names
                .iter()
                .filter(|n| !OUTPUTS.contains(&n.as_str()))
                .collect();
            if !foreign.is_empty() {
                let examples: Vec<&str> = foreign.iter().take(3).map(|n| n.as_str()).collect();
                bail!(
                    "{} is not a bench output folder (it holds {} {}, e.g. {}, and no {MARKER} \
                     marker); choose another --out-dir or an empty folder",
                    dir.display(),
                    names.len(),
                    if names.len() == 1 { "entry" } else { "entries" },
                    examples.join(", "),
                );
            }
        }
    }
    std::fs::write(&marker, MARKER_TEXT).with_context(|| format!("writing {}", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_folder_is_created_with_the_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_out_dir(&dir).unwrap();
        assert!(dir.join(MARKER).is_file());
        // A second run accepts the folder it created, with outputs in it.
        std::fs::write(dir.join("models.md"), "old").unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        prepare_out_dir(&dir).unwrap();
    }

    #[test]
    fn an_empty_folder_is_marked() {
        let tmp = tempfile::tempdir().unwrap();
        prepare_out_dir(tmp.path()).unwrap();
        assert!(tmp.path().join(MARKER).is_file());
    }

    #[test]
    fn a_folder_of_someone_elses_files_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("x");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
        std::fs::write(dir.join("models.md"), "keep me too").unwrap();
        std::fs::create_dir(dir.join("data")).unwrap();
        let e = prepare_out_dir(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} is not a bench output folder", dir.display())),
            "{e}"
        );
        assert!(
            e.contains("3 entries, e.g. data, notes.txt, and no .repr-bench marker"),
            "{e}"
        );
        assert!(e.contains("choose another --out-dir"), "{e}");
        assert!(!dir.join(MARKER).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "keep me"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("models.md")).unwrap(),
            "keep me too"
        );
    }

    #[test]
    fn a_folder_of_bench_outputs_only_is_adopted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("models.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("augment.md"), "").unwrap();
        prepare_out_dir(tmp.path()).unwrap();
        assert!(tmp.path().join(MARKER).is_file());
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = prepare_out_dir(&file).unwrap_err().to_string();
        assert!(e.contains("is a file, not a folder"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
}
