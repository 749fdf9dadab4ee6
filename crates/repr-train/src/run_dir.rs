//! The run folder `runs/<name>/` and its files.

use std::path::{Path, PathBuf};

use crate::TrainError;

/// What to do when the run folder already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Start a new run; an existing folder is an error.
    New,
    /// Continue the run in the folder from its last checkpoint.
    Resume,
    /// Replace the run in the folder (only a run folder or an empty one: see
    /// [`RunDir::open`]) and start again.
    Overwrite,
}

/// The files and folders a run writes into its folder: all that `--overwrite` removes.
pub const RUN_ENTRIES: [&str; 11] = [
    "config.toml",
    "checkpoints",
    "metrics.jsonl",
    "metrics.csv",
    "eval.md",
    "curves.png",
    "embedding.png",
    "retrieval.png",
    "model.bpk",
    "summary.json",
    "skipped.txt",
];

/// Checks that `name` is a run name: one path component (no `/` or `\\`, not `.` or `..`,
/// not absolute, not empty), so that `<runs-dir>/<name>` stays inside the runs folder.
pub fn check_run_name(name: &str) -> Result<(), TrainError> {
    let bad = |reason: &str| {
        Err(TrainError::RunName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.contains(['/', '\\']) {
        return bad(
            "it holds a path separator; a run name is one folder name, not a path (use --runs-dir for the parent folder)",
        );
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` name folders outside the runs folder");
    }
    if name.contains('\0') || name.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    if name.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    Ok(())
}

/// What `dir` holds that is not a run's (for the error refusing to replace it): `None` when it
/// is a run folder (its `config.toml` or `checkpoints/` present) or empty.
fn foreign_contents(dir: &Path) -> Result<Option<String>, TrainError> {
    if !dir.is_dir() {
        return Ok(Some("it is not a folder".into()));
    }
    if dir.join("config.toml").is_file() || dir.join("checkpoints").is_dir() {
        return Ok(None);
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(TrainError::io(dir))? {
        let entry = entry.map_err(TrainError::io(dir))?;
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            name.push('/');
        }
        names.push(name);
    }
    if names.is_empty() {
        return Ok(None);
    }
    names.sort();
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 3 { ", ..." } else { "" };
    Ok(Some(format!(
        "it holds {} entries ({shown}{more}) and no config.toml or checkpoints/",
        names.len()
    )))
}

/// An error now, without writing anything, when `root` could not be created: its nearest
/// existing ancestor is a file, or a folder without write permission.
fn check_can_create(root: &Path) -> Result<(), TrainError> {
    let mut ancestor = root;
    while !ancestor.exists() {
        match ancestor.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => ancestor = parent,
            _ => return Ok(()), // a relative path under the current folder
        }
    }
    let fail = |what: String| {
        Err(TrainError::Io {
            path: root.to_path_buf(),
            error: std::io::Error::other(what),
        })
    };
    if !ancestor.is_dir() {
        return fail(format!("{} is not a folder", ancestor.display()));
    }
    let meta = std::fs::metadata(ancestor).map_err(TrainError::io(ancestor))?;
    if ancestor != root && meta.permissions().readonly() {
        return fail(format!("the folder {} is read-only", ancestor.display()));
    }
    Ok(())
}

/// The files of one run.
///
/// [`RunDir::open`] only checks the folder against the mode; nothing is created or deleted
/// until [`RunDir::begin`], which [`crate::train`] calls once every check on the config, the
/// data and the starting weights has passed: a failed start leaves the disk as it was.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    mode: RunMode,
    fallback: bool,
}

impl RunDir {
    /// The run folder `<runs_dir>/<name>` for `mode`, after checking that `name` is one folder
    /// name ([`check_run_name`]); as [`RunDir::open`] otherwise.
    pub fn named(runs_dir: &Path, name: &str, mode: RunMode) -> Result<Self, TrainError> {
        check_run_name(name)?;
        Self::open(runs_dir.join(name), mode)
    }

    /// The run folder `root` for `mode`: a new run's folder must not hold a run yet, a resumed
    /// one must hold a checkpoint, and one to overwrite must be a run folder (its
    /// `config.toml` or `checkpoints/` present); a folder that exists and is neither a run
    /// folder nor empty is never written into (an error naming what it holds). Writes nothing.
    pub fn open(root: impl Into<PathBuf>, mode: RunMode) -> Result<Self, TrainError> {
        let root = root.into();
        let exists = root.join("config.toml").exists() || root.join("checkpoints").exists();
        if mode != RunMode::Resume
            && root.exists()
            && let Some(holds) = foreign_contents(&root)?
        {
            return Err(TrainError::NotARunFolder { path: root, holds });
        }
        match mode {
            RunMode::New if exists => return Err(TrainError::RunExists { path: root }),
            RunMode::Resume if !exists => {
                return Err(TrainError::Checkpoint {
                    path: root.join("checkpoints/last.ckpt"),
                    reason: "nothing to resume: the run folder has no checkpoint".into(),
                });
            }
            RunMode::New | RunMode::Overwrite => check_can_create(&root)?,
            RunMode::Resume => {}
        }
        Ok(Self {
            root,
            mode,
            fallback: false,
        })
    }

    /// With `fallback`, a resumed run whose newest checkpoint does not verify resumes from the
    /// newest earlier one that does (`--resume --fallback`), saying which.
    pub fn with_fallback(mut self, fallback: bool) -> Self {
        self.fallback = fallback;
        self
    }

    /// Whether a resumed run may fall back to an earlier checkpoint.
    pub fn fallback(&self) -> bool {
        self.fallback
    }

    /// The run folder as seen by a rank other than 0 of a data-parallel run, which writes
    /// nothing into it (on another machine it need not exist).
    pub fn for_follower(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            mode: RunMode::Resume,
            fallback: false,
        }
    }

    /// Makes the folder ready for writing, then creates it and `checkpoints/`. With
    /// [`RunMode::Overwrite`] it first removes what a run writes ([`RUN_ENTRIES`]) after
    /// checking again that the folder is a run folder or empty; anything else in it (a file
    /// of the user's) is left in place.
    pub fn begin(&self) -> Result<(), TrainError> {
        if self.mode == RunMode::Overwrite && self.root.exists() {
            if let Some(holds) = foreign_contents(&self.root)? {
                return Err(TrainError::NotARunFolder {
                    path: self.root.clone(),
                    holds,
                });
            }
            for name in RUN_ENTRIES {
                let path = self.root.join(name);
                let removed = match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                    Ok(_) => std::fs::remove_file(&path),
                    Err(_) => continue,
                };
                removed.map_err(TrainError::io(&path))?;
            }
        }
        std::fs::create_dir_all(self.checkpoints()).map_err(TrainError::io(self.checkpoints()))
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `checkpoints/last.ckpt`: the newest checkpoint, what `--resume` reads.
    pub fn last_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("last.ckpt")
    }

    /// `config.toml`: the resolved configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `metrics.jsonl`: one JSON object per logged step and evaluation.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `metrics.csv`: the same records as a table.
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// `model.bpk`: the final model parameters (burnpack), loadable with `Module::load_file`.
    pub fn final_model(&self) -> PathBuf {
        self.root.join("model.bpk")
    }

    /// `summary.json`: the machine-readable result (fields in the README's run-folder table).
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// `skipped.txt`: the image files left out under `on_bad_image = "skip"`, one
    /// `<path>\t<reason>` per line (written only when some were skipped).
    pub fn skipped_images(&self) -> PathBuf {
        self.root.join("skipped.txt")
    }

    /// Keeps the records of `metrics.jsonl` and `metrics.csv` for which `keep(split, step)`
    /// holds, and drops any torn last line. A run killed after logging a step but before its
    /// next checkpoint logs that step again when it resumes: dropping what was logged after the
    /// checkpoint keeps the log free of duplicates. Missing files are left missing.
    pub fn retain_metrics(&self, keep: impl Fn(&str, usize) -> bool) -> Result<(), TrainError> {
        let jsonl = |line: &str| {
            let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
            Some((
                v.get("split")?.as_str()?.to_string(),
                v.get("step")?.as_u64()?,
            ))
        };
        // `split,epoch,step,...`.
        let csv = |line: &str| {
            let mut cols = line.split(',');
            let split = cols.next()?.to_string();
            Some((split, cols.nth(1)?.parse::<u64>().ok()?))
        };
        let accept = |parsed: Option<(String, u64)>| {
            parsed.is_some_and(|(split, step)| keep(&split, step as usize))
        };
        keep_lines(&self.metrics(), false, |line| accept(jsonl(line)))?;
        keep_lines(&self.metrics_csv(), true, |line| accept(csv(line)))
    }
}

/// Rewrites `path` atomically with the complete lines `keep` accepts (and the first line when
/// `header`), unless it keeps them all.
fn keep_lines(path: &Path, header: bool, keep: impl Fn(&str) -> bool) -> Result<(), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(path)(e)),
    };
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete = line.ends_with('\n');
        if complete && ((header && i == 0) || keep(line.trim_end())) {
            out.push_str(line);
        }
    }
    if out.len() != text.len() {
        crate::checkpoint::write_atomic(path, out.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_runs_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        assert!(matches!(
            RunDir::open(&root, RunMode::Resume),
            Err(TrainError::Checkpoint { .. })
        ));
        let run = RunDir::open(&root, RunMode::New).unwrap();
        assert!(!root.exists(), "opening writes nothing");
        run.begin().unwrap();
        std::fs::write(run.config(), "x").unwrap();
        let err = RunDir::open(&root, RunMode::New).unwrap_err().to_string();
        assert!(
            err.contains("--resume") && err.contains("--overwrite"),
            "{err}"
        );
        RunDir::open(&root, RunMode::Resume).unwrap();
        assert!(run.config().exists());
        let overwrite = RunDir::open(&root, RunMode::Overwrite).unwrap();
        assert!(run.config().exists(), "nothing is deleted before `begin`");
        overwrite.begin().unwrap();
        assert!(!run.config().exists());
        assert!(run.checkpoints().is_dir());
    }

    #[test]
    fn run_names_are_one_folder_name() {
        for good in ["simclr-short", "run 2", "a.b", "ünï"] {
            check_run_name(good).unwrap();
        }
        for (bad, reason) in [
            ("", "empty"),
            ("/abs/path", "separator"),
            ("../x", "separator"),
            ("a/b", "separator"),
            ("a\\b", "separator"),
            ("..", "outside"),
            (".", "outside"),
            ("a\nb", "control"),
        ] {
            let err = check_run_name(bad).unwrap_err().to_string();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::named(dir.path(), "..", RunMode::Overwrite).unwrap_err();
        assert!(matches!(err, TrainError::RunName { .. }), "{err}");
    }

    /// A folder that is neither a run nor empty is never written into, and `--overwrite`
    /// removes only what a run writes.
    #[test]
    fn only_run_folders_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mine");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("precious.txt"), "keep me").unwrap();
        for mode in [RunMode::Overwrite, RunMode::New] {
            let err = RunDir::open(&root, mode).unwrap_err().to_string();
            assert!(
                err.contains("not a run folder") && err.contains("precious.txt, sub/"),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(root.join("precious.txt")).unwrap(),
            "keep me"
        );
        // A file where the run folder would be.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = RunDir::open(&file, RunMode::Overwrite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a folder"), "{err}");
        // An empty folder is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        RunDir::open(&empty, RunMode::New).unwrap().begin().unwrap();
        // A run folder with a file of the user's in it: the run's files go, the user's stays.
        let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
        run.begin().unwrap();
        for name in ["config.toml", "summary.json", "notes.txt"] {
            std::fs::write(run.root().join(name), "x").unwrap();
        }
        std::fs::write(run.last_checkpoint(), "x").unwrap();
        let again = RunDir::open(run.root(), RunMode::Overwrite).unwrap();
        again.begin().unwrap();
        assert!(!run.config().exists() && !run.summary().exists());
        assert!(!run.last_checkpoint().exists() && run.checkpoints().is_dir());
        assert!(run.root().join("notes.txt").exists());
    }
}
