//! Folders of small PNGs, a deterministic encoder and its f64 reference, and a naive kNN.
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use burn::tensor::Tensor;
use image::{Rgb, RgbImage};
use repr_data::Normalize;
use repr_search::{FileId, ModelIdentity, Preprocess, Sizing};

/// Side of the test images.
pub const SIDE: u32 = 8;

/// The dimension of [`features`].
pub const DIM: usize = 9;

/// The identity of indexes built with [`features`].
pub fn identity() -> ModelIdentity {
    ModelIdentity {
        model: "test features v1".into(),
        preprocess: Preprocess {
            channels: 3,
            size: Sizing::Resize {
                height: SIDE as usize,
                width: SIDE as usize,
            },
            normalize: Normalize::identity(3),
        },
        dim: DIM,
    }
}

/// An 8 × 8 RGB image of pseudo-random pixels, a pure function of `seed`.
pub fn image(seed: u64) -> RgbImage {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    RgbImage::from_fn(SIDE, SIDE, |_, _| {
        let mut next = || {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        };
        Rgb([next(), next(), next()])
    })
}

/// Writes [`image`]`(seed)` to `root/relative` with the modification time `mtime_s` seconds
/// after 2020-01-01 (so that tests control what counts as changed).
pub fn write_png(root: &Path, relative: &str, seed: u64, mtime_s: u64) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image(seed).save(&path).unwrap();
    set_mtime(&path, mtime_s);
}

pub fn set_mtime(path: &Path, mtime_s: u64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + mtime_s);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// The test encoder: per channel, the mean, the maximum and the mean of the top half.
///
/// # Shapes
/// - `x`: `[n, 3, h, w]`
/// - output: `[n, 9]`
pub fn features(x: Tensor<4>) -> Tensor<2> {
    let [_, _, height, _] = x.dims();
    let mean = x.clone().mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
    let max = x.clone().max_dim(3).max_dim(2).flatten::<2>(1, 3);
    let top = x
        .narrow(2, 0, height / 2)
        .mean_dim(3)
        .mean_dim(2)
        .flatten::<2>(1, 3);
    Tensor::cat(vec![mean, max, top], 1)
}

/// [`features`] of [`image`]`(seed)` in f64 from its pixels, L2-normalised: what the index
/// must store for it.
pub fn reference_vector(seed: u64) -> Vec<f64> {
    let image = image(seed);
    let mut vector = [0.0f64; DIM];
    let pixels = f64::from(SIDE * SIDE);
    for (_, y, px) in image.enumerate_pixels() {
        for c in 0..3 {
            let v = f64::from(px[c]) / 255.0;
            vector[c] += v / pixels;
            vector[3 + c] = vector[3 + c].max(v);
            if y < SIDE / 2 {
                vector[6 + c] += v / (pixels / 2.0);
            }
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    vector.iter().map(|v| v / norm).collect()
}

/// The naive exact kNN in f64: every admitted item's cosine similarity, sorted by decreasing
/// score then increasing id, the first `k`.
pub fn naive_knn(
    items: &[(FileId, Vec<f64>)],
    query: &[f64],
    k: usize,
    admits: impl Fn(FileId) -> bool,
) -> Vec<(FileId, f64)> {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let qn = norm(query);
    let mut scored: Vec<(FileId, f64)> = items
        .iter()
        .filter(|(id, _)| admits(*id))
        .map(|(id, v)| {
            let dot: f64 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            let n = norm(v);
            (*id, if n > 0.0 { dot / (n * qn) } else { 0.0 })
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// Asserts that `hits` are `expected`: the same ids in the same order, scores within 1e-5.
/// Only where the f64 scores of two items are within 1e-6 (closer than f32 arithmetic can
/// tell apart) may their order differ, or the last hit be either of them.
pub fn assert_same_hits(hits: &[repr_search::Hit], expected: &[(FileId, f64)], what: &str) {
    assert_eq!(hits.len(), expected.len(), "{what}: number of hits");
    let ids: std::collections::BTreeSet<FileId> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), hits.len(), "{what}: an id returned twice");
    for (i, (hit, (id, score))) in hits.iter().zip(expected).enumerate() {
        assert!(
            (f64::from(hit.score) - score).abs() < 1e-5,
            "{what}: hit {i} (id {}) scored {} instead of {score}",
            hit.id,
            hit.score
        );
        if hit.id != *id {
            let tied = match expected.iter().find(|e| e.0 == hit.id) {
                Some((_, other)) => (other - score).abs() < 1e-6,
                None => (f64::from(hit.score) - score).abs() < 1e-6,
            };
            assert!(tied, "{what}: hit {i} is id {} instead of {id}", hit.id);
        }
    }
}
