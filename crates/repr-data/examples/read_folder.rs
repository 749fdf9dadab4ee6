//! Reads an image folder (`<dir>/<class>/*.png|jpg`) as training would, and prints the dataset's
//! size, the files skipped, or the error: a quick check of a folder before a run, and a way to
//! measure the memory reading it takes (`/usr/bin/time -v`).
//!
//! ```sh
//! cargo run --example read_folder -- <dir> [--channels 1|3] [--size <H>x<W>] \
//!     [--max-image-pixels <N>] [--on-bad-image fail|skip]
//! ```
//!
//! Defaults: 3 channels, 32x32, [`repr_data::DEFAULT_MAX_IMAGE_PIXELS`], `fail`.

use std::path::PathBuf;
use std::process::ExitCode;

use repr_data::{DEFAULT_MAX_IMAGE_PIXELS, OnBadImage, read_image_folder_with};

/// The command line.
struct Args {
    dir: PathBuf,
    channels: usize,
    size: (usize, usize),
    max_image_pixels: u64,
    on_bad_image: OnBadImage,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        dir: PathBuf::new(),
        channels: 3,
        size: (32, 32),
        max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
        on_bad_image: OnBadImage::Fail,
    };
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--channels" => parsed.channels = number(&value()?, "--channels")?,
            "--max-image-pixels" => {
                parsed.max_image_pixels = number(&value()?, "--max-image-pixels")?
            }
            "--on-bad-image" => parsed.on_bad_image = value()?.parse()?,
            "--size" => {
                let v = value()?;
                let (h, w) = v
                    .split_once('x')
                    .ok_or(format!("--size {v}: expected <H>x<W>"))?;
                parsed.size = (number(h, "--size")?, number(w, "--size")?);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    parsed.dir = dir.ok_or("missing the folder to read")?;
    Ok(parsed)
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} {text}: not a non-negative integer"))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!(
                "usage: read_folder <dir> [--channels 1|3] [--size <H>x<W>] \
                 [--max-image-pixels <N>] [--on-bad-image fail|skip]"
            );
            return ExitCode::from(2);
        }
    };
    match read_image_folder_with(
        &args.dir,
        args.channels,
        args.size,
        args.on_bad_image,
        args.max_image_pixels,
    ) {
        Ok((dataset, skipped)) => {
            let [c, h, w] = dataset.shape();
            println!(
                "{} images of {c}x{h}x{w} in {} classes",
                dataset.len(),
                dataset.num_classes()
            );
            for image in &skipped {
                println!("skipped {image}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
