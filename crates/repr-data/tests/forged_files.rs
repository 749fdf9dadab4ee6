//! Broken datasets written on the fly: each gives one typed error naming the file, never a panic
//! and never an allocation sized by a forged header.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use repr_data::{
    DataError, LoadOptions, Split, load, read_cifar_batch, read_idx_images, read_idx_labels,
};

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn assert_names(err: &DataError, file: &str) {
    assert!(
        err.to_string().contains(file),
        "message does not name {file}: {err}"
    );
}

#[test]
fn bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-images-idx3-ubyte");
    let mut bytes = idx_header(0x0000_1234, &[1, 1, 1]);
    bytes.push(0);
    write(&path, &bytes);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 0x1234,
                expected: 0x803,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "train-images-idx3-ubyte");
}

#[test]
fn truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short-images-idx3-ubyte");
    write(&path, &idx_header(0x803, &[5])[..7]);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 16,
                found: 7,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "short-images-idx3-ubyte");

    let path = dir.path().join("tiny-labels");
    write(&path, &[0, 0]);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 8,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_data_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = idx_header(0x803, &[2, 2, 2]);
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    let raw = dir.path().join("cut-images-idx3-ubyte");
    let gz = dir.path().join("cut-images-idx3-ubyte.gz");
    write(&raw, &bytes);
    write(&gz, &gzip(&bytes));
    for path in [raw, gz] {
        let err = read_idx_images(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 24,
                    found: 21,
                    ..
                }
            ),
            "{err}"
        );
        assert_names(&err, path.file_name().unwrap().to_str().unwrap());
    }
}

#[test]
fn cut_gzip_stream_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = idx_header(0x803, &[10, 28, 28]);
    bytes.extend((0..7840).map(|i| (i * 7 % 256) as u8));
    let compressed = gzip(&bytes);
    let path = dir.path().join("half-images-idx3-ubyte.gz");
    write(&path, &compressed[..compressed.len() / 2]);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(err, DataError::Io { .. } | DataError::Truncated { .. }),
        "{err}"
    );
    assert_names(&err, "half-images-idx3-ubyte.gz");
}

#[test]
fn huge_forged_count_fails_fast_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 2^31 images of 28x28 = 1.6 TB promised, 100 bytes present.
    let mut bytes = idx_header(0x803, &[1 << 31, 28, 28]);
    bytes.extend_from_slice(&[0; 100]);
    let raw = dir.path().join("forged-images-idx3-ubyte");
    let gz = dir.path().join("forged-images-idx3-ubyte.gz");
    write(&raw, &bytes);
    write(&gz, &gzip(&bytes));
    for path in [raw, gz] {
        let start = Instant::now();
        let err = read_idx_images(&path).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        let expected = 16 + (1u64 << 31) * 784;
        assert!(
            matches!(err, DataError::Truncated { expected: e, found: 116, .. } if e == expected),
            "{err}"
        );
    }
    // Dimensions whose product overflows are a bad header, not an overflow panic.
    let path = dir.path().join("overflow-images-idx3-ubyte");
    write(&path, &idx_header(0x803, &[u32::MAX, u32::MAX, u32::MAX]));
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::BadHeader { .. }), "{err}");
}

#[test]
fn image_and_label_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = idx_header(0x803, &[2, 1, 1]);
    images.extend_from_slice(&[0, 1]);
    let mut labels = idx_header(0x801, &[3]);
    labels.extend_from_slice(&[0, 1, 2]);
    write(
        &dir.path().join("train-images-idx3-ubyte.gz"),
        &gzip(&images),
    );
    write(&dir.path().join("train-labels-idx1-ubyte"), &labels);
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 2,
                labels: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "train-images-idx3-ubyte.gz");
    assert_names(&err, "train-labels-idx1-ubyte");
    // The test split is missing altogether.
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert_names(&err, "t10k-images-idx3-ubyte");
}

#[test]
fn fashion_labels_above_nine_are_out_of_range() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("my-fashion-mnist");
    let mut images = idx_header(0x803, &[2, 1, 1]);
    images.extend_from_slice(&[0, 1]);
    let mut labels = idx_header(0x801, &[2]);
    labels.extend_from_slice(&[3, 12]);
    write(&dir.join("t10k-images-idx3-ubyte"), &images);
    write(&dir.join("t10k-labels-idx1-ubyte"), &labels);
    let err = load(&dir, Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 12,
                num_classes: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "t10k-labels-idx1-ubyte");
}

#[test]
fn cifar_partial_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    write(&path, &vec![0; 2 * 3073 + 100]);
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 9219,
                found: 6246,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "data_batch_1.bin");

    let cifar100 = dir.path().join("train.bin");
    write(&cifar100, &vec![0; 3073]);
    let err = read_cifar_batch(&cifar100, 2).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 3074,
                found: 3073,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cifar10_label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![3u8];
    bytes.extend_from_slice(&[0; 3072]);
    bytes.push(10);
    bytes.extend_from_slice(&[0; 3072]);
    write(&dir.path().join("test_batch.bin"), &bytes);
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "test_batch.bin");
}

#[test]
fn undecodable_png_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("class_a")).unwrap();
    image::GrayImage::new(3, 3)
        .save(dir.path().join("class_a/fine.png"))
        .unwrap();
    write(
        &dir.path().join("class_b/broken.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    );
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::BadImage { .. }), "{err}");
    assert_names(&err, "broken.png");
}

#[test]
fn empty_folders() {
    // Nothing at all: no format to detect.
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownFormat { .. }), "{err}");
    assert_names(&err, &dir.path().display().to_string());

    // Class folders without images.
    std::fs::create_dir_all(dir.path().join("cat")).unwrap();
    write(&dir.path().join("cat/notes.txt"), b"not an image");
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::EmptyDataset { .. }), "{err}");
    assert_names(&err, &dir.path().display().to_string());

    // No class folder: read directly as an image folder.
    let flat = tempfile::tempdir().unwrap();
    let err = repr_data::read_image_folder(flat.path(), 3, (8, 8)).unwrap_err();
    assert!(matches!(err, DataError::NoClasses { .. }), "{err}");

    // A directory that does not exist.
    let missing = dir.path().join("nowhere");
    let err = load(&missing, Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert_names(&err, "nowhere");
}

#[test]
fn single_image_folder_has_no_test_split() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    image::GrayImage::new(2, 2)
        .save(dir.path().join("a/x.png"))
        .unwrap();
    assert_eq!(
        load(dir.path(), Split::Train, &LoadOptions::default())
            .unwrap()
            .len(),
        1
    );
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::MissingSplit {
                split: Split::Test,
                ..
            }
        ),
        "{err}"
    );
}
