//! The embedded Fashion-MNIST copy: checksums of the uncompressed files and the facts the rest of
//! the workspace relies on (sizes, balance, label order).

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use repr_data::{LoadOptions, Split, fashion_mnist_dir, load};
use sha2::{Digest, Sha256};

fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn uncompressed_files_match_published_sha256() {
    // sha256 of the uncompressed files, as in ../shared/datasets/README.md.
    let expected = [
        (
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ];
    for (file, sha) in expected {
        let digest = Sha256::digest(gunzip(&fashion_mnist_dir().join(file)));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, sha, "{file}");
    }
}

#[test]
fn train_split_has_60000_balanced_images() {
    let ds = load(&fashion_mnist_dir(), Split::Train, &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 60_000);
    assert_eq!(ds.shape(), [1, 28, 28]);
    assert_eq!(ds.num_classes(), 10);
    assert_eq!(ds.class_counts(), vec![6000; 10]);

    // Cross-check against the raw bytes: labels start at offset 8, images at offset 16.
    let raw_labels = gunzip(&fashion_mnist_dir().join("train-labels-idx1-ubyte.gz"));
    let raw_images = gunzip(&fashion_mnist_dir().join("train-images-idx3-ubyte.gz"));
    assert_eq!(ds.label(0), raw_labels[8] as usize);
    assert_eq!(ds.label(59_999), raw_labels[8 + 59_999] as usize);
    assert_eq!(ds.image(0), &raw_images[16..16 + 784]);
    assert_eq!(ds.image(59_999), &raw_images[raw_images.len() - 784..]);
    // The well-known first training item is an ankle boot.
    assert_eq!(ds.label(0), 9);
    assert_eq!(ds.class_names()[ds.label(0)], "Ankle boot");
    assert_eq!(ds.class_names()[0], "T-shirt/top");
}

#[test]
fn test_split_has_10000_balanced_images() {
    let ds = load(&fashion_mnist_dir(), Split::Test, &LoadOptions::default()).unwrap();
    assert_eq!(ds.len(), 10_000);
    assert_eq!(ds.shape(), [1, 28, 28]);
    assert_eq!(ds.class_counts(), vec![1000; 10]);

    let raw_labels = gunzip(&fashion_mnist_dir().join("t10k-labels-idx1-ubyte.gz"));
    let labels: Vec<u32> = raw_labels[8..].iter().map(|&l| l as u32).collect();
    assert_eq!(ds.labels(), labels.as_slice());

    // Pixel statistics are in [0, 1] units and plausible for Fashion-MNIST (mean ~0.29).
    let (mean, std) = ds.channel_mean_std();
    assert!(mean[0] > 0.2 && mean[0] < 0.4, "{mean:?}");
    assert!(std[0] > 0.25 && std[0] < 0.45, "{std:?}");
}
