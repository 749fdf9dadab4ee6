//! Writes a dataset as an image folder, one PNG per image: `<out>/<split>/<class>/<n>.png`
//! (`n` the image's position in the split, zero-padded). The folder reads back as the same
//! images (grey stays grey) — how the search commands are checked against `cargo xtask eval`
//! on Fashion-MNIST, whose training split becomes the gallery and test split the queries.
//!
//! ```sh
//! cargo run --example write_image_folder -- <out> [<dataset dir>]
//! ```
//!
//! Without a dataset folder: the Fashion-MNIST files embedded in the repository. `<out>` must
//! not exist yet (nothing is overwritten).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use image::{GrayImage, RgbImage};
use repr_data::{ImageDataset, LoadOptions, Split};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, dir) = match args.as_slice() {
        [out] => (PathBuf::from(out), repr_data::fashion_mnist_dir()),
        [out, dir] => (PathBuf::from(out), PathBuf::from(dir)),
        _ => {
            eprintln!("usage: write_image_folder <out> [<dataset dir>]");
            return ExitCode::FAILURE;
        }
    };
    match write(&out, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(out: &Path, dir: &Path) -> Result<(), String> {
    if out.exists() {
        return Err(format!("{} exists; give a new folder", out.display()));
    }
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let dataset = repr_data::load(dir, split, &LoadOptions::default())
            .map_err(|e| format!("reading {}: {e}", dir.display()))?;
        write_split(&dataset, &out.join(name))?;
        println!(
            "{} {name} images -> {}",
            dataset.len(),
            out.join(name).display()
        );
    }
    Ok(())
}

fn write_split(dataset: &ImageDataset, out: &Path) -> Result<(), String> {
    let [channels, height, width] = dataset.shape();
    let (height, width) = (height as u32, width as u32);
    let digits = dataset.len().to_string().len();
    for (n, &label) in dataset.labels().iter().enumerate() {
        // One folder per class: a `/` in a name ("T-shirt/top") would nest folders.
        let folder = out.join(dataset.class_names()[label as usize].replace(['/', '\\'], "-"));
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("creating {}: {e}", folder.display()))?;
        let path = folder.join(format!("{n:0digits$}.png"));
        let chw = dataset.image(n);
        let saved = if channels == 1 {
            GrayImage::from_raw(width, height, chw.to_vec())
                .expect("a grey image of the dataset's shape")
                .save(&path)
        } else {
            let plane = chw.len() / 3;
            let hwc = (0..plane)
                .flat_map(|i| [chw[i], chw[plane + i], chw[2 * plane + i]])
                .collect();
            RgbImage::from_raw(width, height, hwc)
                .expect("an RGB image of the dataset's shape")
                .save(&path)
        };
        saved.map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
