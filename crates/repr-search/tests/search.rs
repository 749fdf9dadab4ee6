//! Exact search against a naive f64 kNN: over a gallery in memory (across block boundaries,
//! with every filter), and over an index of PNGs on every backend.

mod common;

use std::collections::BTreeSet;
use std::fs;

use burn::tensor::Device;
use common::{assert_same_hits, features, identity, naive_knn, reference_vector, write_png};
use repr_search::{
    ExactSearcher, FileId, Filter, Gallery, GalleryItem, Index, SearchError, Searcher,
    UpdateOptions, embed_images,
};

/// A deterministic value in [-1, 1).
fn value(i: usize, salt: u64) -> f32 {
    let mut x =
        (i as u64 ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

const LABELS: [Option<&str>; 4] = [Some("a"), Some("b"), Some("c"), None];

/// `n` items of dimension `dim`; ids spaced out (so they are not positions), labels and
/// sub-folders cycling.
fn items(n: usize, dim: usize) -> Vec<GalleryItem> {
    (0..n)
        .map(|i| {
            let label = LABELS[i % 4];
            let name = format!("sub{}/x{i}.png", i % 3);
            GalleryItem {
                id: FileId(3 * i as u64 + 1),
                vector: (0..dim).map(|j| value(i * dim + j, 1)).collect(),
                path: label.map_or(name.clone(), |l| format!("{l}/{name}")),
                label: label.map(String::from),
            }
        })
        .collect()
}

fn as_f64(items: &[GalleryItem]) -> Vec<(FileId, Vec<f64>)> {
    items
        .iter()
        .map(|item| (item.id, item.vector.iter().map(|&v| f64::from(v)).collect()))
        .collect()
}

fn filters(excluded: &[FileId]) -> Vec<(&'static str, Filter)> {
    vec![
        ("no filter", Filter::default()),
        (
            "stop-list",
            Filter::default().excluding(excluded.iter().copied()),
        ),
        ("labels", Filter::default().with_labels(["a", "c"])),
        ("folder", Filter::default().in_folder("b/sub1")),
        ("unlabelled folder", Filter::default().in_folder("sub2/")),
        (
            "all three",
            Filter::default()
                .excluding(excluded.iter().copied())
                .with_labels(["b"])
                .in_folder("b/sub0"),
        ),
    ]
}

/// 2,100 gallery items (three gallery blocks) and 70 queries (two query blocks).
#[test]
fn exact_search_equals_naive_knn_with_and_without_filters() {
    let (n, dim) = (2100, 24);
    let items = items(n, dim);
    let reference = as_f64(&items);
    let paths: Vec<(FileId, String, Option<String>)> = items
        .iter()
        .map(|item| (item.id, item.path.clone(), item.label.clone()))
        .collect();
    let searcher = ExactSearcher::new(Gallery::new(dim, items).unwrap());
    let queries: Vec<f32> = (0..70 * dim).map(|i| value(i, 2)).collect();
    let excluded: Vec<FileId> = paths.iter().step_by(5).map(|p| p.0).collect();
    for (what, filter) in filters(&excluded) {
        let admitted_ids: std::collections::HashSet<FileId> = paths
            .iter()
            .filter(|(id, path, label)| filter.admits(*id, path, label.as_deref()))
            .map(|p| p.0)
            .collect();
        let admits = |id: FileId| admitted_ids.contains(&id);
        let admitted = admitted_ids.len();
        assert!(admitted > 10, "{what}: the filter must leave a choice");
        for k in [1, 7, admitted + 5] {
            let hits = searcher.search(&queries, k, &filter).unwrap();
            assert_eq!(hits.len(), 70);
            for (q, hits) in hits.iter().enumerate() {
                let query: Vec<f64> = queries[q * dim..(q + 1) * dim]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let expected = naive_knn(&reference, &query, k, admits);
                assert_same_hits(hits, &expected, &format!("{what}, k = {k}, query {q}"));
            }
        }
    }
}

#[test]
fn ties_are_broken_by_id_and_search_by_id_excludes_only_itself() {
    let item = |id, vector: Vec<f32>| GalleryItem {
        id: FileId(id),
        vector,
        path: format!("{id}.png"),
        label: None,
    };
    // 9 and 4 share a vector with 2; 7 is slightly less similar.
    let searcher = ExactSearcher::new(
        Gallery::new(
            2,
            vec![
                item(9, vec![1.0, 1.0]),
                item(2, vec![1.0, 1.0]),
                item(7, vec![1.0, 0.9]),
                item(4, vec![2.0, 2.0]),
            ],
        )
        .unwrap(),
    );
    let ids = |hits: &[repr_search::Hit]| hits.iter().map(|h| h.id.0).collect::<Vec<_>>();
    let hits = searcher.search(&[3.0, 3.0], 4, &Filter::default()).unwrap();
    assert_eq!(ids(&hits[0]), [2, 4, 9, 7]);
    assert_eq!(hits[0][0].score, hits[0][2].score);
    let hits = searcher
        .search_id(FileId(4), 3, &Filter::default())
        .unwrap();
    assert_eq!(ids(&hits), [2, 9, 7]);
    assert!(matches!(
        searcher.search_id(FileId(5), 1, &Filter::default()),
        Err(SearchError::UnknownId { id: FileId(5) })
    ));
}

#[test]
fn bad_queries_are_named_errors_and_k_zero_is_empty() {
    let searcher = ExactSearcher::new(Gallery::new(3, items(10, 3)).unwrap());
    let filter = Filter::default();
    for (queries, message) in [
        (vec![1.0, 2.0], "not a whole number"),
        (vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "query 1 is zero"),
        (vec![1.0, f32::NAN, 0.0], "query 0 holds NaN"),
    ] {
        let err = searcher.search(&queries, 1, &filter).unwrap_err();
        assert!(
            matches!(&err, SearchError::InvalidInput { field, .. } if field == "queries")
                && err.to_string().contains(message),
            "{err}"
        );
    }
    assert_eq!(
        searcher.search(&[1.0, 0.0, 0.0], 0, &filter).unwrap(),
        vec![vec![]]
    );
    let empty = ExactSearcher::new(Gallery::new(3, Vec::new()).unwrap());
    assert_eq!(
        empty.search(&[1.0, 0.0, 0.0], 3, &filter).unwrap(),
        vec![vec![]]
    );
}

/// An index of PNGs in labelled folders: each stored vector is the f64 reference of its
/// image, and searching by id with each filter returns the naive kNN over those references.
fn search_over_an_index_equals_naive_knn(device: &Device) {
    let photos = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for (i, folder) in ["cats", "cats/old", "dogs", "", "birds", "dogs/new"]
        .iter()
        .cycle()
        .take(18)
        .enumerate()
    {
        let path = if folder.is_empty() {
            format!("p{i}.png")
        } else {
            format!("{folder}/p{i}.png")
        };
        write_png(photos.path(), &path, i as u64, 0);
        seeds.push((path, i as u64));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    let options = UpdateOptions {
        batch_size: 5,
        ..UpdateOptions::default()
    };
    let report = index.update(&options, device, features, |_| {}).unwrap();
    assert_eq!((report.added.len(), report.embedded), (18, 18));

    let entries = index.entries().unwrap();
    let reference: Vec<(FileId, Vec<f64>)> = entries
        .iter()
        .map(|e| {
            let seed = seeds.iter().find(|(p, _)| *p == e.path).unwrap().1;
            (e.id, reference_vector(seed))
        })
        .collect();
    let searcher = index.searcher().unwrap();
    let gallery = searcher.gallery();
    for (id, expected) in &reference {
        let stored = gallery.vector(gallery.position(*id).unwrap());
        for (s, e) in stored.iter().zip(expected) {
            assert!(
                (f64::from(*s) - e).abs() < 1e-5,
                "vector of {id}: {stored:?} vs {expected:?}"
            );
        }
    }

    let excluded: BTreeSet<FileId> = entries.iter().step_by(4).map(|e| e.id).collect();
    let filters = [
        Filter::default(),
        Filter::default().excluding(excluded.iter().copied()),
        Filter::default().with_labels(["cats", "birds"]),
        Filter::default().in_folder("dogs/new"),
    ];
    for filter in &filters {
        for entry in &entries {
            let hits = searcher.search_id(entry.id, 4, filter).unwrap();
            let query = &reference.iter().find(|r| r.0 == entry.id).unwrap().1;
            let admits = |id: FileId| {
                let e = entries.iter().find(|e| e.id == id).unwrap();
                id != entry.id && filter.admits(id, &e.path, e.label.as_deref())
            };
            let expected = naive_knn(&reference, query, 4, admits);
            assert_same_hits(&hits, &expected, &format!("{filter:?}, {}", entry.path));
        }
    }
}

/// A query image embedded by `embed_images` gets the vector the index stored for the same
/// file, so searching with it finds that file first with score 1.
fn query_images_are_embedded_as_indexed_files(device: &Device) {
    let photos = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write_png(photos.path(), &format!("f{i}.png"), i, 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    index
        .update(&UpdateOptions::default(), device, features, |_| {})
        .unwrap();
    let preprocess = &index.identity().preprocess;
    let queries = [photos.path().join("f3.png"), photos.path().join("f1.png")];
    let vectors = embed_images(&queries, preprocess, 1 << 20, 1, device, features).unwrap();
    assert_eq!(vectors.len(), 2 * common::DIM);
    let hits = index
        .searcher()
        .unwrap()
        .search(&vectors, 1, &Filter::default())
        .unwrap();
    for (hits, name) in hits.iter().zip(["f3.png", "f1.png"]) {
        let entry = index
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.id == hits[0].id)
            .unwrap();
        assert_eq!(entry.path, name);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
    }

    fs::write(photos.path().join("bad.png"), b"no image").unwrap();
    let err = embed_images(
        &[photos.path().join("bad.png")],
        preprocess,
        1 << 20,
        1,
        device,
        features,
    )
    .unwrap_err();
    assert!(matches!(err, SearchError::Image(_)), "{err}");
    let too_short = |x: burn::tensor::Tensor<4>| features(x).narrow(1, 0, 4);
    let err = index.update(&UpdateOptions::default(), device, too_short, |_| {});
    assert!(
        err.is_ok(),
        "nothing new to embed: the encoder is not called"
    );
    write_png(photos.path(), "new.png", 9, 0);
    let err = index
        .update(&UpdateOptions::default(), device, too_short, |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::EncoderShape { images: 1, dim: 9, found } if found == &[1, 4]),
        "{err}"
    );
}

repr_testing::backend_tests!(
    search_over_an_index_equals_naive_knn,
    query_images_are_embedded_as_indexed_files
);
