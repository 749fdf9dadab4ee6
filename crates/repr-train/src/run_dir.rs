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
    /// Delete the existing folder and start again.
    Overwrite,
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
}

impl RunDir {
    /// The run folder `root` for `mode`: a new run's folder must not hold a run yet, a resumed
    /// one must hold a checkpoint. Writes nothing.
    pub fn open(root: impl Into<PathBuf>, mode: RunMode) -> Result<Self, TrainError> {
        let root = root.into();
        let exists = root.join("config.toml").exists() || root.join("checkpoints").exists();
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
        Ok(Self { root, mode })
    }

    /// The run folder as seen by a rank other than 0 of a data-parallel run, which writes
    /// nothing into it (on another machine it need not exist).
    pub fn for_follower(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            mode: RunMode::Resume,
        }
    }

    /// Makes the folder ready for writing: with [`RunMode::Overwrite`] deletes what it held,
    /// then creates it and `checkpoints/`.
    pub fn begin(&self) -> Result<(), TrainError> {
        if self.mode == RunMode::Overwrite && self.root.exists() {
            std::fs::remove_dir_all(&self.root).map_err(TrainError::io(&self.root))?;
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

    /// `summary.json`: the machine-readable result (schema in DESIGN.md).
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
}
