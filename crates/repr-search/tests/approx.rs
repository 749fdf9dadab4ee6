//! Approximate search against exact search: recall@10 on random and clustered vectors,
//! filters never violated, save and load, and the graph an index keeps on disk.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use common::{features, identity, write_png};
use repr_search::{
    ApproxConfig, ApproxSearcher, ExactSearcher, FileId, Filter, Gallery, GalleryItem, Hit, Index,
    SearchError, SearchKind, Searcher, UpdateOptions,
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

/// Gallery items with the given vectors; ids spaced out (so they are not positions), labels
/// and sub-folders cycling.
fn items(vectors: Vec<Vec<f32>>) -> Vec<GalleryItem> {
    vectors
        .into_iter()
        .enumerate()
        .map(|(i, vector)| {
            let label = LABELS[i % 4];
            let name = format!("sub{}/x{i}.png", i % 3);
            GalleryItem {
                id: FileId(3 * i as u64 + 1),
                vector,
                path: label.map_or(name.clone(), |l| format!("{l}/{name}")),
                label: label.map(String::from),
            }
        })
        .collect()
}

/// `n` vectors with uniform components (seeded by `salt`).
fn random(n: usize, dim: usize, salt: u64) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| (0..dim).map(|j| value(i * dim + j, salt)).collect())
        .collect()
}

/// `n` vectors around `clusters` centres (a mixture, as learned embeddings are).
fn clustered(n: usize, dim: usize, clusters: usize, salt: u64) -> Vec<Vec<f32>> {
    let centres = random(clusters, dim, 99);
    (0..n)
        .map(|i| {
            let centre = &centres[(value(i, salt + 1).abs() * clusters as f32) as usize % clusters];
            (0..dim)
                .map(|j| centre[j] + 0.3 * value(i * dim + j, salt))
                .collect()
        })
        .collect()
}

/// The fraction of the exact hits the approximate ones found.
fn recall(approx: &[Vec<Hit>], exact: &[Vec<Hit>]) -> f64 {
    let (mut found, mut total) = (0, 0);
    for (a, e) in approx.iter().zip(exact) {
        let ids: BTreeSet<FileId> = a.iter().map(|h| h.id).collect();
        found += e.iter().filter(|h| ids.contains(&h.id)).count();
        total += e.len();
    }
    found as f64 / total as f64
}

/// Every approximate hit that exact search also returned carries the same score, and hits
/// are sorted by decreasing score.
fn assert_exact_scores(approx: &[Vec<Hit>], exact: &[Vec<Hit>]) {
    for (a, e) in approx.iter().zip(exact) {
        for hit in a {
            if let Some(same) = e.iter().find(|h| h.id == hit.id) {
                assert!((hit.score - same.score).abs() < 1e-5, "{hit:?} vs {same:?}");
            }
        }
        assert!(a.windows(2).all(|w| w[0].score >= w[1].score), "{a:?}");
    }
}

fn flat(vectors: &[Vec<f32>]) -> Vec<f32> {
    vectors.concat()
}

fn recall_at_10(vectors: Vec<Vec<f32>>, queries: &[Vec<f32>]) -> f64 {
    let gallery = Gallery::new(vectors[0].len(), items(vectors)).unwrap();
    let exact = ExactSearcher::new(gallery.clone());
    let approx = ApproxSearcher::build(gallery, &ApproxConfig::default()).unwrap();
    let queries = flat(queries);
    let expected = exact.search(&queries, 10, &Filter::default()).unwrap();
    let found = approx.search(&queries, 10, &Filter::default()).unwrap();
    assert!(found.iter().all(|hits| hits.len() == 10));
    assert_exact_scores(&found, &expected);
    recall(&found, &expected)
}

#[test]
fn recall_at_10_on_random_vectors() {
    let recall = recall_at_10(random(4000, 32, 1), &random(200, 32, 2));
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn recall_at_10_on_clustered_vectors() {
    let recall = recall_at_10(clustered(4000, 64, 40, 1), &clustered(200, 64, 40, 2));
    assert!(recall >= 0.95, "recall@10 {recall}");
}

/// Filters through the graph (`exact_below` 0), through the exact fallback (a sparse
/// folder, a single item), and combined: never an item refused, always `k` hits when `k`
/// are admitted, near-exact results.
#[test]
fn filters_are_never_violated_and_k_hits_are_returned() {
    let vectors = clustered(3000, 32, 30, 3);
    let gallery = Gallery::new(32, items(vectors)).unwrap();
    let exact = ExactSearcher::new(gallery.clone());
    let config = ApproxConfig {
        exact_below: 0,
        ..ApproxConfig::default()
    };
    let approx = ApproxSearcher::build(gallery.clone(), &config).unwrap();
    let queries = flat(&clustered(60, 32, 30, 4));
    // The stop-list holds the exact top 5 of every query: the graph must look past them.
    let top = exact.search(&queries, 5, &Filter::default()).unwrap();
    let stop: BTreeSet<FileId> = top.iter().flatten().map(|h| h.id).collect();
    let one = gallery.ids()[17];
    let filters = [
        (
            "stop-list",
            Filter::default().excluding(stop.iter().copied()),
        ),
        ("labels", Filter::default().with_labels(["a", "c"])),
        ("folder", Filter::default().in_folder("b/sub1")),
        (
            "labels, folder and stop-list",
            Filter::default()
                .with_labels(["b"])
                .in_folder("b/sub0")
                .excluding(stop.iter().copied()),
        ),
        (
            "one item",
            Filter::default().excluding(gallery.ids().iter().copied().filter(|&id| id != one)),
        ),
        ("nothing", Filter::default().with_labels(["z"])),
    ];
    for (what, filter) in &filters {
        let admitted: BTreeSet<FileId> = (0..gallery.len())
            .filter(|&i| filter.admits(gallery.ids()[i], gallery.path(i), gallery.label(i)))
            .map(|i| gallery.ids()[i])
            .collect();
        let expected = exact.search(&queries, 10, filter).unwrap();
        let found = approx.search(&queries, 10, filter).unwrap();
        for hits in &found {
            assert_eq!(hits.len(), admitted.len().min(10), "{what}");
            assert!(
                hits.iter().all(|h| admitted.contains(&h.id)),
                "{what}: {hits:?}"
            );
        }
        assert_exact_scores(&found, &expected);
        let recall = recall(&found, &expected);
        assert!(
            admitted.is_empty() || recall >= 0.95,
            "{what}: recall@10 {recall}"
        );
    }
    // By id: never the item itself, and the default exact fallback for small filters.
    let default = ApproxSearcher::build(gallery.clone(), &ApproxConfig::default()).unwrap();
    for searcher in [&approx, &default] {
        for &id in gallery.ids().iter().step_by(97) {
            let hits = searcher.search_id(id, 10, &Filter::default()).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| h.id != id));
        }
    }
}

#[test]
fn saved_graphs_load_faster_than_they_build_and_search_the_same() {
    let vectors = clustered(4000, 48, 40, 5);
    let gallery = Gallery::new(48, items(vectors)).unwrap();
    let config = ApproxConfig::default();
    let start = Instant::now();
    let built = ApproxSearcher::build(gallery.clone(), &config).unwrap();
    let build_time = start.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.usearch");
    built.save(&path).unwrap();
    let start = Instant::now();
    let loaded = ApproxSearcher::load(gallery.clone(), &path, &config).unwrap();
    let load_time = start.elapsed();
    assert!(
        load_time * 5 < build_time,
        "load {load_time:?}, build {build_time:?}"
    );
    let queries = flat(&clustered(50, 48, 40, 6));
    for filter in [Filter::default(), Filter::default().with_labels(["a", "b"])] {
        assert_eq!(
            built.search(&queries, 10, &filter).unwrap(),
            loaded.search(&queries, 10, &filter).unwrap()
        );
    }

    // A graph of another gallery is refused, naming the file.
    let smaller = Gallery::new(48, items(clustered(10, 48, 4, 7))).unwrap();
    let err = ApproxSearcher::load(smaller, &path, &config).unwrap_err();
    assert!(matches!(err, SearchError::Graph { .. }), "{err}");
    assert!(err.to_string().contains("graph.usearch"), "{err}");
    let err = ApproxSearcher::build(
        gallery,
        &ApproxConfig {
            connectivity: 0,
            ..config
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("approx.connectivity"), "{err}");
}

/// The graph files in `dir`, by name.
fn graph_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("approx-"))
        .collect();
    names.sort();
    names
}

fn graph_path(dir: &Path) -> PathBuf {
    let name = graph_files(dir)
        .into_iter()
        .find(|n| n.ends_with(".usearch"))
        .expect("a graph file");
    dir.join(name)
}

/// Asserts the same ids in the same order, with scores within 1e-5 (exact search sums in
/// another order).
fn assert_same(found: &[Vec<Hit>], expected: &[Vec<Hit>]) {
    assert_eq!(found.len(), expected.len());
    for (f, e) in found.iter().zip(expected) {
        let ids = |hits: &[Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(f), ids(e));
        assert!(
            f.iter()
                .zip(e)
                .all(|(a, b)| (a.score - b.score).abs() < 1e-5),
            "{f:?} {e:?}"
        );
    }
}

/// The k nearest of every item, by id, through `searcher`.
fn neighbours(searcher: &impl Searcher) -> Vec<Vec<Hit>> {
    let ids = searcher.gallery().ids().to_vec();
    ids.iter()
        .map(|&id| searcher.search_id(id, 3, &Filter::default()).unwrap())
        .collect()
}

#[test]
fn an_index_keeps_its_graph_and_rebuilds_it_when_the_index_changes() {
    let device = Device::flex();
    let photos = tempfile::tempdir().unwrap();
    for i in 0..24 {
        write_png(photos.path(), &format!("f{}/p{i}.png", i % 3), i, 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    index
        .update(&UpdateOptions::default(), &device, features, |_| {})
        .unwrap();
    let config = ApproxConfig {
        exact_below: 0,
        ..ApproxConfig::default()
    };
    let first = index.approx_searcher(&config).unwrap();
    let exact = index.searcher().unwrap();
    assert_same(&neighbours(&first), &neighbours(&exact));
    let graph = graph_path(dir.path());
    let saved = fs::read(&graph).unwrap();

    // Opened again: the saved graph is loaded, not rebuilt (a rebuild would rewrite it).
    fs::write(&graph, &saved).unwrap();
    let modified = fs::metadata(&graph).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = index.approx_searcher(&config).unwrap();
    assert_eq!(fs::metadata(&graph).unwrap().modified().unwrap(), modified);
    assert_eq!(neighbours(&again), neighbours(&first));

    // A damaged graph file is rebuilt, not trusted.
    fs::write(&graph, &saved[..saved.len() / 2]).unwrap();
    let repaired = index.approx_searcher(&config).unwrap();
    assert_eq!(fs::read(&graph).unwrap().len(), saved.len());
    assert_same(&neighbours(&repaired), &neighbours(&exact));

    // A file removed: no new vector row, but another gallery; the graph is rebuilt.
    let removed = index
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.path == "f1/p4.png")
        .unwrap()
        .id;
    fs::remove_file(photos.path().join("f1/p4.png")).unwrap();
    index
        .update(&UpdateOptions::default(), &device, features, |_| {})
        .unwrap();
    assert_eq!(graph_path(dir.path()), graph);
    let after_removal = index.approx_searcher(&config).unwrap();
    assert_eq!(after_removal.gallery().len(), 23);
    let found = neighbours(&after_removal);
    assert!(found.iter().flatten().all(|h| h.id != removed));
    assert_same(&found, &neighbours(&index.searcher().unwrap()));

    // A file added: a new state, a new graph file, the old one deleted.
    let old_files = graph_files(dir.path());
    write_png(photos.path(), "f0/new.png", 100, 0);
    index
        .update(&UpdateOptions::default(), &device, features, |_| {})
        .unwrap();
    let after_addition = index.approx_searcher(&config).unwrap();
    let new_files = graph_files(dir.path());
    assert_eq!(new_files.len(), 2, "{new_files:?}");
    assert!(
        new_files.iter().all(|n| !old_files.contains(n)),
        "{new_files:?}"
    );
    assert_eq!(after_addition.gallery().len(), 24);
    assert_same(
        &neighbours(&after_addition),
        &neighbours(&index.searcher().unwrap()),
    );

    // The automatic choice: exact at this size; approximate when asked.
    assert_eq!(index.searcher_auto().unwrap().kind(), SearchKind::Exact);
    let chosen = index.searcher_of(SearchKind::Approx, &config).unwrap();
    assert_eq!(chosen.kind(), SearchKind::Approx);
}
