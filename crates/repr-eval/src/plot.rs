//! PNG plots: training curves and 2-D embedding scatter plots, drawn with plotters' bitmap
//! backend and a bundled font (DejaVu Sans), so no system font or library is needed.

use std::path::Path;
use std::sync::Once;

use image::{ImageFormat, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::EvalError;

/// DejaVu Sans 2.37 from matplotlib 3.11.2's wheel (see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Width of [`plot_curves`] pictures, in pixels.
pub const CURVES_WIDTH: u32 = 900;
/// Height of each panel of [`plot_curves`], in pixels (plus [`CURVES_TITLE_HEIGHT`] once).
pub const CURVES_PANEL_HEIGHT: u32 = 300;
/// Height of the title strip of [`plot_curves`], in pixels.
pub const CURVES_TITLE_HEIGHT: u32 = 40;
/// Size of [`plot_embedding`] pictures, in pixels.
pub const EMBEDDING_SIZE: (u32, u32) = (900, 700);

/// Matplotlib's `tab10` colours, then `tab20`'s lighter ones; classes beyond 20 cycle.
const PALETTE: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
];

/// The colour of class or series `i` in every plot.
pub fn palette(i: usize) -> [u8; 3] {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    [r, g, b]
}

fn color(i: usize) -> RGBColor {
    let [r, g, b] = palette(i);
    RGBColor(r, g, b)
}

/// One curve: `(x, y)` points in drawing order. Non-finite points are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` pairs, e.g. `(step, loss)`.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A named series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// Draws training curves as a PNG of [`CURVES_WIDTH`] × ([`CURVES_TITLE_HEIGHT`] +
/// `panels.len()` · [`CURVES_PANEL_HEIGHT`]) pixels: one panel per `(y label, series)` entry,
/// stacked vertically over a shared `x_label`, each with a legend.
///
/// ```
/// use repr_eval::{plot_curves, Series};
///
/// let dir = tempfile::tempdir()?;
/// let loss = Series::new("train", vec![(0.0, 2.3), (1.0, 1.1), (2.0, 0.7)]);
/// let lr = Series::new("lr", vec![(0.0, 0.1), (1.0, 0.05), (2.0, 0.0)]);
/// let path = dir.path().join("curves.png");
/// plot_curves("supervised", "epoch", &[("loss".into(), vec![loss]), ("LR".into(), vec![lr])], &path)?;
/// assert_eq!(image::image_dimensions(&path)?, (900, 40 + 2 * 300));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EvalError::InvalidInput`] when there is no panel; [`EvalError::Plot`] when drawing or
/// writing the file fails.
pub fn plot_curves(
    title: &str,
    x_label: &str,
    panels: &[(String, Vec<Series>)],
    path: &Path,
) -> Result<(), EvalError> {
    if panels.is_empty() {
        return Err(EvalError::invalid("panels", "nothing to plot"));
    }
    let height = CURVES_TITLE_HEIGHT + panels.len() as u32 * CURVES_PANEL_HEIGHT;
    render(path, (CURVES_WIDTH, height), |root| {
        let (top, body) = root.split_vertically(CURVES_TITLE_HEIGHT);
        top.titled(title, ("sans-serif", 22))?;
        for ((y_label, series), area) in panels.iter().zip(body.split_evenly((panels.len(), 1))) {
            let points = series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            let (xs, ys): (Vec<f64>, Vec<f64>) = points.copied().unzip();
            let mut chart = ChartBuilder::on(&area)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(padded_range(&xs, 0.0), padded_range(&ys, 0.05))?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label.as_str())
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let line = color(i);
                let finite = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite());
                chart
                    .draw_series(LineSeries::new(finite, line.stroke_width(2)))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        Ok(())
    })
}

/// Draws 2-D points (e.g. from [`pca_2d`](crate::pca_2d)) as a PNG scatter plot of
/// [`EMBEDDING_SIZE`], coloured by class with [`palette`], with a legend of `class_names` to the
/// right.
///
/// ```
/// use repr_eval::plot_embedding;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("embedding.png");
/// let names = vec!["shirt".to_string(), "shoe".to_string()];
/// plot_embedding(&[[0.0, 1.0], [2.0, -1.0]], &[0, 1], &names, &path)?;
/// assert_eq!(image::image_dimensions(&path)?, (900, 700));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EvalError`] when `points` and `labels` differ in length or a label has no class name;
/// [`EvalError::Plot`] when drawing or writing the file fails.
pub fn plot_embedding(
    points: &[[f32; 2]],
    labels: &[u32],
    class_names: &[String],
    path: &Path,
) -> Result<(), EvalError> {
    if points.len() != labels.len() {
        return Err(EvalError::mismatch(
            "points",
            points.len(),
            "labels",
            labels.len(),
            "rows",
        ));
    }
    crate::error::check_labels("labels", labels, class_names.len())?;
    let (xs, ys): (Vec<f64>, Vec<f64>) = points
        .iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .map(|p| (p[0] as f64, p[1] as f64))
        .unzip();
    render(path, EMBEDDING_SIZE, |root| {
        let (plot, legend) = root.split_horizontally(EMBEDDING_SIZE.0 - 190);
        let mut chart = ChartBuilder::on(&plot)
            .caption("2-D embedding", ("sans-serif", 22))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(padded_range(&xs, 0.05), padded_range(&ys, 0.05))?;
        chart
            .configure_mesh()
            .x_desc("component 1")
            .y_desc("component 2")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        for class in 0..class_names.len() {
            let fill = color(class).mix(0.7).filled();
            chart.draw_series(
                points
                    .iter()
                    .zip(labels)
                    .filter(|&(p, &l)| l as usize == class && p[0].is_finite() && p[1].is_finite())
                    .map(|(p, _)| Circle::new((p[0] as f64, p[1] as f64), 2, fill)),
            )?;
        }
        for (class, name) in class_names.iter().enumerate() {
            let y = 50 + 24 * class as i32;
            legend.draw(&Circle::new((20, y), 6, color(class).filled()))?;
            legend.draw(&Text::new(name.as_str(), (34, y - 8), ("sans-serif", 15)))?;
        }
        Ok(())
    })
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws on a white RGB canvas of `size` and writes it to `path` as PNG.
fn render(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> Result<(), EvalError> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bundled font parses; a failure here is a broken build, caught by the tests.
        let registered = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
        assert!(registered.is_ok(), "the bundled DejaVu Sans does not parse");
    });
    let error = |message: String| EvalError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        draw(root.clone()).map_err(|e| error(e.to_string()))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    let picture =
        RgbImage::from_raw(width, height, buffer).expect("buffer sized width × height × 3");
    picture
        .save_with_format(path, ImageFormat::Png)
        .map_err(|e| error(e.to_string()))
}

/// `[min, max]` of `values` widened by `pad` of its length on each side; a single value or an
/// empty slice gets a range of width 1 around it.
fn padded_range(values: &[f64], pad: f64) -> std::ops::Range<f64> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !min.is_finite() || !max.is_finite() {
        return 0.0..1.0;
    }
    if max - min <= f64::EPSILON * max.abs().max(1.0) {
        return min - 0.5..max + 0.5;
    }
    let margin = (max - min) * pad;
    min - margin..max + margin
}
