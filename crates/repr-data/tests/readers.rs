//! Happy paths of the readers on small datasets written on the fly, and the batcher through
//! Burn's `DataLoader`.

use std::path::Path;

use burn::data::dataloader::DataLoaderBuilder;
use image::{GrayImage, Luma, Rgb, RgbImage};
use repr_data::{
    CIFAR10_CLASSES, DatasetFormat, ImageBatcher, LoadOptions, Normalize, Split, load,
};

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
}

#[test]
fn image_folder_resizes_and_converts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("class_a"), dir.path().join("class_b"));
    mkdir(&a);
    mkdir(&b);
    // class_a: a solid gray 4x6 PNG and a solid RGB 10x5 PNG (upper-case extension).
    GrayImage::from_pixel(6, 4, Luma([100]))
        .save(a.join("1_gray.png"))
        .unwrap();
    RgbImage::from_pixel(5, 10, Rgb([200, 50, 25]))
        .save_with_format(a.join("2_rgb.PNG"), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(a.join("readme.txt"), "ignored").unwrap();
    // class_b: an RGB JPEG already 8x8 and a left/right split PNG.
    RgbImage::from_pixel(8, 8, Rgb([0, 128, 255]))
        .save(b.join("photo.jpg"))
        .unwrap();
    let split = RgbImage::from_fn(16, 16, |x, _| {
        if x < 8 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    });
    split.save(b.join("split.png")).unwrap();

    assert_eq!(
        DatasetFormat::detect(dir.path()).unwrap(),
        DatasetFormat::ImageFolder
    );
    let options = LoadOptions::default()
        .with_image_size(8, 8)
        .with_channels(3);
    let ds = load(dir.path(), Split::Train, &options).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.shape(), [3, 8, 8]);
    assert_eq!(ds.class_names(), ["class_a", "class_b"]);
    assert_eq!(ds.labels(), &[0, 0, 1, 1]);

    // Gray to RGB: every channel 100. Solid RGB: planes 200, 50, 25 after resizing.
    assert!(ds.image(0).iter().all(|&v| v == 100));
    let plane = 64;
    let rgb = ds.image(1);
    assert!(
        rgb[..plane].iter().all(|&v| v == 200),
        "{:?}",
        &rgb[..plane]
    );
    assert!(rgb[plane..2 * plane].iter().all(|&v| v == 50));
    assert!(rgb[2 * plane..].iter().all(|&v| v == 25));
    // JPEG is lossy: within a few levels.
    let jpg = ds.image(2);
    for (c, want) in [0i32, 128, 255].into_iter().enumerate() {
        let v = jpg[c * plane + 27] as i32;
        assert!((v - want).abs() <= 4, "channel {c}: {v} vs {want}");
    }
    // Downscaled halves keep their sides: row 3, columns 0 and 7.
    let half = ds.image(3);
    assert_eq!((half[3 * 8], half[3 * 8 + 7]), (0, 255));

    // The same folder in grayscale at another size.
    let gray = load(
        dir.path(),
        Split::Train,
        &LoadOptions::default()
            .with_image_size(3, 5)
            .with_channels(1),
    )
    .unwrap();
    assert_eq!(gray.shape(), [1, 3, 5]);
    assert!(gray.image(0).iter().all(|&v| v == 100));
}

#[test]
fn image_folder_train_and_test_share_labels() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["train/ant", "train/bee", "test/bee"] {
        mkdir(&dir.path().join(class));
        GrayImage::from_pixel(2, 2, Luma([9]))
            .save(dir.path().join(class).join("x.png"))
            .unwrap();
    }
    let options = LoadOptions::default()
        .with_image_size(2, 2)
        .with_channels(1);
    let train = load(dir.path(), Split::Train, &options).unwrap();
    let test = load(dir.path(), Split::Test, &options).unwrap();
    assert_eq!(train.class_names(), ["ant", "bee"]);
    assert_eq!(test.class_names(), ["ant", "bee"]);
    assert_eq!(train.labels(), &[0, 1]);
    assert_eq!(test.labels(), &[1]);
}

/// A CIFAR-10 record whose R, G, B planes hold `r`, `g + pixel % 7`, `b`.
fn cifar_record(label: u8, r: u8, g: u8, b: u8) -> Vec<u8> {
    let mut rec = vec![label];
    rec.extend(std::iter::repeat_n(r, 1024));
    rec.extend((0..1024).map(|i| g + (i % 7) as u8));
    rec.extend(std::iter::repeat_n(b, 1024));
    rec
}

#[test]
fn cifar10_batches_are_chw_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let batch1 = [cifar_record(3, 10, 20, 30), cifar_record(0, 40, 50, 60)].concat();
    std::fs::write(dir.path().join("data_batch_1.bin"), batch1).unwrap();
    std::fs::write(
        dir.path().join("data_batch_2.bin"),
        cifar_record(9, 70, 80, 90),
    )
    .unwrap();
    std::fs::write(dir.path().join("test_batch.bin"), cifar_record(5, 1, 2, 3)).unwrap();

    assert_eq!(
        DatasetFormat::detect(dir.path()).unwrap(),
        DatasetFormat::Cifar10
    );
    let ds = load(dir.path(), Split::Train, &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.shape(), [3, 32, 32]);
    assert_eq!(ds.labels(), &[3, 0, 9]);
    assert_eq!(ds.class_names()[3], CIFAR10_CLASSES[3]);
    assert_eq!(ds.class_names()[3], "cat");
    for (i, (r, g, b)) in [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
        .into_iter()
        .enumerate()
    {
        let im = ds.image(i);
        // Pixel (row 5, column 9) of each channel plane.
        let p = 5 * 32 + 9;
        assert_eq!(
            (im[p], im[1024 + p], im[2048 + p]),
            (r, g + (p % 7) as u8, b)
        );
    }

    let test = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap();
    assert_eq!(test.labels(), &[5]);
    assert_eq!(test.image(0)[2048], 3);
}

#[test]
fn dataset_feeds_a_burn_dataloader() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<u8> = (0..5u8).flat_map(|k| cifar_record(k, k, 0, 255)).collect();
    std::fs::write(dir.path().join("test_batch.bin"), records).unwrap();
    let ds = load(dir.path(), Split::Test, &LoadOptions::default()).unwrap();

    let loader = DataLoaderBuilder::new(ImageBatcher::new(Normalize::identity(3)))
        .batch_size(2)
        .set_device(repr_testing::flex())
        .build(ds);
    let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].images.dims(), [2, 3, 32, 32]);
    assert_eq!(batches[2].images.dims(), [1, 3, 32, 32]);
    let targets: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.targets.to_data().iter::<i64>().collect::<Vec<_>>())
        .collect();
    assert_eq!(targets, [0, 1, 2, 3, 4]);
    // Blue plane is 255 -> 1.0; red plane of item 4 is 4/255.
    let last: Vec<f32> = batches[2].images.to_data().iter::<f32>().collect();
    assert!((last[0] - 4.0 / 255.0).abs() < 1e-6 && (last[2048] - 1.0).abs() < 1e-6);
}

#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_are_read() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use repr_data::{DEFAULT_MAX_IMAGE_PIXELS, OnBadImage, read_image_folder_with};

    let dir = tempfile::tempdir().unwrap();
    // "café" in Latin-1, and a file name that is one invalid byte.
    let cafe = dir.path().join(OsStr::from_bytes(b"caf\xe9"));
    let tea = dir.path().join("tea");
    mkdir(&cafe);
    mkdir(&tea);
    GrayImage::from_pixel(2, 2, Luma([10]))
        .save_with_format(
            cafe.join(OsStr::from_bytes(b"\xff.png")),
            image::ImageFormat::Png,
        )
        .unwrap();
    GrayImage::from_pixel(2, 2, Luma([20]))
        .save(tea.join("t.png"))
        .unwrap();
    let broken = cafe.join(OsStr::from_bytes(b"\xfe.png"));
    std::fs::write(&broken, b"not a png").unwrap();

    let (ds, skipped) = read_image_folder_with(
        dir.path(),
        1,
        (2, 2),
        OnBadImage::Skip,
        DEFAULT_MAX_IMAGE_PIXELS,
    )
    .unwrap();
    assert_eq!(ds.class_names(), ["caf\u{fffd}", "tea"]);
    assert_eq!(ds.labels(), &[0, 1]);
    assert_eq!((ds.image(0), ds.image(1)), (&[10; 4][..], &[20; 4][..]));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].path, broken);
}
