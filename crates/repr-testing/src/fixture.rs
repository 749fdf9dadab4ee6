//! PyTorch reference fixtures (`fixtures/` at the workspace root) and tolerant comparison.

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An array as the fixture files store it: row-major `data` of the given `shape`.
///
/// Every dtype (`f32`, `f64`, `i64`, `u8`) fits exactly in `f64`.
#[derive(Debug, Clone, Deserialize)]
pub struct Array {
    /// `f32`, `f64`, `i64` or `u8`.
    pub dtype: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Flat values in row-major order.
    pub data: Vec<f64>,
}

impl Array {
    /// The values as `f32` (exact for `f32` fixtures).
    pub fn f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }

    /// The values as `i64` (class labels, indices).
    pub fn i64(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }

    /// The shape as a fixed-size array, panicking with the actual shape when the rank differs.
    pub fn dims<const D: usize>(&self) -> [usize; D] {
        self.shape
            .clone()
            .try_into()
            .unwrap_or_else(|shape| panic!("fixture array has shape {shape:?}, expected rank {D}"))
    }
}

/// Path of a file under the workspace's `fixtures/` folder.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative)
}

/// Reads and deserializes a JSON fixture, panicking with the path on failure.
pub fn read_fixture<T: DeserializeOwned>(relative: &str) -> T {
    let path = fixture_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse fixture {}: {e}", path.display()))
}

/// Asserts `|actual - expected| <= atol + rtol * |expected|` element-wise, naming `what`, the first
/// failing index and the worst error.
// `!(err <= tol)` on purpose: a NaN must fail.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn assert_close(actual: &[f32], expected: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} values, expected {}",
        actual.len(),
        expected.len()
    );
    let mut worst = (0usize, 0.0f64);
    let mut first_bad = None;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (a as f64 - e).abs();
        if !(err <= atol + rtol * e.abs()) {
            first_bad.get_or_insert(i);
        }
        if err > worst.1 || err.is_nan() {
            worst = (i, err);
        }
    }
    if let Some(i) = first_bad {
        panic!(
            "{what}: element {i} is {} but expected {} (atol {atol}, rtol {rtol}); worst error {} at {}",
            actual[i], expected[i], worst.1, worst.0
        );
    }
}
