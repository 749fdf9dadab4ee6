//! Reading an index while another handle updates it: no lock, nothing written, every snapshot
//! consistent, changes detected.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use burn::tensor::Device;
use common::{features, identity, reference_vector, write_png};
use repr_search::{Index, IndexSnapshot, SearchError, UpdateOptions};

/// The files of `dir` with their contents, but for SQLite's coordination files of a WAL
/// database (`-wal`, `-shm`), which readers share with writers.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), e.path()))
        .filter(|(name, _)| !name.ends_with("-wal") && !name.ends_with("-shm"))
        .map(|(name, path)| (name, fs::read(path).unwrap()))
        .collect()
}

/// The names of the files in `dir`.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Image `seed` is written as `s<seed>.png`: a snapshot can tell which vector each file must
/// have.
fn seed_of(path: &str) -> u64 {
    path.trim_start_matches("s")
        .trim_end_matches(".png")
        .parse()
        .unwrap()
}

/// Every file of the snapshot has the vector of its own image.
fn assert_consistent(snapshot: &IndexSnapshot) {
    let gallery = &snapshot.gallery;
    assert_eq!(gallery.len(), snapshot.entries.len());
    for (i, entry) in snapshot.entries.iter().enumerate() {
        assert_eq!(gallery.ids()[i], entry.id);
        assert_eq!(gallery.path(i), entry.path);
        let expected = reference_vector(seed_of(&entry.path));
        for (got, want) in gallery.vector(i).iter().zip(&expected) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-5,
                "{}: vector of another file",
                entry.path
            );
        }
    }
}

fn options() -> UpdateOptions {
    UpdateOptions {
        batch_size: 1, // a commit per file: many states for the reader to land in
        ..UpdateOptions::default()
    }
}

#[test]
fn a_reader_takes_no_lock_and_changes_nothing() {
    let photos = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..3 {
        write_png(photos.path(), &format!("s{seed}.png"), seed, seed);
    }
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    index
        .update(&options(), &Device::flex(), features, |_| {})
        .unwrap();
    drop(index);
    let (before, files_before) = (contents(dir.path()), names(dir.path()));

    // Alone, a reader leaves the index as it found it.
    let reader = Index::open_read_only(dir.path()).unwrap();
    let snapshot = reader.snapshot().unwrap();
    assert_eq!(snapshot.entries.len(), 3);
    assert_consistent(&snapshot);
    assert_eq!(reader.identity(), &identity());
    drop(reader);
    assert_eq!(contents(dir.path()), before, "the reader changed the index");
    // Only SQLite's coordination files of a WAL database may appear: every reader uses them.
    let sqlite = BTreeSet::from(["index.sqlite-shm".to_string(), "index.sqlite-wal".into()]);
    let new: BTreeSet<String> = &names(dir.path()) - &files_before;
    assert!(new.is_subset(&sqlite), "{new:?}");

    // Beside a writer that opens after it, it goes on reading; the writer's open (which
    // brings the directory to its committed state) is all that may change.
    let reader = Index::open_read_only(dir.path()).unwrap();
    let index = Index::open(dir.path()).unwrap();
    assert!(Index::open_read_only(dir.path()).is_ok());
    assert_eq!(reader.snapshot().unwrap().entries.len(), 3);
    drop((index, reader));
    assert_eq!(contents(dir.path()), before, "the index changed");

    let foreign = tempfile::tempdir().unwrap();
    fs::write(foreign.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        Index::open_read_only(foreign.path()),
        Err(SearchError::NotAnIndex { .. })
    ));
}

#[test]
fn snapshots_stay_consistent_while_a_writer_adds_removes_and_compacts() {
    let photos = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..4 {
        write_png(photos.path(), &format!("s{seed}.png"), seed, 0);
    }
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    index
        .update(&options(), &Device::flex(), features, |_| {})
        .unwrap();
    let reader = Index::open_read_only(dir.path()).unwrap();
    let done = AtomicBool::new(false);
    let (snapshots, reader) = thread::scope(|scope| {
        let done = &done;
        let readers = scope.spawn(move || {
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                assert_consistent(&reader.snapshot().unwrap());
                seen += 1;
            }
            (seen, reader)
        });
        for round in 1..=6u64 {
            // Every file replaced by new ones (one more each round), each committed on its
            // own, then the vectors file rewritten as a new generation.
            for file in fs::read_dir(photos.path()).unwrap() {
                fs::remove_file(file.unwrap().path()).unwrap();
            }
            for j in 0..4 + round {
                let seed = 100 * round + j;
                write_png(photos.path(), &format!("s{seed}.png"), seed, round);
            }
            index
                .update(&options(), &Device::flex(), features, |_| {})
                .unwrap();
            index.compact().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        readers.join().unwrap()
    });
    assert!(snapshots >= 10, "only {snapshots} snapshots taken");
    let last = reader.snapshot().unwrap();
    assert_consistent(&last);
    assert_eq!(last.entries.len(), 10);
}

#[test]
fn the_version_changes_with_each_commit_only() {
    let photos = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_png(photos.path(), "s1.png", 1, 0);
    let mut index = Index::open_or_create(dir.path(), photos.path(), &identity()).unwrap();
    let reader = Index::open_read_only(dir.path()).unwrap();
    let empty = reader.snapshot().unwrap();
    assert!(empty.entries.is_empty() && empty.gallery.is_empty());
    assert_eq!(reader.version().unwrap(), empty.version());

    index
        .update(&options(), &Device::flex(), features, |_| {})
        .unwrap();
    assert_ne!(reader.version().unwrap(), empty.version());
    let one = reader.snapshot().unwrap();
    assert_eq!(one.entries.len(), 1);
    assert_eq!(reader.version().unwrap(), one.version());
    // Reading again, or opening another reader, changes nothing.
    let _ = reader.snapshot().unwrap();
    let _ = Index::open_read_only(dir.path())
        .unwrap()
        .snapshot()
        .unwrap();
    assert_eq!(reader.version().unwrap(), one.version());

    write_png(photos.path(), "s2.png", 2, 0);
    index
        .update(&options(), &Device::flex(), features, |_| {})
        .unwrap();
    assert_ne!(reader.version().unwrap(), one.version());
    assert_eq!(reader.snapshot().unwrap().entries.len(), 2);
}
