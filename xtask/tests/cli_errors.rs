//! The command line on bad input: a bad flag value, a bad config file and an impossible value
//! each stop with one message naming the flag or field, before a run folder exists; and
//! `--on-bad-image skip` trains on an image folder with a corrupt file, printing and listing it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask(runs: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "train",
            "--recipe",
            "supervised",
            "--device",
            "flex",
            "--quiet",
        ])
        .arg("--runs-dir")
        .arg(runs)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

fn fails_with(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a failure: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

#[test]
fn bad_flags_and_configs_fail_before_the_run_folder_exists() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");

    fails_with(
        &xtask(&runs, &["--on-bad-image", "ignore"]),
        &["--on-bad-image", "skip", "fail"],
    );
    fails_with(
        &xtask(&runs, &["--batch-size", "0"]),
        &["batch_size", ">= 2"],
    );
    fails_with(&xtask(&runs, &["--lr=-1"]), &["optimizer.lr", "> 0"]);
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[backbone]\nkind = \"resnet\"\nwidht = 8\n").unwrap();
    let config = config.to_str().unwrap();
    fails_with(&xtask(&runs, &["--config", config]), &["widht", "bad.toml"]);
    assert!(!runs.exists(), "a failed start leaves no run folder");
}

/// Bad data stops the start with one message (the OS error said once) and no run folder; the
/// same for `--resume` of a run that does not exist. Each of these used to leave
/// `runs/<name>/checkpoints/` behind, so the retry was refused.
#[test]
fn a_failed_start_leaves_no_run_folder_and_says_each_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let once = |output: &Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "expected a failure: {stderr}");
        assert_eq!(
            stderr.matches(needle).count(),
            1,
            "`{needle}` once in: {stderr}"
        );
    };
    let missing = dir.path().join("nonexistent");
    let out = xtask(&runs, &["--data-dir", missing.to_str().unwrap()]);
    once(&out, "No such file or directory");
    once(&out, "nonexistent");
    assert!(!runs.exists(), "a missing data folder leaves no run folder");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails_with(
        &xtask(&runs, &["--data-dir", empty.to_str().unwrap()]),
        &["empty"],
    );
    assert!(!runs.exists(), "an empty data folder leaves no run folder");

    // A truncated IDX image file and one with a bad magic number.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    let mut images = Vec::new();
    for v in [0x0803u32, 4, 28, 28] {
        images.extend_from_slice(&v.to_be_bytes());
    }
    images.extend_from_slice(&[0; 100]);
    let mut labels = 0x0801u32.to_be_bytes().to_vec();
    labels.extend_from_slice(&4u32.to_be_bytes());
    labels.extend_from_slice(&[0, 1, 2, 3]);
    for prefix in ["train", "t10k"] {
        std::fs::write(idx.join(format!("{prefix}-images-idx3-ubyte")), &images).unwrap();
        std::fs::write(idx.join(format!("{prefix}-labels-idx1-ubyte")), &labels).unwrap();
    }
    let idx_arg = idx.to_str().unwrap();
    fails_with(
        &xtask(&runs, &["--data-dir", idx_arg]),
        &["train-images-idx3-ubyte"],
    );
    assert!(!runs.exists(), "a truncated IDX file leaves no run folder");
    images[3] = 0x99;
    std::fs::write(idx.join("train-images-idx3-ubyte"), &images).unwrap();
    fails_with(&xtask(&runs, &["--data-dir", idx_arg]), &["magic"]);
    assert!(!runs.exists(), "a bad magic number leaves no run folder");

    let out = xtask(&runs, &["--resume", "--name", "never-ran"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("never-ran"),
        "{stderr}"
    );
    assert!(
        stderr.matches("No such file or directory").count() <= 1,
        "the OS error at most once: {stderr}"
    );
    assert!(!runs.exists(), "a failed resume creates nothing");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 1×1 PNG whose header declares `width`×`height` (its IHDR rewritten, with a valid CRC).
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = png_rgb(1, 1, [9, 9, 9]);
    // Signature (8), IHDR length (4) and type (4), then width and height; the CRC covers the
    // type and the 13 data bytes.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A `width`×`height` PNG of one colour, written by hand (xtask has no image encoder): zlib
/// with one stored (uncompressed) deflate block.
fn png_rgb(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0); // Filter: none.
        raw.extend(rgb.iter().cycle().take(3 * width as usize));
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    let len = raw.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB.
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An image folder with classes `a` (dark) and `b` (light), 8 RGB 5×5 PNGs per class in
/// `train/` and `test/`, and a config training a tiny ResNet on it at 4×4 for one epoch:
/// (the temporary directory, the data folder, the config file).
fn two_class_folder() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for split in ["train", "test"] {
        for (class, shade) in [("a", 20u8), ("b", 220)] {
            let folder = data.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..8u8 {
                let png = png_rgb(5, 5, [shade, i, 0]);
                std::fs::write(folder.join(format!("{i}.png")), png).unwrap();
            }
        }
    }
    let config = dir.path().join("folder.toml");
    std::fs::write(
        &config,
        "epochs = 1\nbatch_size = 8\n[data]\nimage_size = [4, 4]\n\
         [backbone]\nkind = \"resnet\"\nlayers = [1, 1, 1, 1]\nstem = \"cifar\"\nwidth = 4\n\
         in_channels = 3\nnum_classes = 2\n[eval]\nplots = false\n",
    )
    .unwrap();
    (dir, data, config)
}

#[test]
fn on_bad_image_skip_trains_and_lists_the_skipped_files() {
    let (dir, data, config) = two_class_folder();
    let corrupt = data.join("train/b/corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let runs = dir.path().join("runs");
    let common = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];

    let failed = xtask(&runs, &[&common[..], &["--name", "fail"]].concat());
    fails_with(&failed, &["corrupt.png", "cannot decode image"]);

    let args = [&common[..], &["--name", "skip", "--on-bad-image", "skip"]].concat();
    let output = xtask(&runs, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped 1 unreadable image") && stderr.contains("corrupt.png"),
        "{stderr}"
    );
    let listed = std::fs::read_to_string(runs.join("skip/skipped.txt")).unwrap();
    let (path, reason) = listed.trim_end().split_once('\t').unwrap();
    assert_eq!(Path::new(path), corrupt);
    assert!(reason.starts_with("cannot decode"), "{listed}");
    let saved = std::fs::read_to_string(runs.join("skip/config.toml")).unwrap();
    assert!(saved.contains("on_bad_image = \"skip\""), "{saved}");
}

/// One RGB dataset in two layouts: an image folder (`train/<class>/*.png`, `test/...`) and the
/// CIFAR-10 binary files, 10 classes of 16 training and 4 test images at 32×32, each class a
/// colour with per-image noise.
fn rgb_datasets(root: &Path) -> (PathBuf, PathBuf) {
    let pixel = |class: u8, i: u8, c: usize| -> u8 {
        let base = [class * 25, 255 - class * 20, class.wrapping_mul(47)];
        base[c].wrapping_add(i.wrapping_mul(7)) // noise per image
    };
    let folder = root.join("folder");
    let cifar = root.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    let mut train_records = Vec::new();
    let mut test_records = Vec::new();
    for class in 0..10u8 {
        for i in 0..20u8 {
            let rgb = [pixel(class, i, 0), pixel(class, i, 1), pixel(class, i, 2)];
            let split = if i < 16 { "train" } else { "test" };
            let dir = folder.join(split).join(format!("class{class}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{i}.png")), png_rgb(32, 32, rgb)).unwrap();
            let records = if i < 16 {
                &mut train_records
            } else {
                &mut test_records
            };
            records.push(class);
            for c in rgb {
                records.extend(std::iter::repeat_n(c, 1024));
            }
        }
    }
    // Five training batches (32 images each), one test batch.
    for (k, chunk) in train_records.chunks(3073 * 32).enumerate() {
        std::fs::write(cifar.join(format!("data_batch_{}.bin", k + 1)), chunk).unwrap();
    }
    std::fs::write(cifar.join("test_batch.bin"), &test_records).unwrap();
    (folder, cifar)
}

/// With `--data-dir` alone (no config file), RGB data in both layouts trains on every recipe
/// that applies to unlabelled or labelled images: the presets take the channels, the classes,
/// the ViT's image size, the views and the kNN's k from the data. This used to stop with
/// `backbone.in_channels: 1 does not match the dataset's 3 channels`.
#[test]
fn rgb_data_trains_with_data_dir_alone_on_every_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, cifar) = rgb_datasets(dir.path());
    let runs = dir.path().join("runs");
    let recipes: [&[&str]; 6] = [
        &[],
        &["--recipe", "supervised"],
        &["--recipe", "simclr"],
        &["--recipe", "byol"],
        &["--recipe", "triplet"],
        &["--recipe", "masked-patch"],
    ];
    for (data, name) in [(&folder, "folder"), (&cifar, "cifar")] {
        for (i, recipe) in recipes.iter().enumerate() {
            // The default recipe runs on both layouts, the others on the image folder.
            if name == "cifar" && i > 1 {
                continue;
            }
            let run = format!("{name}-{i}");
            let mut args = vec![
                "--data-dir",
                data.to_str().unwrap(),
                "--name",
                &run,
                "--max-steps",
                "2",
            ];
            // The triplet preset's batch is its P × K = 8 × 16.
            if !recipe.contains(&"triplet") {
                args.extend_from_slice(&["--batch-size", "32"]);
            }
            args.extend_from_slice(recipe);
            let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
                .arg("train")
                .arg("--runs-dir")
                .arg(&runs)
                .args(["--quiet", "--device", "flex"])
                .args(&args)
                .env("RAYON_NUM_THREADS", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{name} {recipe:?}: {stderr}");
            let saved = std::fs::read_to_string(runs.join(&run).join("config.toml")).unwrap();
            assert!(
                saved.contains("in_channels = 3"),
                "{name} {recipe:?}: {saved}"
            );
        }
    }
    // The classifier took the dataset's 10 classes, the SimCLR views its 32-pixel colour images.
    let saved = std::fs::read_to_string(runs.join("folder-1/config.toml")).unwrap();
    assert!(saved.contains("num_classes = 10"), "{saved}");
    let saved = std::fs::read_to_string(runs.join("folder-2/config.toml")).unwrap();
    assert!(saved.contains("size = 32"), "{saved}");
    assert!(
        saved.contains("op = \"horizontal_flip\""),
        "the standard views flip: {saved}"
    );
    assert!(
        saved.contains("saturation = 0.4"),
        "colour jitter for colour images: {saved}"
    );
}

/// `--augment no-flip` removes every flip: from the supervised augmentation and from the SSL
/// views, as written to the run's config.
#[test]
fn augment_no_flip_removes_the_flips() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = rgb_datasets(dir.path());
    let runs = dir.path().join("runs");
    for recipe in ["supervised", "simclr"] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("train")
            .arg("--runs-dir")
            .arg(&runs)
            .args([
                "--quiet", "--device", "flex", "--recipe", recipe, "--name", recipe,
            ])
            .args([
                "--data-dir",
                folder.to_str().unwrap(),
                "--augment",
                "no-flip",
            ])
            .args(["--max-steps", "1", "--batch-size", "32"])
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{recipe}: {stderr}");
        let saved = std::fs::read_to_string(runs.join(recipe).join("config.toml")).unwrap();
        assert!(saved.contains("horizontal_flip = 0.0"), "{saved}");
        assert!(!saved.contains("op = \"horizontal_flip\""), "{saved}");
        assert!(saved.contains("preset = \"no-flip\""), "{saved}");
    }
}

/// `--name` is one folder name: an absolute path, `..` or a path is refused before anything
/// is read or written, `--overwrite` included; and a folder under the runs folder that is not a
/// run is neither replaced nor written into.
#[test]
fn run_names_are_names_and_overwrite_replaces_only_runs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let precious = dir.path().join("precious");
    std::fs::create_dir_all(precious.join("sub")).unwrap();
    std::fs::write(precious.join("precious.txt"), "mine").unwrap();
    let absolute = precious.to_str().unwrap();
    for name in [absolute, "../x", "a/b", ".."] {
        for extra in [&["--overwrite"][..], &[], &["--resume"]] {
            let out = xtask(&runs, &[&["--name", name][..], extra].concat());
            assert_eq!(out.status.code(), Some(1), "{name} {extra:?}");
            fails_with(&out, &["run name", name]);
        }
    }
    assert_eq!(
        std::fs::read_to_string(precious.join("precious.txt")).unwrap(),
        "mine"
    );
    assert!(precious.join("sub").is_dir());
    assert!(!runs.exists() && !dir.path().join("x").exists());

    let mine = runs.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    for extra in [&["--overwrite"][..], &[]] {
        let out = xtask(&runs, &[&["--name", "mine"][..], extra].concat());
        fails_with(
            &out,
            &["not a run folder", "notes.txt", "nothing was changed"],
        );
    }
    let entries: Vec<_> = std::fs::read_dir(&mine).unwrap().collect();
    assert_eq!(
        entries.len(),
        1,
        "nothing written into a folder that is not a run"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Sizes far beyond any machine's memory are refused by name with exit code 1 (they used to
/// abort the process in an allocation).
#[test]
fn huge_sizes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    for (toml, needles) in [
        (
            "[data]\nimage_size = [100000, 100000]\n",
            &["data.image_size", "[100000, 100000]", "4096"][..],
        ),
        (
            "batch_size = 1000000000\n",
            &["batch_size", "at most 65536"],
        ),
        (
            "[backbone]\nkind = \"resnet\"\nwidth = 1000000\n",
            &["width", "at most 4096"],
        ),
    ] {
        let config = dir.path().join("huge.toml");
        std::fs::write(&config, toml).unwrap();
        let out = xtask(&runs, &["--config", config.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{toml}");
        fails_with(&out, needles);
    }
    assert!(!runs.exists());
}

/// An image declaring 60,000 × 60,000 pixels: one error naming the file, the limit and how to
/// raise it, before anything is decoded; skipped and listed under `--on-bad-image skip`.
#[test]
fn images_over_the_pixel_limit_are_refused_from_their_header() {
    let (dir, data, config) = two_class_folder();
    let huge = data.join("train/a/huge.png");
    std::fs::write(&huge, png_declaring(60_000, 60_000)).unwrap();
    let runs = dir.path().join("runs");
    let common = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let out = xtask(&runs, &[&common[..], &["--name", "fail"]].concat());
    assert_eq!(out.status.code(), Some(1));
    fails_with(
        &out,
        &[
            "huge.png",
            "60000x60000",
            "64000000 pixels",
            "data.max_image_pixels",
            "--max-image-pixels",
        ],
    );
    assert!(!runs.join("fail").exists());

    let args = [&common[..], &["--name", "skip", "--on-bad-image", "skip"]].concat();
    let out = xtask(&runs, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let listed = std::fs::read_to_string(runs.join("skip/skipped.txt")).unwrap();
    assert!(
        listed.contains("huge.png") && listed.contains("60000x60000"),
        "{listed}"
    );

    // The limit itself is bounded (a gigapixel: 8 GB per decoding thread).
    let raised = [
        &common[..],
        &["--name", "raised", "--max-image-pixels", "4000000000"],
    ];
    fails_with(
        &xtask(&runs, &raised.concat()),
        &["data.max_image_pixels", "1000000000"],
    );
}
