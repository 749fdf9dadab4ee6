//! `xtask index`, `xtask search` and `xtask duplicates` on generated image folders: the index
//! of a trained run finds what its evaluation finds, updates are incremental, copies are found
//! as near-duplicates, bad input is named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::succeed;
use image::GrayImage;
use repr_train::{MethodConfig, TrainConfig};

/// Three classes of 16×16 grey patterns (horizontal stripes, vertical stripes, a
/// checkerboard) with seeded noise, as `<dir>/<split>/<class>/<n>.png`.
fn write_patterns(dir: &Path, per_class: &[(&str, usize)]) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 64) as u8
    };
    for &(split, count) in per_class {
        for (class, name) in ["rows", "columns", "checks"].iter().enumerate() {
            let folder = dir.join(split).join(name);
            std::fs::create_dir_all(&folder).unwrap();
            for n in 0..count {
                let image = GrayImage::from_fn(16, 16, |x, y| {
                    let on = match class {
                        0 => (y / 2) % 2 == 0,
                        1 => (x / 2) % 2 == 0,
                        _ => ((x / 4) + (y / 4)) % 2 == 0,
                    };
                    image::Luma([if on { 180 } else { 20 } + noise()])
                });
                image.save(folder.join(format!("{n:03}.png"))).unwrap();
            }
        }
    }
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short triplet run on the patterns (train split 24 per class, test 8 per class).
fn train_triplet(dir: &Path) -> PathBuf {
    let mut config = TrainConfig::triplet();
    config.data.dir = Some(dir.join("data"));
    config.data.image_size = Some([16, 16]);
    config.data.channels = Some(1);
    config.epochs = 3;
    config.batch_size = 24;
    config.eval_every_epochs = 0;
    config.eval.baselines = false;
    config.eval.plots = false;
    config.eval.knn_k = 5;
    if let MethodConfig::Triplet(triplet) = &mut config.method {
        triplet.classes_per_batch = 3;
        triplet.images_per_class = 8;
        triplet.embedding_dim = 16;
    }
    let repr_backbones::BackboneConfig::ResNet(resnet) = &mut config.backbone else {
        unreachable!("the triplet preset is a ResNet")
    };
    resnet.width = 4;
    let config_path = dir.join("triplet.toml");
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let runs = dir.join("runs");
    succeed(&xtask(&[
        "train",
        "--recipe",
        "triplet",
        "--quiet",
        "--runs-dir",
        path(&runs),
        "--config",
        path(&config_path),
        "--name",
        "t",
    ]));
    runs.join("t")
}

/// The value of `key` anywhere in a JSON document.
fn find_number(value: &serde_json::Value, key: &str) -> Option<f64> {
    match value {
        serde_json::Value::Object(map) => map
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| map.values().find_map(|v| find_number(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_number(v, key)),
        _ => None,
    }
}

/// The percentage after `label` in `text` ("recall@1 87.50%").
fn percent_after(text: &str, label: &str) -> f64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    let rest = &text[at + label.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
}

#[test]
fn the_index_of_a_run_finds_what_its_evaluation_finds() {
    let dir = tempfile::tempdir().unwrap();
    write_patterns(&dir.path().join("data"), &[("train", 24), ("test", 8)]);
    let run = train_triplet(dir.path());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let eval_recall = find_number(&summary, "recall_at_1").expect("recall@1 in summary.json");

    let index = dir.path().join("index");
    let gallery = dir.path().join("data/train");
    let output = xtask(&[
        "index",
        "--run",
        path(&run),
        "--images",
        path(&gallery),
        "--index",
        path(&index),
        "--batch-size",
        "16",
        "--quiet",
    ]);
    succeed(&output);
    assert!(stdout(&output).contains("72 added"), "{}", stdout(&output));

    let picture = dir.path().join("queries.png");
    let output = xtask(&[
        "search",
        "--index",
        path(&index),
        "--query-dir",
        path(&dir.path().join("data/test")),
        "--k",
        "5",
        "--out",
        path(&picture),
    ]);
    succeed(&output);
    let recall = percent_after(&stdout(&output), "recall@1");
    // Same images, same network, same normalisation: the same nearest neighbours.
    assert!(
        (recall - 100.0 * eval_recall).abs() < 0.2,
        "index recall@1 {recall}% vs eval {}%",
        100.0 * eval_recall
    );
    // The first 8 queries (the default --rows), each with its 5 results; 16-pixel images are
    // drawn 6 times larger (thumbnails near 96 pixels).
    let tile = 6 * 16 + 2 * repr_eval::GRID_BORDER;
    let step = tile + repr_eval::GRID_GAP;
    assert_eq!(
        image::image_dimensions(&picture).unwrap(),
        (
            repr_eval::GRID_GAP + 6 * step + repr_eval::GRID_SEPARATOR,
            repr_eval::GRID_GAP + 8 * step
        )
    );
}

#[test]
fn updates_are_incremental_and_bad_files_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    write_patterns(&photos, &[("a", 3)]);
    std::fs::write(photos.join("a/rows/broken.png"), b"not a png at all").unwrap();
    let index = dir.path().join("index");
    let index_args = [
        "index",
        "--index",
        path(&index),
        "--arch",
        "resnet18",
        "--size",
        "32",
        "--batch-size",
        "4",
        "--quiet",
    ];
    let mut first = index_args.to_vec();
    first.extend(["--images", path(&photos)]);
    let output = xtask(&first);
    succeed(&output);
    let text = stdout(&output);
    assert!(
        text.contains("9 added") && text.contains("1 unreadable"),
        "{text}"
    );
    assert!(text.contains("a/rows/broken.png"), "{text}");

    // Nothing changed: nothing embedded.
    let output = xtask(&index_args);
    succeed(&output);
    assert!(
        stdout(&output).contains("0 images embedded"),
        "{}",
        stdout(&output)
    );

    // One new file, one changed, one deleted: two embedded, one removed.
    std::fs::copy(photos.join("a/rows/000.png"), photos.join("a/rows/new.png")).unwrap();
    std::fs::copy(
        photos.join("a/checks/000.png"),
        photos.join("a/columns/001.png"),
    )
    .unwrap();
    std::fs::remove_file(photos.join("a/checks/002.png")).unwrap();
    let output = xtask(&index_args);
    succeed(&output);
    let text = stdout(&output);
    assert!(
        text.contains("1 added, 1 changed, 7 unchanged, 1 removed"),
        "{text}"
    );

    // A query inside the index never finds itself; the picture has the query and k results.
    let picture = dir.path().join("search.png");
    let query = photos.join("a/rows/001.png");
    let output = xtask(&[
        "search",
        "--index",
        path(&index),
        "--query",
        path(&query),
        "--k",
        "3",
        "--out",
        path(&picture),
    ]);
    succeed(&output);
    let text = stdout(&output);
    let results: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(results.len(), 3, "{text}");
    assert!(
        !results.iter().any(|l| l.ends_with("a/rows/001.png")),
        "{text}"
    );
    let (width, _) = image::image_dimensions(&picture).unwrap();
    // 32-pixel inputs are drawn 3 times larger (thumbnails near 96 pixels).
    let tile = 3 * 32 + 2 * repr_eval::GRID_BORDER;
    let expected =
        repr_eval::GRID_GAP + 4 * (tile + repr_eval::GRID_GAP) + repr_eval::GRID_SEPARATOR;
    assert_eq!(width, expected);

    // A stop-listed image is never returned.
    let nearest = results[0].split_whitespace().last().unwrap().to_string();
    let stop_list = dir.path().join("stop.txt");
    std::fs::write(&stop_list, format!("{nearest}\n")).unwrap();
    let output = xtask(&[
        "search",
        "--index",
        path(&index),
        "--query",
        path(&query),
        "--k",
        "3",
        "--stop-list",
        path(&stop_list),
        "--out",
        path(&picture),
        "--overwrite",
    ]);
    succeed(&output);
    assert!(!stdout(&output).contains(&nearest), "{}", stdout(&output));

    // The two copies made above are near-duplicates of their originals: each pair is in one
    // group, and the groups are drawn.
    let picture = dir.path().join("duplicates.png");
    let output = xtask(&[
        "duplicates",
        "--index",
        path(&index),
        "--threshold",
        "0.99999",
        "--out",
        path(&picture),
    ]);
    succeed(&output);
    let text = stdout(&output);
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("group ") {
            groups.push(Vec::new());
        } else if let (Some(group), Some(file)) = (groups.last_mut(), line.strip_prefix("  ")) {
            group.push(file.trim());
        }
    }
    for pair in [
        ["a/rows/000.png", "a/rows/new.png"],
        ["a/checks/000.png", "a/columns/001.png"],
    ] {
        assert!(
            groups.iter().any(|g| pair.iter().all(|p| g.contains(p))),
            "{pair:?} not in one group: {text}"
        );
    }
    let (_, height) = image::image_dimensions(&picture).unwrap();
    assert!(
        height >= 2 * (3 * 32),
        "one row per group: {height} pixels high"
    );
}

#[test]
fn bad_requests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    write_patterns(&photos, &[("a", 1)]);
    let index = dir.path().join("index");
    let fails = |args: &[&str], expected: &str| {
        let output = xtask(args);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    };
    // A new index needs its folder and its model.
    fails(
        &["index", "--index", path(&index), "--arch", "resnet18"],
        "--images",
    );
    fails(
        &["index", "--index", path(&index), "--images", path(&photos)],
        "--run",
    );
    // A folder that is not an index is never written into.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    fails(
        &[
            "index",
            "--index",
            path(&foreign),
            "--images",
            path(&photos),
            "--arch",
            "resnet18",
            "--size",
            "32",
        ],
        "not",
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
    // An index keeps its model.
    succeed(&xtask(&[
        "index",
        "--index",
        path(&index),
        "--images",
        path(&photos),
        "--arch",
        "resnet18",
        "--size",
        "32",
        "--quiet",
    ]));
    fails(
        &[
            "index",
            "--index",
            path(&index),
            "--arch",
            "resnet34",
            "--size",
            "32",
        ],
        "was made with",
    );
    fails(
        &[
            "search",
            "--index",
            path(&foreign),
            "--query",
            path(&photos.join("a/rows/000.png")),
        ],
        "not",
    );
    fails(
        &[
            "search",
            "--index",
            path(&index),
            "--query",
            path(&dir.path().join("missing.png")),
        ],
        "missing.png",
    );
}

/// `xtask index` killed (SIGKILL) while it embeds: the index stays readable with the batches
/// committed before the kill, and the next run embeds only the rest.
#[test]
fn a_killed_index_run_is_resumed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    write_patterns(&photos, &[("a", 40)]);
    let total = 120;
    let index = dir.path().join("index");
    let args = [
        "index",
        "--index",
        path(&index),
        "--images",
        path(&photos),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "1",
        "--quiet",
    ];
    let committed = || {
        repr_search::Index::open_read_only(&index)
            .and_then(|reader| reader.snapshot())
            .map(|snapshot| snapshot.entries.len())
            .unwrap_or(0)
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while committed() < 3 {
        assert!(std::time::Instant::now() < deadline, "nothing committed");
        assert!(
            child.try_wait().unwrap().is_none(),
            "xtask index ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = committed();
    assert!(
        (3..total).contains(&before),
        "{before} of {total} committed when killed"
    );

    let output = xtask(&args);
    succeed(&output);
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "{} added, 0 changed, {before} unchanged, 0 removed",
            total - before
        )),
        "{before} committed before the kill: {text}"
    );
    assert_eq!(committed(), total);
}
