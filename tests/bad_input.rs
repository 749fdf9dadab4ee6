//! Forged and broken dataset files of every kind the readers accept: each must give a typed
//! error naming the file (never a panic or an allocation sized by a forged header), and an
//! image folder with a few bad files trains under `on_bad_image = "skip"`, listing them in the
//! run folder, and stops before any training under the default `fail`.

use std::path::{Path, PathBuf};

use repr::backbones::{BackboneConfig, BlockKind, ResNetConfig, Stem};
use repr::data::{DataError, LoadOptions, OnBadImage, Split, load, load_with_skipped};
use repr::train::{
    AugmentConfig, DeviceChoice, RunDir, RunMode, TrainConfig, TrainError, TrainOptions,
};

fn idx_images(count: u32, rows: u32, cols: u32, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for v in [0x0803, count, rows, cols] {
        bytes.extend_from_slice(&u32::to_be_bytes(v));
    }
    bytes.extend_from_slice(data);
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = 0x0801u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

/// A folder with `train-images-idx3-ubyte` = `images` and three valid labels.
fn idx_dir(images: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx_labels(&[1, 2, 3]),
    )
    .unwrap();
    dir
}

fn load_train(dir: &Path) -> Result<repr::data::ImageDataset, DataError> {
    load(dir, Split::Train, &LoadOptions::default())
}

#[test]
fn idx_files_that_lie_are_typed_errors() {
    let valid = idx_images(3, 2, 2, &[7; 12]);
    let dir = idx_dir(&valid);
    assert_eq!(load_train(dir.path()).unwrap().len(), 3);

    // Truncated data, truncated header.
    let err = load_train(idx_dir(&valid[..valid.len() - 1]).path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 28,
                found: 27,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
    let err = load_train(idx_dir(&valid[..10]).path()).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");

    // Wrong magic: a label file where images are expected.
    let err = load_train(idx_dir(&idx_labels(&[1, 2, 3])).path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 0x0801,
                expected: 0x0803,
                ..
            }
        ),
        "{err}"
    );

    // Forged huge dimensions: overflow is a bad header; a plausible but huge count with a few
    // bytes of data is a truncation found without reserving the 4 GiB the header promises.
    let err = load_train(idx_dir(&idx_images(u32::MAX, u32::MAX, u32::MAX, &[0; 4])).path());
    let err = err.unwrap_err();
    assert!(
        matches!(&err, DataError::BadHeader { reason, .. } if reason.contains("overflow")),
        "{err}"
    );
    let err = load_train(idx_dir(&idx_images(1 << 30, 64, 64, &[0; 100])).path()).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { expected, found: 116, .. } if expected == 16 + (1u64 << 42)),
        "{err}"
    );
    // Zero-sized images, trailing bytes, images and labels that disagree.
    let err = load_train(idx_dir(&idx_images(3, 0, 2, &[])).path()).unwrap_err();
    assert!(matches!(err, DataError::BadHeader { .. }), "{err}");
    let err = load_train(idx_dir(&idx_images(3, 2, 2, &[0; 13])).path()).unwrap_err();
    assert!(matches!(err, DataError::TrailingData { .. }), "{err}");
    let err = load_train(idx_dir(&idx_images(2, 2, 2, &[0; 8])).path()).unwrap_err();
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
    // Not gzip after all: a gzip magic followed by garbage is an I/O error naming the file.
    let err = load_train(idx_dir(&[0x1f, 0x8b, 8, 0, 1, 2, 3]).path()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
}

/// One stray label byte (255) in IDX labels is named by file, item and value, in the training
/// split and in the test split (checked against the training labels' classes); it used to make
/// a 256-class dataset and surface later as a class-count mismatch.
#[test]
fn an_out_of_range_idx_label_names_the_file_the_item_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx_images(12, 2, 2, &[7; 48]);
    let mut labels: Vec<u8> = (0..12).map(|i| i % 10).collect();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    write("train-images-idx3-ubyte", &images);
    write("t10k-images-idx3-ubyte", &images);
    write("t10k-labels-idx1-ubyte", &idx_labels(&labels));
    labels[5] = 255;
    write("train-labels-idx1-ubyte", &idx_labels(&labels));
    let err = load_train(dir.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::LabelOutOfRange { path, index: 5, label: 255, num_classes: 10 }
                if path.ends_with("train-labels-idx1-ubyte")
        ),
        "{err}"
    );
    let message = err.to_string();
    for needle in ["train-labels-idx1-ubyte", "255", "item 5"] {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    // The same byte in the test labels, with clean training labels.
    labels[5] = 5;
    write("train-labels-idx1-ubyte", &idx_labels(&labels));
    assert_eq!(load_train(dir.path()).unwrap().num_classes(), 10);
    labels[7] = 255;
    write("t10k-labels-idx1-ubyte", &idx_labels(&labels));
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::LabelOutOfRange { path, index: 7, label: 255, .. }
                if path.ends_with("t10k-labels-idx1-ubyte")
        ),
        "{err}"
    );
    // A real 12-class IDX dataset (every number up to the largest present) stays valid.
    let labels: Vec<u8> = (0..12).collect();
    write("train-labels-idx1-ubyte", &idx_labels(&labels));
    assert_eq!(load_train(dir.path()).unwrap().num_classes(), 12);
}

fn cifar_record(label: u8) -> Vec<u8> {
    let mut record = vec![label];
    record.extend(std::iter::repeat_n(128u8, 3072));
    record
}

#[test]
fn cifar_files_of_the_wrong_length_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test_batch.bin");
    let two = [cifar_record(1), cifar_record(9)].concat();
    std::fs::write(&path, &two).unwrap();
    let ds = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.labels()), (2, &[1, 9][..]));

    for cut in [1, 3072, 3073 + 100] {
        std::fs::write(&path, &two[..two.len() - cut]).unwrap();
        let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { expected, found, .. }
                if found == (two.len() - cut) as u64 && expected % 3073 == 0),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("test_batch.bin"), "{err}");
    }
    std::fs::write(&path, b"").unwrap();
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::EmptyDataset { .. }), "{err}");
    std::fs::write(&path, cifar_record(10)).unwrap();
    let err = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                label: 10,
                num_classes: 10,
                ..
            }
        ),
        "{err}"
    );
    let err = repr::data::read_cifar_batch(&path, 0).unwrap_err();
    assert!(matches!(err, DataError::InvalidOptions { .. }), "{err}");
}

fn write_png(path: &Path, shade: u8) {
    image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([shade, x as u8 * 20, y as u8 * 30]))
        .save(path)
        .unwrap();
}

/// Makes `path` fail to read. As root, permissions do not stop a read, so the file is a link
/// to `/proc/self/mem`, whose first page is unmapped: opening works, reading fails (EIO).
fn make_unreadable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, b"secret").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(path).is_ok() {
        std::fs::remove_file(path).unwrap();
        std::os::unix::fs::symlink("/proc/self/mem", path).unwrap();
        assert!(
            std::fs::read(path).is_err(),
            "{} is readable",
            path.display()
        );
    }
}

/// `root/{train,test}/{a,b}/` with good PNGs, and four bad files in `train`. Returns the bad
/// files, sorted as the reader reports them (label, then file name).
fn image_folder(root: &Path) -> Vec<PathBuf> {
    for split in ["train", "test"] {
        for (class, shade) in [("a", 10), ("b", 200)] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..8 {
                write_png(&dir.join(format!("img{i}.png")), shade + i);
            }
        }
    }
    let train = root.join("train");
    write_png(&train.join("a/x.png"), 1);
    let good = std::fs::read(train.join("a/x.png")).unwrap();
    let bad = vec![
        train.join("a/corrupt.png"),
        train.join("a/empty.png"),
        train.join("b/text.jpg"),
        train.join("b/unreadable.png"),
    ];
    std::fs::write(&bad[0], &good[..good.len() / 2]).unwrap(); // A truncated PNG.
    std::fs::write(&bad[1], b"").unwrap(); // Zero bytes.
    std::fs::write(&bad[2], b"not a picture\n").unwrap();
    make_unreadable(&bad[3]);
    bad
}

#[test]
fn image_folders_with_bad_files_fail_or_skip_them() {
    let dir = tempfile::tempdir().unwrap();
    let bad = image_folder(dir.path());
    let options = LoadOptions::default().with_image_size(4, 4);

    // Default: fail on the first bad file, naming it.
    let err = load(dir.path(), Split::Train, &options).unwrap_err();
    assert!(matches!(err, DataError::BadImage { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.png"), "{err}");

    // Skip: every bad file listed once, with a reason; the 17 good ones kept in order.
    let options = options.with_on_bad_image(OnBadImage::Skip);
    let (ds, skipped) = load_with_skipped(dir.path(), Split::Train, &options).unwrap();
    assert_eq!(ds.len(), 17);
    assert_eq!(ds.labels().iter().filter(|&&l| l == 0).count(), 9);
    let paths: Vec<&Path> = skipped.iter().map(|s| s.path.as_path()).collect();
    assert_eq!(paths, bad.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert!(
        skipped[0].reason.starts_with("cannot decode"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].reason.starts_with("cannot decode"),
        "{skipped:?}"
    );
    assert!(skipped[3].reason.starts_with("cannot read"), "{skipped:?}");
    // The kept images are the good ones, unchanged by the compaction.
    let clean = tempfile::tempdir().unwrap();
    for f in &bad {
        std::fs::remove_file(f).unwrap();
    }
    std::fs::rename(dir.path().join("train"), clean.path().join("train")).unwrap();
    std::fs::rename(dir.path().join("test"), clean.path().join("test")).unwrap();
    let reference = load(clean.path(), Split::Train, &options).unwrap();
    assert_eq!(reference.labels(), ds.labels());
    assert!((0..ds.len()).all(|i| ds.image(i) == reference.image(i)));

    // A folder of nothing but bad files is empty, not a dataset of zero images.
    let only_bad = tempfile::tempdir().unwrap();
    std::fs::create_dir(only_bad.path().join("c")).unwrap();
    std::fs::write(only_bad.path().join("c/z.png"), b"").unwrap();
    let err = load(only_bad.path(), Split::Train, &options).unwrap_err();
    assert!(matches!(err, DataError::EmptyDataset { .. }), "{err}");
}

/// A supervised ResNet of width 4 on 4x4 RGB images, one epoch.
fn tiny_folder_config(data: &Path, on_bad_image: OnBadImage) -> TrainConfig {
    let mut config = TrainConfig::supervised();
    config.backbone = BackboneConfig::ResNet(
        ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
            .with_stem(Stem::Cifar)
            .with_width(4)
            .with_in_channels(3)
            .with_num_classes(2),
    );
    config.data.dir = Some(data.to_path_buf());
    config.data.image_size = Some([4, 4]);
    config.data.on_bad_image = on_bad_image;
    config.batch_size = 8;
    config.eval_batch_size = 16;
    config.epochs = 1;
    config.schedule.warmup_epochs = 0.0;
    config.augment = AugmentConfig {
        crop_padding: 0,
        horizontal_flip: 0.0,
        ..AugmentConfig::default()
    };
    config.eval.plots = false;
    config
}

#[test]
fn training_on_a_folder_with_bad_files_skips_and_lists_them_or_fails_first() {
    let dir = tempfile::tempdir().unwrap();
    let bad = image_folder(&dir.path().join("data"));
    let options = TrainOptions {
        device: DeviceChoice::Flex.into(),
        resume: false,
        progress: false,
    };

    let failing = RunDir::open(dir.path().join("fail"), RunMode::New).unwrap();
    let config = tiny_folder_config(&dir.path().join("data"), OnBadImage::Fail);
    let err = repr::train::train(&config, &failing, &options).unwrap_err();
    assert!(
        matches!(&err, TrainError::Data(DataError::BadImage { path, .. }) if path == &bad[0]),
        "{err}"
    );
    assert!(!failing.last_checkpoint().exists() && !failing.metrics().exists());

    let run = RunDir::open(dir.path().join("skip"), RunMode::New).unwrap();
    let config = tiny_folder_config(&dir.path().join("data"), OnBadImage::Skip);
    let summary = repr::train::train(&config, &run, &options).unwrap();
    assert_eq!(summary.steps, 2, "17 images, batches of 8, last dropped");
    let listed = std::fs::read_to_string(run.skipped_images()).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    for (line, path) in lines.iter().zip(&bad) {
        let (file, reason) = line.split_once('\t').unwrap();
        assert_eq!(Path::new(file), path);
        assert!(reason.starts_with("cannot "), "{line}");
    }
    // The setting is part of the saved config, so a resumed run skips the same files.
    let saved = TrainConfig::from_file(&run.config()).unwrap();
    assert_eq!(saved.data.on_bad_image, OnBadImage::Skip);
    assert!(
        std::fs::read_to_string(run.config())
            .unwrap()
            .contains("on_bad_image = \"skip\"")
    );
}
