//! Pictures of search results and duplicate groups: rows of framed thumbnails.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rayon::prelude::*;
use repr_data::Normalize;
use repr_eval::{FramedTile, framed_grid};
use repr_search::{Preprocess, Sizing};

/// Thumbnails are at most this many pixels a side (smaller inputs are enlarged by repetition).
const THUMB: usize = 96;

/// One thumbnail to draw: a file and the colour of its frame.
pub type Shown = (PathBuf, [u8; 3]);

/// How thumbnails are made for an index whose model sees `preprocess`'s input: its own
/// colour mode, a square crop of at most [`THUMB`] pixels, and the repetition factor that
/// brings a small input (28 px) near that size.
pub fn thumbnail_format(preprocess: &Preprocess) -> (Preprocess, u32) {
    let [channels, height, width] = preprocess.shape();
    let side = height.min(width).clamp(1, THUMB);
    let format = Preprocess {
        channels,
        size: match preprocess.size {
            Sizing::Resize { .. } if height == width && side == height => {
                Sizing::Resize { height, width }
            }
            _ => Sizing::ResizeCrop {
                resize_shorter: side,
                crop: side,
            },
        },
        normalize: Normalize::identity(channels),
    };
    (format, (THUMB / side).max(1) as u32)
}

/// Draws `rows` of thumbnails (the first of each row set apart) into `out` as a PNG. A file
/// that cannot be read any more is drawn as a grey square.
pub fn draw_rows(rows: &[Vec<Shown>], preprocess: &Preprocess, out: &Path) -> Result<()> {
    let (format, scale) = thumbnail_format(preprocess);
    let [c, h, w] = format.shape();
    let pixels: Vec<Vec<Vec<u8>>> = rows
        .iter()
        .map(|row| {
            row.par_iter()
                .map(|(path, _)| {
                    format
                        .load(path, repr_data::DEFAULT_MAX_IMAGE_PIXELS)
                        .unwrap_or_else(|_| vec![200; c * h * w])
                })
                .collect()
        })
        .collect();
    let tiles: Vec<Vec<FramedTile<'_>>> = rows
        .iter()
        .zip(&pixels)
        .map(|(row, pixels)| {
            row.iter()
                .zip(pixels)
                .map(|((_, frame), pixels)| FramedTile {
                    pixels,
                    frame: *frame,
                })
                .collect()
        })
        .collect();
    let picture = framed_grid(&tiles, [c, h, w], scale);
    picture
        .save(out)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))
}
