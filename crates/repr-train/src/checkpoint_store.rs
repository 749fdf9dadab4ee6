//! The checkpoints of a run folder: `checkpoints/last.ckpt`, the newest, and up to
//! `checkpoint_keep - 1` earlier ones as `checkpoints/step-<global step>.ckpt`, so that a
//! damaged newest file is not the end of the run (`--resume --fallback`).

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomic;
use crate::{Checkpoint, RunDir, TrainError};

/// The name of the kept checkpoint of `step`.
fn step_file(step: usize) -> String {
    format!("step-{step:09}.ckpt")
}

/// The step of a kept checkpoint's file name (`step-000000200.ckpt`), `None` for other names.
fn step_of(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?.strip_suffix(".ckpt")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes and finds the checkpoints of one run folder.
pub(crate) struct CheckpointStore<'a> {
    run: &'a RunDir,
    keep: usize,
}

/// The checkpoint a resumed run starts from.
pub(crate) struct Selected {
    /// Its file.
    pub path: PathBuf,
    /// Its bytes (verified).
    pub bytes: Vec<u8>,
}

impl<'a> CheckpointStore<'a> {
    /// The checkpoints of `run`, keeping the newest `keep` (at least 1).
    pub fn new(run: &'a RunDir, keep: usize) -> Self {
        Self {
            run,
            keep: keep.max(1),
        }
    }

    /// Writes `checkpoint` atomically as `last.ckpt`. The one it replaces stays as
    /// `step-<its step>.ckpt` (a hard link, or a copy where links are not supported) when more
    /// than one is kept; kept files beyond `keep` are then removed, oldest first.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<(), TrainError> {
        let last = self.run.last_checkpoint();
        if self.keep > 1
            && let Some(previous) = Checkpoint::peek_state(&last)
            && previous.global_step != checkpoint.state.global_step
        {
            let kept = self.run.checkpoints().join(step_file(previous.global_step));
            if !kept.exists() {
                keep_copy(&last, &kept)?;
            }
        }
        checkpoint.save(&last)?;
        self.prune()
    }

    /// The kept earlier checkpoints, newest first, with their steps.
    pub fn previous(&self) -> Result<Vec<(usize, PathBuf)>, TrainError> {
        let dir = self.run.checkpoints();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TrainError::io(&dir)(e)),
        };
        let mut kept = Vec::new();
        for entry in entries {
            let entry = entry.map_err(TrainError::io(&dir))?;
            if let Some(step) = entry.file_name().to_str().and_then(step_of) {
                kept.push((step, entry.path()));
            }
        }
        kept.sort_by_key(|k| std::cmp::Reverse(k.0));
        Ok(kept)
    }

    /// Removes the kept checkpoints beyond the newest `keep - 1` (with `last.ckpt`, `keep`).
    fn prune(&self) -> Result<(), TrainError> {
        for (_, path) in self.previous()?.into_iter().skip(self.keep - 1) {
            std::fs::remove_file(&path).map_err(TrainError::io(&path))?;
        }
        Ok(())
    }

    /// The checkpoint to resume from: `last.ckpt` when it verifies. When it does not, the error
    /// names the file and the damaged section, and says which earlier checkpoint `--fallback`
    /// would use; with `fallback`, the newest earlier one that verifies is used instead, the
    /// damaged files are kept beside it renamed `<name>.corrupt` (so they are neither read nor
    /// rotated again), and a warning says which file the run resumes from.
    pub fn select_for_resume(&self, fallback: bool) -> Result<Selected, TrainError> {
        let last = self.run.last_checkpoint();
        let previous = self.previous()?;
        let candidates =
            std::iter::once(last.clone()).chain(previous.iter().map(|(_, p)| p.clone()));
        let mut damaged: Vec<(PathBuf, TrainError)> = Vec::new();
        for path in candidates {
            let checked = Checkpoint::read_bytes(&path)
                .and_then(|bytes| Checkpoint::parse(&bytes, &path).map(|_| bytes));
            match checked {
                Ok(bytes) => {
                    if !damaged.is_empty() {
                        set_aside(&damaged, &path)?;
                    }
                    return Ok(Selected { path, bytes });
                }
                Err(error) if !fallback => {
                    return Err(with_fallback_hint(error, &previous, self.keep));
                }
                Err(error) => damaged.push((path, error)),
            }
        }
        let reasons: Vec<String> = damaged.iter().map(|(_, e)| e.to_string()).collect();
        Err(TrainError::Checkpoint {
            path: last,
            reason: format!(
                "no checkpoint of this run verifies, nothing to fall back to: {}",
                reasons.join("; ")
            ),
        })
    }
}

/// `error` with a sentence on what `--fallback` would do.
fn with_fallback_hint(error: TrainError, previous: &[(usize, PathBuf)], keep: usize) -> TrainError {
    let TrainError::Checkpoint { path, reason } = error else {
        return error;
    };
    let hint = match previous.first() {
        Some((step, file)) => format!(
            "; `--resume --fallback` resumes from the previous checkpoint, {} (step {step}), \
             and keeps this file as {}.corrupt",
            file.display(),
            path.display()
        ),
        None => format!(
            "; no earlier checkpoint is kept to fall back to (checkpoint_keep = {keep}; \
             `--overwrite` starts the run again)"
        ),
    };
    TrainError::Checkpoint {
        path,
        reason: reason + &hint,
    }
}

/// Renames each damaged checkpoint `<name>.corrupt` and says which file the run resumes from.
fn set_aside(damaged: &[(PathBuf, TrainError)], used: &Path) -> Result<(), TrainError> {
    for (path, error) in damaged {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".corrupt");
        let aside = path.with_file_name(name);
        if path.exists() {
            std::fs::rename(path, &aside).map_err(TrainError::io(path))?;
            eprintln!("warning: {error}; kept as {}", aside.display());
        } else {
            eprintln!("warning: {error}");
        }
    }
    eprintln!("warning: resuming from {} instead", used.display());
    Ok(())
}

/// Keeps the content of `from` at `to`: a hard link (no copy of the bytes), or a copy written
/// atomically where the file system has no links.
fn keep_copy(from: &Path, to: &Path) -> Result<(), TrainError> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(_) => {
            let bytes = std::fs::read(from).map_err(TrainError::io(from))?;
            write_atomic(to, &bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunMode, TrainState};
    use burn::tensor::Bytes;

    fn at_step(step: usize) -> Checkpoint {
        Checkpoint {
            state: TrainState {
                global_step: step,
                ..TrainState::default()
            },
            model: Bytes::from_bytes_vec(vec![step as u8; 64]),
            optimizer: Bytes::from_bytes_vec(vec![1; 8]),
        }
    }

    fn run_dir() -> (tempfile::TempDir, RunDir) {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
        run.begin().unwrap();
        (dir, run)
    }

    fn names(run: &RunDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(run.checkpoints())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_newest_keep_checkpoints_are_kept() {
        let (_dir, run) = run_dir();
        let store = CheckpointStore::new(&run, 3);
        for step in [10, 20, 30, 40] {
            store.save(&at_step(step)).unwrap();
        }
        assert_eq!(
            names(&run),
            ["last.ckpt", "step-000000020.ckpt", "step-000000030.ckpt"]
        );
        let kept = store.previous().unwrap();
        assert_eq!(kept.iter().map(|k| k.0).collect::<Vec<_>>(), [30, 20]);
        let state = |p: &Path| Checkpoint::load(p).unwrap().state.global_step;
        assert_eq!(state(&run.last_checkpoint()), 40);
        assert_eq!(state(&kept[0].1), 30);
        // One kept: only last.ckpt, as before.
        let one = CheckpointStore::new(&run, 1);
        one.save(&at_step(50)).unwrap();
        assert_eq!(names(&run), ["last.ckpt"]);
        // The same step saved twice keeps no duplicate.
        let two = CheckpointStore::new(&run, 2);
        two.save(&at_step(50)).unwrap();
        assert_eq!(names(&run), ["last.ckpt"]);
    }

    #[test]
    fn a_damaged_newest_checkpoint_is_named_and_falls_back_when_asked() {
        let (_dir, run) = run_dir();
        let store = CheckpointStore::new(&run, 2);
        store.save(&at_step(10)).unwrap();
        store.save(&at_step(20)).unwrap();
        let last = run.last_checkpoint();
        let mut bytes = std::fs::read(&last).unwrap();
        // Inside the model section: the optimizer's header (40 bytes) and 8 bytes follow it.
        let at = bytes.len() - 48 - 10;
        bytes[at] ^= 1;
        std::fs::write(&last, &bytes).unwrap();

        let err = store.select_for_resume(false).err().unwrap().to_string();
        assert!(
            err.contains("last.ckpt") && err.contains("model section is corrupt"),
            "{err}"
        );
        assert!(
            err.contains("step-000000010.ckpt") && err.contains("--fallback"),
            "{err}"
        );
        assert!(last.exists(), "nothing is moved without --fallback");

        let selected = store.select_for_resume(true).unwrap();
        assert!(selected.path.ends_with("step-000000010.ckpt"));
        let checkpoint = Checkpoint::parse(&selected.bytes, &selected.path).unwrap();
        assert_eq!(checkpoint.state.global_step, 10);
        assert!(!last.exists());
        assert_eq!(
            std::fs::read(last.with_file_name("last.ckpt.corrupt")).unwrap(),
            bytes
        );
        // The next save starts the rotation again from the checkpoint resumed from.
        store.save(&at_step(20)).unwrap();
        assert_eq!(
            names(&run),
            ["last.ckpt", "last.ckpt.corrupt", "step-000000010.ckpt"]
        );
    }

    #[test]
    fn nothing_to_fall_back_to_is_said() {
        let (_dir, run) = run_dir();
        let store = CheckpointStore::new(&run, 2);
        store.save(&at_step(10)).unwrap();
        let last = run.last_checkpoint();
        let mut bytes = std::fs::read(&last).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&last, &bytes).unwrap();
        let err = store.select_for_resume(false).err().unwrap().to_string();
        assert!(err.contains("no earlier checkpoint is kept"), "{err}");
        let err = store.select_for_resume(true).err().unwrap().to_string();
        assert!(err.contains("no checkpoint of this run verifies"), "{err}");
        assert!(last.exists(), "a failed fallback moves nothing");
    }

    #[test]
    fn only_our_file_names_are_kept_checkpoints() {
        assert_eq!(step_of("step-000000200.ckpt"), Some(200));
        assert_eq!(step_of(&step_file(7)), Some(7));
        for other in [
            "step-.ckpt",
            "step-12.ckpt.tmp",
            "last.ckpt",
            "step-1a.ckpt",
            "notes",
        ] {
            assert_eq!(step_of(other), None, "{other}");
        }
    }
}
