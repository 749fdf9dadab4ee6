//! The index on disk: incremental updates, interruption at any batch, unreadable files,
//! model identity, folders that are not indexes, compaction.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use burn::tensor::{Device, Tensor};
use common::{DIM, features, identity, set_mtime, write_png};
use repr_search::{
    FileId, Filter, Hit, Index, ModelIdentity, Progress, SearchError, Searcher, UpdateOptions,
    UpdateReport,
};

fn options(batch_size: usize) -> UpdateOptions {
    UpdateOptions {
        batch_size,
        ..UpdateOptions::default()
    }
}

/// Runs an update with [`features`], returning the report and the number of images the
/// encoder saw.
fn update(index: &mut Index, options: &UpdateOptions, device: &Device) -> (UpdateReport, usize) {
    let mut seen = 0;
    let report = index
        .update(
            options,
            device,
            |x: Tensor<4>| {
                seen += x.dims()[0];
                features(x)
            },
            |_| {},
        )
        .unwrap();
    (report, seen)
}

fn id_of(index: &Index, path: &str) -> FileId {
    index
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} is not indexed"))
        .id
}

fn paths(index: &Index) -> Vec<String> {
    let mut paths: Vec<String> = index
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    paths.sort();
    paths
}

/// Every file's 3 nearest neighbours, for comparing two states of an index.
fn all_neighbours(index: &Index) -> Vec<(FileId, Vec<Hit>)> {
    let searcher = index.searcher().unwrap();
    searcher
        .gallery()
        .ids()
        .iter()
        .map(|&id| (id, searcher.search_id(id, 3, &Filter::default()).unwrap()))
        .collect()
}

fn vectors_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("vectors-"))
        .collect();
    names.sort();
    names
}

fn incremental_updates_embed_only_what_changed(device: &Device) {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path();
    for (i, path) in ["a/1.png", "a/2.png", "b/3.png", "top.png"]
        .iter()
        .enumerate()
    {
        write_png(root, path, i as u64, 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), root, &identity()).unwrap();
    let mut progress = Vec::new();
    let report = index
        .update(&options(3), device, features, |p| progress.push(p))
        .unwrap();
    assert_eq!(report.added, ["a/1.png", "a/2.png", "b/3.png", "top.png"]);
    assert_eq!(report.embedded, 4);
    assert_eq!(
        progress,
        [(0, 4), (3, 4), (4, 4)].map(|(done, total)| Progress { done, total })
    );
    let labels: Vec<(String, Option<String>)> = index
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.label))
        .collect();
    assert_eq!(
        labels,
        [
            ("a/1.png".into(), Some("a".into())),
            ("a/2.png".into(), Some("a".into())),
            ("b/3.png".into(), Some("b".into())),
            ("top.png".into(), None),
        ]
    );

    // New files: only they are embedded.
    write_png(root, "c/4.png", 4, 0);
    write_png(root, "a/5.png", 5, 0);
    let (report, seen) = update(&mut index, &options(3), device);
    assert_eq!(
        (report.added.clone(), seen, report.unchanged),
        (vec!["a/5.png".into(), "c/4.png".into()], 2, 4)
    );

    // New content: re-embedded under the same id, with the new content's vector.
    let id = id_of(&index, "a/1.png");
    let before = index
        .searcher()
        .unwrap()
        .search_id(id, 5, &Filter::default())
        .unwrap();
    write_png(root, "a/1.png", 100, 10);
    let (report, seen) = update(&mut index, &options(3), device);
    assert_eq!(
        (report.changed.clone(), seen, report.unchanged),
        (vec!["a/1.png".into()], 1, 5)
    );
    assert_eq!(id_of(&index, "a/1.png"), id);
    let after = index
        .searcher()
        .unwrap()
        .search_id(id, 5, &Filter::default())
        .unwrap();
    assert_ne!(before, after);

    // Touched, same content: not embedded, only its time recorded.
    set_mtime(&root.join("b/3.png"), 20);
    let (report, seen) = update(&mut index, &options(3), device);
    assert_eq!((seen, report.unchanged), (0, 6));
    assert!(report.changed.is_empty() && report.added.is_empty());
    let touched = index
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.path == "b/3.png")
        .unwrap();
    assert_eq!(touched.mtime_ns, (1_577_836_800 + 20) * 1_000_000_000);
    let (_, seen) = update(&mut index, &options(3), device);
    assert_eq!(seen, 0, "the new time was recorded");

    // Deleted: gone from the index and from results.
    let gone = id_of(&index, "top.png");
    fs::remove_file(root.join("top.png")).unwrap();
    let (report, seen) = update(&mut index, &options(3), device);
    assert_eq!((report.removed.clone(), seen), (vec!["top.png".into()], 0));
    let searcher = index.searcher().unwrap();
    assert_eq!(searcher.gallery().position(gone), None);
    for id in searcher.gallery().ids() {
        let hits = searcher.search_id(*id, 10, &Filter::default()).unwrap();
        assert_eq!(hits.len(), 4);
        assert!(hits.iter().all(|h| h.id != gone));
    }

    // A copy of indexed content takes its vector without being embedded.
    fs::copy(root.join("a/2.png"), root.join("b/copy.png")).unwrap();
    let (report, seen) = update(&mut index, &options(3), device);
    assert_eq!(
        (report.added.clone(), seen, report.embedded),
        (vec!["b/copy.png".into()], 0, 0)
    );
    let hits = index
        .searcher()
        .unwrap()
        .search_id(id_of(&index, "b/copy.png"), 1, &Filter::default())
        .unwrap();
    assert_eq!(hits[0].id, id_of(&index, "a/2.png"));
    assert!((hits[0].score - 1.0).abs() < 1e-6);
}

/// The encoder panics at batch `fail_at` (batches of 2 over 9 files): the index reopens with
/// the batches before it, a garbage tail on the vectors file (an append that was never
/// committed) and a stale vectors file are cleaned away, searching works, and the next update
/// embeds exactly the files that were missing.
fn an_update_killed_at_any_batch_loses_only_that_batch(device: &Device) {
    for fail_at in [1, 3, 5] {
        let photos = tempfile::tempdir().unwrap();
        for i in 0..9 {
            write_png(photos.path(), &format!("f{i}.png"), i, 0);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
        let mut batches = 0;
        let result = catch_unwind(AssertUnwindSafe(|| {
            index.update(
                &options(2),
                device,
                |x: Tensor<4>| {
                    batches += 1;
                    assert!(batches != fail_at, "killed at batch {fail_at}");
                    features(x)
                },
                |_| {},
            )
        }));
        assert!(result.is_err());
        drop(index);
        let committed = 2 * (fail_at - 1);
        let vectors = dir.path().join("vectors-0.f32");
        let row_bytes = (DIM * 4) as u64;
        assert_eq!(
            fs::metadata(&vectors).unwrap().len(),
            committed as u64 * row_bytes
        );
        // Two rows and a half of an append that never committed, and a stale generation.
        let mut garbage = fs::read(&vectors).unwrap();
        garbage.extend(std::iter::repeat_n(0x7f, 2 * row_bytes as usize + 13));
        fs::write(&vectors, garbage).unwrap();
        fs::write(dir.path().join("vectors-7.f32"), b"stale").unwrap();

        let mut index = Index::open(dir.path()).unwrap();
        assert_eq!(index.len().unwrap(), committed);
        assert_eq!(
            fs::metadata(&vectors).unwrap().len(),
            committed as u64 * row_bytes
        );
        assert_eq!(vectors_files(dir.path()), ["vectors-0.f32"]);
        let searcher = index.searcher().unwrap();
        for &id in searcher.gallery().ids() {
            let hits = searcher.search_id(id, 20, &Filter::default()).unwrap();
            assert_eq!(hits.len(), committed - 1);
            assert!(hits.iter().all(|h| h.score.is_finite()));
        }
        let (report, seen) = update(&mut index, &options(2), device);
        assert_eq!(
            (seen, report.added.len(), report.unchanged),
            (9 - committed, 9 - committed, committed)
        );
        assert_eq!(index.len().unwrap(), 9);
        assert_eq!(index.dead_rows().unwrap(), 0);
    }
}

fn unreadable_files_are_listed_skipped_and_retried_once_changed(device: &Device) {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path();
    write_png(root, "good.png", 1, 0);
    fs::write(root.join("bad.png"), b"not a png at all").unwrap();
    set_mtime(&root.join("bad.png"), 0);
    write_png(root, "cut.png", 2, 0);
    let bytes = fs::read(root.join("cut.png")).unwrap();
    fs::write(root.join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), root, &identity()).unwrap();
    let (report, seen) = update(&mut index, &options(8), device);
    assert_eq!((report.added.clone(), seen), (vec!["good.png".into()], 1));
    let failed: Vec<&str> = report.failed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(failed, ["bad.png", "cut.png"]);
    assert!(
        report.failed.iter().all(|f| f.reason.contains("decode")),
        "{:?}",
        report.failed
    );
    assert_eq!(index.failures().unwrap(), report.failed);

    // Unchanged: reported, not retried.
    let (report, seen) = update(&mut index, &options(8), device);
    assert_eq!(
        (seen, report.failed.len(), report.known_failures.len()),
        (0, 0, 2)
    );

    // Repaired: indexed, no longer a failure; deleted: forgotten.
    write_png(root, "bad.png", 3, 5);
    fs::remove_file(root.join("cut.png")).unwrap();
    let (report, seen) = update(&mut index, &options(8), device);
    assert_eq!((report.added.clone(), seen), (vec!["bad.png".into()], 1));
    assert!(report.known_failures.is_empty() && index.failures().unwrap().is_empty());

    // An indexed file that turns corrupt leaves the index and becomes a failure.
    fs::write(root.join("good.png"), b"broken now").unwrap();
    set_mtime(&root.join("good.png"), 9);
    let (report, _) = update(&mut index, &options(8), device);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(paths(&index), ["bad.png"]);
}

fn non_finite_output_names_the_files_and_commits_nothing(device: &Device) {
    let photos = tempfile::tempdir().unwrap();
    write_png(photos.path(), "x.png", 1, 0);
    write_png(photos.path(), "y.png", 2, 0);
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    // NaN for the second image of the batch only.
    let nan_second = |x: Tensor<4>| {
        let f = features(x);
        let mask = Tensor::<2>::from_floats([[1.0; DIM], [f32::NAN; DIM]], &f.device());
        f * mask
    };
    let err = index
        .update(&options(2), device, nan_second, |_| {})
        .unwrap_err();
    match &err {
        SearchError::NonFinite { paths } => {
            assert_eq!(paths.len(), 1);
            assert!(paths[0].ends_with("y.png"), "{err}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(index.len().unwrap(), 0);
    let (report, seen) = update(&mut index, &options(2), device);
    assert_eq!((report.added.len(), seen), (2, 2));
}

repr_testing::backend_tests!(
    incremental_updates_embed_only_what_changed,
    an_update_killed_at_any_batch_loses_only_that_batch,
    unreadable_files_are_listed_skipped_and_retried_once_changed,
    non_finite_output_names_the_files_and_commits_nothing,
);

#[test]
fn another_model_dimension_preprocessing_or_folder_is_refused() {
    let photos = tempfile::tempdir().unwrap();
    write_png(photos.path(), "x.png", 1, 0);
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    update(&mut index, &options(4), &repr_testing::flex());
    drop(index);
    let mut other_preprocess = identity();
    other_preprocess.preprocess.normalize.mean[1] = 0.5;
    for (field, other) in [
        (
            "model",
            ModelIdentity {
                model: "other weights".into(),
                ..identity()
            },
        ),
        (
            "dim",
            ModelIdentity {
                dim: DIM + 1,
                ..identity()
            },
        ),
        ("preprocess", other_preprocess),
    ] {
        let err = Index::open_or_create(dir.path(), photos.path(), &other).unwrap_err();
        assert!(
            matches!(&err, SearchError::IdentityMismatch { field: f, .. } if *f == field),
            "{field}: {err}"
        );
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let err = Index::open_or_create(dir.path(), elsewhere.path(), &identity()).unwrap_err();
    assert!(matches!(err, SearchError::RootMismatch { .. }), "{err}");
    // Untouched by the refusals.
    let index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    assert_eq!(paths(&index), ["x.png"]);
    assert_eq!(index.identity(), &identity());
}

#[test]
fn a_folder_that_is_not_an_index_is_refused_and_untouched() {
    let photos = tempfile::tempdir().unwrap();
    let listing = |dir: &Path| {
        let mut entries: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        entries.sort();
        entries
    };
    let user = tempfile::tempdir().unwrap();
    fs::write(user.path().join("notes.txt"), b"mine").unwrap();
    let foreign_db = tempfile::tempdir().unwrap();
    fs::write(foreign_db.path().join("index.sqlite"), vec![7u8; 4096]).unwrap();
    for dir in [user.path(), foreign_db.path()] {
        let before = listing(dir);
        let err = Index::open_or_create(dir, photos.path(), &identity()).unwrap_err();
        assert!(matches!(err, SearchError::NotAnIndex { .. }), "{err}");
        let err = Index::open(dir).unwrap_err();
        assert!(matches!(err, SearchError::NotAnIndex { .. }), "{err}");
        assert_eq!(listing(dir), before);
    }
    // Opening (not creating) never makes an index of an empty or missing directory.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Index::open(empty.path()),
        Err(SearchError::NotAnIndex { .. })
    ));
    assert!(listing(empty.path()).is_empty());
    let missing = empty.path().join("missing");
    assert!(matches!(
        Index::open(&missing),
        Err(SearchError::NotAnIndex { .. })
    ));
    assert!(!missing.exists());
}

#[test]
fn one_handle_at_a_time() {
    let photos = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    assert!(matches!(
        Index::open(dir.path()),
        Err(SearchError::Locked { .. })
    ));
    drop(index);
    Index::open(dir.path()).unwrap();
}

#[test]
fn compaction_keeps_every_result_and_drops_dead_rows() {
    let device = repr_testing::flex();
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path();
    for i in 0..10 {
        write_png(root, &format!("d{}/f{i}.png", i % 2), i, 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open_or_create(dir.path(), root, &identity()).unwrap();
    let manual = UpdateOptions {
        auto_compact: false,
        ..options(4)
    };
    update(&mut index, &manual, &device);
    for i in 0..6 {
        fs::remove_file(root.join(format!("d{}/f{i}.png", i % 2))).unwrap();
    }
    let (report, _) = update(&mut index, &manual, &device);
    assert_eq!((report.removed.len(), report.compacted), (6, false));
    assert_eq!(index.dead_rows().unwrap(), 6);
    let before = all_neighbours(&index);
    let entries = index.entries().unwrap();

    index.compact().unwrap();
    assert_eq!(index.dead_rows().unwrap(), 0);
    assert_eq!(vectors_files(dir.path()), ["vectors-1.f32"]);
    let size = fs::metadata(dir.path().join("vectors-1.f32"))
        .unwrap()
        .len();
    assert_eq!(size, 4 * DIM as u64 * 4);
    assert_eq!(all_neighbours(&index), before);
    assert_eq!(index.entries().unwrap(), entries);
    drop(index);
    let mut index = Index::open(dir.path()).unwrap();
    assert_eq!(all_neighbours(&index), before);

    // With automatic compaction, an update that leaves most rows dead compacts.
    for i in 6..9 {
        fs::remove_file(root.join(format!("d{}/f{i}.png", i % 2))).unwrap();
    }
    let (report, _) = update(&mut index, &options(4), &device);
    assert!(report.compacted);
    assert_eq!(vectors_files(dir.path()), ["vectors-2.f32"]);
    assert_eq!(paths(&index), ["d1/f9.png"]);
}
