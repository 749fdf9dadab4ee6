//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! A record is the label byte(s) followed by 3072 pixel bytes: the 32x32 red plane, then green,
//! then blue, which is already CHW. CIFAR-10 (`cifar-10-batches-bin/`) has one label byte per
//! record in `data_batch_1..5.bin` and `test_batch.bin`, class names in `batches.meta.txt`;
//! CIFAR-100 (`cifar-100-binary/`) has a coarse then a fine label byte in `train.bin` / `test.bin`,
//! fine class names in `fine_label_names.txt`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::dataset::check_labels;
use crate::{DataError, ImageDataset, Split};

/// CIFAR-10 class names, indexed by label (as in `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const SHAPE: [usize; 3] = [3, 32, 32];
const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Reads one CIFAR binary batch whose records start with `label_bytes` label bytes (1 for
/// CIFAR-10, 2 for CIFAR-100); the last label byte is the label (CIFAR-100's fine label).
///
/// Returns the pixels (CHW, `3x32x32` per image) and the labels.
///
/// # Errors
/// [`DataError::InvalidOptions`] for `label_bytes` other than 1 or 2; [`DataError::Io`];
/// [`DataError::EmptyDataset`] for an empty file; [`DataError::Truncated`] when the file length
/// is not a whole number of records.
pub fn read_cifar_batch(path: &Path, label_bytes: usize) -> Result<(Vec<u8>, Vec<u32>), DataError> {
    if !matches!(label_bytes, 1 | 2) {
        return Err(DataError::InvalidOptions {
            reason: format!(
                "{label_bytes} label bytes per CIFAR record; expected 1 (CIFAR-10) or 2 (CIFAR-100)"
            ),
        });
    }
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    let record = label_bytes + IMAGE_BYTES;
    if bytes.is_empty() {
        return Err(DataError::EmptyDataset {
            path: path.to_path_buf(),
            skipped: Vec::new(),
        });
    }
    if bytes.len() % record != 0 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: (bytes.len() / record + 1) as u64 * record as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(record) {
        labels.push(rec[label_bytes - 1] as u32);
        pixels.extend_from_slice(&rec[label_bytes..]);
    }
    Ok((pixels, labels))
}

/// Reads a split of CIFAR-10 from `dir` (the `cifar-10-batches-bin` folder): every
/// `data_batch_<k>.bin` in order of `k` for [`Split::Train`], `test_batch.bin` for
/// [`Split::Test`]. Class names come from `batches.meta.txt` when present.
///
/// # Errors
/// As [`read_cifar_batch`]; [`DataError::LabelOutOfRange`] for a label above 9;
/// [`DataError::BadClassNames`] when `batches.meta.txt` does not list 10 names.
pub fn read_cifar10(dir: &Path, split: Split) -> Result<ImageDataset, DataError> {
    let files = match split {
        Split::Train => train_batches(dir)?,
        Split::Test => vec![dir.join("test_batch.bin")],
    };
    let default = CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
    let names = class_names(&dir.join("batches.meta.txt"), default)?;
    read_batches(&files, 1, names)
}

/// Reads a split of CIFAR-100 from `dir` (the `cifar-100-binary` folder): `train.bin` or
/// `test.bin`, with the 100 fine labels. Class names come from `fine_label_names.txt` when
/// present, else they are `"0"`..`"99"`.
///
/// # Errors
/// As [`read_cifar10`], with 100 classes.
pub fn read_cifar100(dir: &Path, split: Split) -> Result<ImageDataset, DataError> {
    let file = match split {
        Split::Train => dir.join("train.bin"),
        Split::Test => dir.join("test.bin"),
    };
    let default = (0..100).map(|i| i.to_string()).collect();
    let names = class_names(&dir.join("fine_label_names.txt"), default)?;
    read_batches(&[file], 2, names)
}

fn read_batches(
    files: &[PathBuf],
    label_bytes: usize,
    class_names: Vec<String>,
) -> Result<ImageDataset, DataError> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        let (p, l) = read_cifar_batch(file, label_bytes)?;
        check_labels(file, &l, class_names.len())?;
        pixels.extend_from_slice(&p);
        labels.extend_from_slice(&l);
    }
    ImageDataset::new(pixels, labels, SHAPE, class_names)
}

/// `data_batch_<k>.bin` files of `dir`, sorted by `k`.
fn train_batches(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut batches = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name();
        let index = name
            .to_str()
            .and_then(|n| n.strip_prefix("data_batch_"))
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|k| k.parse::<u32>().ok());
        if let Some(k) = index {
            batches.push((k, entry.path()));
        }
    }
    if batches.is_empty() {
        let path = dir.join("data_batch_1.bin");
        let source = io::Error::new(io::ErrorKind::NotFound, "no data_batch_<k>.bin file");
        return Err(DataError::io(&path, source));
    }
    batches.sort();
    Ok(batches.into_iter().map(|(_, p)| p).collect())
}

/// The non-empty lines of `path` when it exists (there must be one per class), else `default`.
fn class_names(path: &Path, default: Vec<String>) -> Result<Vec<String>, DataError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(default),
        Err(e) => return Err(DataError::io(path, e)),
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != default.len() {
        return Err(DataError::BadClassNames {
            path: path.to_path_buf(),
            expected: default.len(),
            found: names.len(),
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CIFAR-100 record: coarse label, fine label, then R, G, B planes filled with 1, 2, 3.
    fn record100(coarse: u8, fine: u8) -> Vec<u8> {
        let mut r = vec![coarse, fine];
        for v in 1..=3u8 {
            r.extend(std::iter::repeat_n(v, 1024));
        }
        r
    }

    #[test]
    fn cifar100_uses_fine_labels_and_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = [record100(4, 99), record100(19, 0)].concat();
        fs::write(dir.path().join("test.bin"), bytes).unwrap();
        let names: String = (0..100).map(|i| format!("fine{i}\n")).collect();
        fs::write(dir.path().join("fine_label_names.txt"), names).unwrap();

        let ds = read_cifar100(dir.path(), Split::Test).unwrap();
        assert_eq!(ds.labels(), &[99, 0]);
        assert_eq!(ds.shape(), [3, 32, 32]);
        assert_eq!(ds.class_names()[99], "fine99");
        assert_eq!(
            (ds.image(1)[0], ds.image(1)[1024], ds.image(1)[3071]),
            (1, 2, 3)
        );
    }

    #[test]
    fn train_batches_are_ordered_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for k in [10, 2, 1] {
            fs::write(dir.path().join(format!("data_batch_{k}.bin")), [0u8]).unwrap();
        }
        fs::write(dir.path().join("data_batch_x.bin"), [0u8]).unwrap();
        let names: Vec<_> = train_batches(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["data_batch_1.bin", "data_batch_2.bin", "data_batch_10.bin"]
        );
    }

    #[test]
    fn wrong_number_of_class_names_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("test_batch.bin"),
            [&[1u8][..], &[0; 3072]].concat(),
        )
        .unwrap();
        fs::write(dir.path().join("batches.meta.txt"), "cat\ndog\n\n").unwrap();
        let err = read_cifar10(dir.path(), Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadClassNames {
                    expected: 10,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("batches.meta.txt"));
    }
}
