//! The retrieval grid and the plots: sizes, frame colours read back pixel by pixel, valid and
//! non-blank PNGs.

use std::path::Path;

use image::RgbImage;
use repr_eval::{
    BACKGROUND_COLOR, CURVES_PANEL_HEIGHT, CURVES_TITLE_HEIGHT, CURVES_WIDTH, EMBEDDING_SIZE,
    GRID_BORDER, GRID_GAP, GRID_SEPARATOR, MATCH_COLOR, MISMATCH_COLOR, QUERY_COLOR, Series,
    palette, plot_curves, plot_embedding, retrieval_grid,
};

/// Two queries (labels 0 and 1), each with three neighbours, 1×2×3 grey images, scale 2.
/// Tile = image (3·2 wide, 2·2 high) + 2 · 3 border = 12 × 10.
/// Width = GAP + 4 tiles · (12 + GAP) + SEPARATOR = 4 + 4·16 + 12 = 80.
/// Height = GAP + 2 rows · (10 + GAP) = 4 + 2·14 = 32.
#[test]
fn retrieval_grid_layout_and_frames() {
    let image = |v: u8| vec![v, v + 1, v + 2, v + 3, v + 4, v + 5];
    let images: Vec<Vec<u8>> = (0..8).map(|i| image(i * 30)).collect();
    let queries = vec![(images[0].as_slice(), 0), (images[1].as_slice(), 1)];
    let neighbours = vec![
        vec![
            (images[2].as_slice(), 0),
            (images[3].as_slice(), 1),
            (images[4].as_slice(), 0),
        ],
        vec![
            (images[5].as_slice(), 0),
            (images[6].as_slice(), 1),
            (images[7].as_slice(), 1),
        ],
    ];
    let grid = retrieval_grid(&queries, &neighbours, [1, 2, 3], 2);
    assert_eq!(grid.dimensions(), (80, 32));
    assert_eq!((GRID_BORDER, GRID_GAP, GRID_SEPARATOR), (3, 4, 12));

    let (tile_w, tile_h) = (12, 10);
    let origin = |row: u32, column: u32| {
        let x =
            GRID_GAP + column * (tile_w + GRID_GAP) + if column > 0 { GRID_SEPARATOR } else { 0 };
        (x, GRID_GAP + row * (tile_h + GRID_GAP))
    };
    let expected = [
        [QUERY_COLOR, MATCH_COLOR, MISMATCH_COLOR, MATCH_COLOR],
        [QUERY_COLOR, MISMATCH_COLOR, MATCH_COLOR, MATCH_COLOR],
    ];
    for (row, colours) in expected.iter().enumerate() {
        for (column, &colour) in colours.iter().enumerate() {
            let (x, y) = origin(row as u32, column as u32);
            // All four corners and the middle of each side of the frame.
            for (dx, dy) in [
                (0, 0),
                (tile_w - 1, 0),
                (0, tile_h - 1),
                (tile_w - 1, tile_h - 1),
                (tile_w / 2, 1),
                (1, tile_h / 2),
            ] {
                assert_eq!(
                    grid.get_pixel(x + dx, y + dy).0,
                    colour,
                    "row {row} column {column} at +({dx}, {dy})"
                );
            }
            // The image inside, enlarged 2×: pixel (px, py) shows source pixel (px/2, py/2).
            let source = if column == 0 {
                &images[row]
            } else {
                &images[2 + 3 * row + column - 1]
            };
            for py in 0..4 {
                for px in 0..6 {
                    let v = source[(py / 2) * 3 + px / 2];
                    let got = grid
                        .get_pixel(x + GRID_BORDER + px as u32, y + GRID_BORDER + py as u32)
                        .0;
                    assert_eq!(got, [v; 3], "row {row} column {column} pixel ({px}, {py})");
                }
            }
        }
    }
    // Background between the query column and the neighbours.
    let (x, y) = origin(0, 1);
    assert_eq!(grid.get_pixel(x - 1, y).0, BACKGROUND_COLOR);
    assert_eq!(grid.get_pixel(0, 0).0, BACKGROUND_COLOR);
}

#[test]
fn retrieval_grid_colour_images() {
    // One 3×1×1 image: red 200, green 10, blue 90.
    let pixel = [200u8, 10, 90];
    let grid = retrieval_grid(&[(&pixel, 2)], &[vec![(&pixel, 2)]], [3, 1, 1], 1);
    assert_eq!(
        grid.get_pixel(GRID_GAP + GRID_BORDER, GRID_GAP + GRID_BORDER)
            .0,
        [200, 10, 90]
    );
}

#[test]
#[should_panic(expected = "column 1 has 3 values")]
fn retrieval_grid_names_a_wrong_image() {
    let (good, bad) = ([0u8; 4], [0u8; 3]);
    retrieval_grid(&[(&good, 0)], &[vec![(&bad, 0)]], [1, 2, 2], 1);
}

fn read_png(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

fn count(
    picture: &RgbImage,
    region: (u32, u32, u32, u32),
    keep: impl Fn([u8; 3]) -> bool,
) -> usize {
    let (x0, y0, x1, y1) = region;
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| keep(picture.get_pixel(x, y).0))
        .count()
}

fn dark(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 80)
}

#[test]
fn curves_are_a_non_blank_png_of_the_right_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.png");
    let steps = |f: fn(f64) -> f64| (0..50).map(|i| (i as f64, f(i as f64))).collect::<Vec<_>>();
    let panels = vec![
        (
            "loss".to_string(),
            vec![
                Series::new("train", steps(|x| 2.3 * (-x / 20.0).exp())),
                Series::new("test", steps(|x| 2.4 * (-x / 25.0).exp() + 0.1)),
            ],
        ),
        (
            "learning rate".to_string(),
            vec![Series::new("lr", steps(|x| 0.1 * (1.0 - x / 50.0)))],
        ),
        (
            "kNN top-1".to_string(),
            vec![Series::new(
                "knn",
                vec![(10.0, 0.5), (20.0, 0.7), (49.0, f64::NAN)],
            )],
        ),
    ];
    plot_curves("SimCLR on Fashion-MNIST", "step", &panels, &path).unwrap();
    let picture = read_png(&path);
    assert_eq!(
        picture.dimensions(),
        (CURVES_WIDTH, CURVES_TITLE_HEIGHT + 3 * CURVES_PANEL_HEIGHT)
    );
    let (w, h) = picture.dimensions();
    let non_white = count(&picture, (0, 0, w, h), |p| p != [255, 255, 255]);
    assert!(non_white > 5_000, "{non_white} non-white pixels");
    // The title is text: dark pixels in the title strip (the bundled font renders).
    let title_ink = count(&picture, (0, 0, w, CURVES_TITLE_HEIGHT), dark);
    assert!(title_ink > 100, "{title_ink} dark pixels in the title");
    // Series colours: the first two palette entries in the first panel, the first in the others.
    let panel = |i: u32| {
        (
            0,
            CURVES_TITLE_HEIGHT + i * CURVES_PANEL_HEIGHT,
            w,
            CURVES_TITLE_HEIGHT + (i + 1) * CURVES_PANEL_HEIGHT,
        )
    };
    for (i, series) in [(0, 0), (0, 1), (1, 0), (2, 0)] {
        let colour = palette(series);
        let n = count(&picture, panel(i), |p| p == colour);
        assert!(n > 20, "panel {i}: {n} pixels of series {series}'s colour");
    }
}

#[test]
fn embedding_plot_is_a_non_blank_png_with_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embedding.png");
    let names: Vec<String> = ["T-shirt", "Trouser", "Pullover"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let points: Vec<[f32; 2]> = (0..300)
        .map(|i| {
            let class = (i % 3) as f32;
            let t = i as f32 * 0.37;
            [class * 5.0 + t.sin(), class * -3.0 + t.cos()]
        })
        .collect();
    let labels: Vec<u32> = (0..300).map(|i| i % 3).collect();
    plot_embedding(&points, &labels, &names, &path).unwrap();
    let picture = read_png(&path);
    assert_eq!(picture.dimensions(), EMBEDDING_SIZE);
    let (w, h) = picture.dimensions();
    for class in 0..3 {
        // Legend markers are drawn at full colour.
        let n = count(&picture, (0, 0, w, h), |p| p == palette(class));
        assert!(n > 50, "class {class}: {n} pixels of its colour");
    }
    let legend_ink = count(&picture, (w - 190, 0, w, h), dark);
    assert!(
        legend_ink > 100,
        "{legend_ink} dark pixels in the legend (class names)"
    );
    let err = plot_embedding(&points, &labels, &names[..2], &path).unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
}
