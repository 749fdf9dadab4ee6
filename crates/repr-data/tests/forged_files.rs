//! Broken datasets written on the fly: each gives one typed error naming the file, never a panic
//! and never an allocation sized by a forged header.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use repr_data::{
    DEFAULT_MAX_IMAGE_PIXELS, DataError, LoadOptions, OnBadImage, Split, load, load_with_skipped,
    read_cifar_batch, read_idx_images, read_idx_labels,
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

#[test]
fn gzip_stream_longer_than_its_header_is_trailing_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = idx_header(0x803, &[1, 2, 2]);
    bytes.extend_from_slice(&[0; 4 + 1_000_000]);
    let path = dir.path().join("long-images-idx3-ubyte.gz");
    write(&path, &gzip(&bytes));
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(err, DataError::TrailingData { expected: 20, .. }),
        "{err}"
    );
    assert_names(&err, "long-images-idx3-ubyte.gz");
}

/// A PNG whose header declares `width × height` 8-bit RGB pixels, with a few bytes of pixel
/// data: what a forged or damaged file looks like to a reader that trusts the header.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(body);
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc.sum().to_be_bytes());
        out
    }
    let mut ihdr = [width.to_be_bytes(), height.to_be_bytes()].concat();
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    idat.write_all(&[0; 64]).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &idat.finish().unwrap()));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn images_declaring_too_many_pixels_are_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("huge/a.png"),
        &png_declaring(60_000, 60_000),
    );
    // 2^31 - 1 wide: its one row is more than the decoder may allocate.
    write(
        &dir.path().join("huge/b.png"),
        &png_declaring(0x7fff_ffff, 1),
    );
    std::fs::create_dir_all(dir.path().join("ok")).unwrap();
    image::GrayImage::new(3, 3)
        .save(dir.path().join("ok/fine.png"))
        .unwrap();

    let start = Instant::now();
    let err = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            err,
            DataError::ImageTooLarge {
                width: 60_000,
                height: 60_000,
                limit: DEFAULT_MAX_IMAGE_PIXELS,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    for part in [
        "a.png",
        "60000x60000 pixels (3600.0 megapixels)",
        "limit of 64000000 pixels (64.0 megapixels)",
        "`data.max_image_pixels`",
        "`--max-image-pixels`",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }

    let skip = LoadOptions::default().with_on_bad_image(OnBadImage::Skip);
    let (dataset, skipped) = load_with_skipped(dir.path(), Split::Train, &skip).unwrap();
    assert_eq!(dataset.len(), 1);
    let listed: Vec<_> = skipped
        .iter()
        .map(|s| (s.path.file_name().unwrap().to_str().unwrap(), &s.reason))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].0, "a.png");
    assert!(
        listed[0].1.starts_with("60000x60000 pixels"),
        "{}",
        listed[0].1
    );
    assert_eq!(listed[1].0, "b.png");
    assert!(
        listed[1].1.starts_with("2147483647x1 pixels"),
        "{}",
        listed[1].1
    );
    assert!(listed.iter().all(|(_, r)| r.contains("--max-image-pixels")));

    // Without the good image nothing is left: empty, and the message says why.
    std::fs::remove_dir_all(dir.path().join("ok")).unwrap();
    let err = load(dir.path(), Split::Train, &skip).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptyDataset { skipped, .. } if skipped.len() == 2),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("all 2 image files were skipped")
            && message.contains("a.png: 60000x60000 pixels"),
        "{message}"
    );
}

#[test]
fn the_pixel_limit_comes_from_the_load_options() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    image::RgbImage::new(10, 10)
        .save(dir.path().join("a/ten.png"))
        .unwrap();
    let at = |limit| LoadOptions::default().with_max_image_pixels(limit);
    assert_eq!(load(dir.path(), Split::Train, &at(100)).unwrap().len(), 1);
    let err = load(dir.path(), Split::Train, &at(99)).unwrap_err();
    assert!(
        matches!(err, DataError::ImageTooLarge { limit: 99, .. }),
        "{err}"
    );
    assert_names(&err, "ten.png");
    let err = load(dir.path(), Split::Train, &at(0)).unwrap_err();
    assert!(matches!(err, DataError::InvalidOptions { .. }), "{err}");
}
