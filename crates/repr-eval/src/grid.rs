//! A picture of retrieval results: queries down the left, their neighbours to the right, framed
//! green when the label matches the query's and red when not.

use image::{Rgb, RgbImage};

use crate::EvalError;

/// Frame width around every image, in pixels.
pub const GRID_BORDER: u32 = 3;
/// Space between framed images and around the picture, in pixels.
pub const GRID_GAP: u32 = 4;
/// Extra space between the query column and the first neighbour, in pixels.
pub const GRID_SEPARATOR: u32 = 12;
/// Frame of a neighbour with the query's label.
pub const MATCH_COLOR: [u8; 3] = [0, 170, 0];
/// Frame of a neighbour with another label.
pub const MISMATCH_COLOR: [u8; 3] = [220, 0, 0];
/// Frame of an image on a stop-list (excluded from results, shown for reference).
pub const STOPLIST_COLOR: [u8; 3] = [0, 90, 220];
/// Frame of an image whose label is unknown.
pub const UNLABELLED_COLOR: [u8; 3] = [150, 150, 150];
/// Frame of a query.
pub const QUERY_COLOR: [u8; 3] = [40, 40, 40];
/// The background.
pub const BACKGROUND_COLOR: [u8; 3] = [255, 255, 255];

/// One image of the grid: CHW `u8` pixels and a label.
pub type LabelledImage<'a> = (&'a [u8], u32);

/// Draws retrieval results: row `r` shows `queries[r]` framed in [`QUERY_COLOR`], then
/// `neighbours[r]` in order, each framed in [`MATCH_COLOR`] when its label equals the query's
/// and [`MISMATCH_COLOR`] otherwise. Images are CHW `u8` of `shape` (1 channel: grey, 3: RGB),
/// enlarged `scale` times by pixel repetition. Save it with `.save("grid.png")`.
///
/// Geometry, with `tile = side · scale + 2 · GRID_BORDER` for each side: the framed image of
/// row `r` and column `c` (column 0 is the query) has its top-left corner at
/// `x = GRID_GAP + c · (tile_w + GRID_GAP) + (GRID_SEPARATOR if c > 0)`,
/// `y = GRID_GAP + r · (tile_h + GRID_GAP)`; the picture is
/// `GRID_GAP + (k + 1) · (tile_w + GRID_GAP) + GRID_SEPARATOR` wide (`k` the longest row of
/// neighbours) and `GRID_GAP + rows · (tile_h + GRID_GAP)` high.
///
/// ```
/// use repr_eval::{retrieval_grid, MATCH_COLOR};
///
/// let (a, b) = ([0u8; 4], [255u8; 4]); // two 1x2x2 images
/// let grid = retrieval_grid(&[(&a, 0)], &[vec![(&b, 0)]], [1, 2, 2], 1);
/// assert_eq!(grid.dimensions(), (4 + 2 * (8 + 4) + 12, 4 + 8 + 4));
/// assert_eq!(grid.get_pixel(4 + 12 + 12, 4).0, MATCH_COLOR);
/// ```
///
/// # Panics
/// When `queries` and `neighbours` differ in length, an image does not have `shape`'s size, the
/// channel count is not 1 or 3, or `scale` is 0 (programming errors: the images come from one
/// dataset). [`check_retrieval_grid`] reports the same conditions as an error.
pub fn retrieval_grid(
    queries: &[LabelledImage<'_>],
    neighbours: &[Vec<LabelledImage<'_>>],
    shape: [usize; 3],
    scale: u32,
) -> RgbImage {
    if let Err(e) = check_retrieval_grid(queries, neighbours, shape, scale) {
        panic!("retrieval_grid: {e}");
    }
    let rows: Vec<Vec<FramedTile<'_>>> = queries
        .iter()
        .zip(neighbours)
        .map(|(&(query, label), found)| {
            std::iter::once(FramedTile {
                pixels: query,
                frame: QUERY_COLOR,
            })
            .chain(found.iter().map(|&(pixels, l)| FramedTile {
                pixels,
                frame: if l == label {
                    MATCH_COLOR
                } else {
                    MISMATCH_COLOR
                },
            }))
            .collect()
        })
        .collect();
    framed_grid(&rows, shape, scale)
}

/// One image of a [`framed_grid`]: CHW `u8` pixels and the colour of its frame.
#[derive(Debug, Clone, Copy)]
pub struct FramedTile<'a> {
    /// CHW pixels of the grid's shape.
    pub pixels: &'a [u8],
    /// RGB colour of the frame.
    pub frame: [u8; 3],
}

/// Draws rows of framed images with the geometry of [`retrieval_grid`] (column 0 set apart by
/// [`GRID_SEPARATOR`]), each tile framed in its own colour: the picture behind
/// `retrieval_grid`, for callers that choose the frames themselves (e.g. a stop-listed image).
///
/// # Panics
/// When an image does not have `shape`'s size, the channel count is not 1 or 3, or `scale` is
/// 0 (programming errors).
pub fn framed_grid(rows: &[Vec<FramedTile<'_>>], shape: [usize; 3], scale: u32) -> RgbImage {
    let [channels, height, width] = shape;
    assert!(
        (channels == 1 || channels == 3) && scale > 0 && height > 0 && width > 0,
        "framed_grid: shape {shape:?} at scale {scale}"
    );
    let tile_w = width as u32 * scale + 2 * GRID_BORDER;
    let tile_h = height as u32 * scale + 2 * GRID_BORDER;
    let k = rows
        .iter()
        .map(|row| row.len().max(1) - 1)
        .max()
        .unwrap_or(0) as u32;
    let mut canvas = RgbImage::from_pixel(
        GRID_GAP + (k + 1) * (tile_w + GRID_GAP) + GRID_SEPARATOR,
        GRID_GAP + rows.len() as u32 * (tile_h + GRID_GAP),
        Rgb(BACKGROUND_COLOR),
    );
    let plane = height * width;
    for (row, tiles) in rows.iter().enumerate() {
        let y = GRID_GAP + row as u32 * (tile_h + GRID_GAP);
        for (column, tile) in tiles.iter().enumerate() {
            assert_eq!(
                tile.pixels.len(),
                channels * plane,
                "framed_grid: image at row {row}, column {column} for shape {shape:?}"
            );
            let column = column as u32;
            let x = GRID_GAP
                + column * (tile_w + GRID_GAP)
                + if column > 0 { GRID_SEPARATOR } else { 0 };
            for dy in 0..tile_h {
                for dx in 0..tile_w {
                    canvas.put_pixel(x + dx, y + dy, Rgb(tile.frame));
                }
            }
            let pixels = tile.pixels;
            for py in 0..height * scale as usize {
                for px in 0..width * scale as usize {
                    let at = (py / scale as usize) * width + px / scale as usize;
                    let color = if channels == 1 {
                        [pixels[at]; 3]
                    } else {
                        [pixels[at], pixels[plane + at], pixels[2 * plane + at]]
                    };
                    canvas.put_pixel(
                        x + GRID_BORDER + px as u32,
                        y + GRID_BORDER + py as u32,
                        Rgb(color),
                    );
                }
            }
        }
    }
    canvas
}

/// Checks the inputs of [`retrieval_grid`].
///
/// # Errors
/// [`EvalError::InvalidInput`] when `queries` and `neighbours` differ in length, an image does
/// not have `shape`'s size, the channel count is not 1 or 3, or `scale` is 0.
pub fn check_retrieval_grid(
    queries: &[LabelledImage<'_>],
    neighbours: &[Vec<LabelledImage<'_>>],
    shape: [usize; 3],
    scale: u32,
) -> Result<(), EvalError> {
    if queries.len() != neighbours.len() {
        return Err(EvalError::mismatch(
            "queries",
            queries.len(),
            "neighbours",
            neighbours.len(),
            "rows",
        ));
    }
    let [channels, height, width] = shape;
    if channels != 1 && channels != 3 {
        return Err(EvalError::invalid(
            "shape",
            format!("{channels} channels; expected 1 or 3"),
        ));
    }
    if scale == 0 || height == 0 || width == 0 {
        return Err(EvalError::invalid(
            "scale",
            format!("scale {scale} with image shape {shape:?}"),
        ));
    }
    let image_len = channels * height * width;
    for (row, (query, found)) in queries.iter().zip(neighbours).enumerate() {
        for (column, (pixels, _)) in std::iter::once(query).chain(found).enumerate() {
            if pixels.len() != image_len {
                return Err(EvalError::invalid(
                    "queries/neighbours",
                    format!(
                        "image at row {row}, column {column} has {} values; shape {shape:?} needs {image_len}",
                        pixels.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}
