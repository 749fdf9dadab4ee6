//! Positional embeddings of the patch grid: the fixed 2-D sine-cosine table, and the bicubic
//! resampling of a learned table to another grid.

use burn::tensor::{Device, Tensor, TensorData};

/// The fixed 2-D sine-cosine positional embedding of MAE (He et al. 2021, "Masked Autoencoders
/// Are Scalable Vision Learners"), for the patch tokens of a `[rows, cols]` grid in row-major
/// order: token `k` sits at row `k / cols`, column `k % cols`.
///
/// Features `0..dim/2` encode the column and `dim/2..dim` the row (MAE's order), each as the 1-D
/// Transformer embedding (Vaswani et al. 2017) of width `w = dim / 2`: `sin(pos · ω_i)` for
/// `i < w/2`, then `cos(pos · ω_i)`, with `ω_i = 10000^(-i / (w/2))`.
///
/// # Shapes
/// - output: `[rows · cols, dim]`, flat row-major
///
/// # Panics
/// If `dim` is not divisible by 4.
///
/// ```
/// use repr_backbones::vit::sincos_2d;
///
/// let table = sincos_2d(8, [2, 3]);
/// assert_eq!(table.len(), 6 * 8);
/// // Token 0 (row 0, column 0): sin 0 = 0, cos 0 = 1 in both halves.
/// assert_eq!(&table[..8], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
/// ```
pub fn sincos_2d(dim: usize, [rows, cols]: [usize; 2]) -> Vec<f32> {
    assert!(
        dim.is_multiple_of(4),
        "2-D sin-cos positions need dim divisible by 4, got {dim}"
    );
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|i| 10000f64.powf(-(i as f64) / quarter as f64))
        .collect();
    let mut table = Vec::with_capacity(rows * cols * dim);
    for row in 0..rows {
        for col in 0..cols {
            for pos in [col, row] {
                let angles = omega.iter().map(|w| pos as f64 * w);
                table.extend(angles.clone().map(|a| a.sin() as f32));
                table.extend(angles.map(|a| a.cos() as f32));
            }
        }
    }
    table
}

/// The fixed sine-cosine table as a tensor, a zero row for CLS first.
///
/// # Shapes
/// - output: `[1, 1 + rows · cols, dim]`
pub(super) fn sincos_tensor(dim: usize, grid: [usize; 2], device: &Device) -> Tensor<3> {
    let mut table = vec![0.0f32; dim];
    table.extend(sincos_2d(dim, grid));
    let tokens = 1 + grid[0] * grid[1];
    Tensor::from_data(TensorData::new(table, [1, tokens, dim]), device)
}

/// PyTorch's cubic convolution coefficient (`A = -0.75`) for a tap at distance `x`.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.75;
    let x = x.abs();
    if x <= 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// The `[output, input]` matrix of 1-D bicubic resampling as PyTorch's
/// `interpolate(mode="bicubic", align_corners=False)` computes it (no antialiasing): output `j`
/// reads source coordinate `(j + 0.5) · input / output - 0.5` with four taps, clamped at the
/// borders.
pub fn bicubic_matrix(input: usize, output: usize) -> Vec<f64> {
    let mut matrix = vec![0.0; output * input];
    let scale = input as f64 / output as f64;
    for j in 0..output {
        let source = (j as f64 + 0.5) * scale - 0.5;
        let floor = source.floor();
        let t = source - floor;
        for (tap, distance) in [(-1, 1.0 + t), (0, t), (1, 1.0 - t), (2, 2.0 - t)] {
            let index = (floor as i64 + tap).clamp(0, input as i64 - 1) as usize;
            matrix[j * input + index] += cubic(distance);
        }
    }
    matrix
}

/// Resamples a table of patch positions from grid `from` to grid `to` by bicubic interpolation
/// of each feature over the grid (PyTorch's `bicubic`, `align_corners=False`, as timm's
/// `resample_abs_pos_embed` and DeiT's fine-tuning at a higher resolution). Written as one
/// matrix product with the Kronecker product of the row and column matrices, so that it is
/// differentiable on every backend.
///
/// # Shapes
/// - `table`: `[batch, from[0] · from[1], dim]`, row-major over the grid
/// - output: `[batch, to[0] · to[1], dim]`
pub(super) fn resample(table: Tensor<3>, from: [usize; 2], to: [usize; 2]) -> Tensor<3> {
    if from == to {
        return table;
    }
    let [batch, tokens, dim] = table.dims();
    assert_eq!(tokens, from[0] * from[1], "table does not fit its grid");
    let rows = bicubic_matrix(from[0], to[0]);
    let cols = bicubic_matrix(from[1], to[1]);
    let (n_in, n_out) = (from[0] * from[1], to[0] * to[1]);
    let mut kron = vec![0.0f32; n_out * n_in];
    for (r_out, r_in, c_out, c_in) in grid_pairs(to, from) {
        let weight = rows[r_out * from[0] + r_in] * cols[c_out * from[1] + c_in];
        kron[(r_out * to[1] + c_out) * n_in + r_in * from[1] + c_in] = weight as f32;
    }
    let matrix = Tensor::<2>::from_data(TensorData::new(kron, [n_out, n_in]), &table.device())
        .reshape([1, n_out, n_in])
        .expand([batch, n_out, n_in]);
    let resampled = matrix.matmul(table); // [batch, n_out, dim]
    debug_assert_eq!(resampled.dims(), [batch, n_out, dim]);
    resampled
}

/// Every (output row, input row, output column, input column).
fn grid_pairs(
    to: [usize; 2],
    from: [usize; 2],
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..to[0]).flat_map(move |r_out| {
        (0..from[0]).flat_map(move |r_in| {
            (0..to[1])
                .flat_map(move |c_out| (0..from[1]).map(move |c_in| (r_out, r_in, c_out, c_in)))
        })
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    use super::*;

    #[test]
    fn bicubic_rows_sum_to_one_and_same_size_is_identity() {
        for (input, output) in [(8, 8), (8, 12), (14, 7), (1, 3), (3, 1)] {
            let m = bicubic_matrix(input, output);
            for row in m.chunks(input) {
                let sum: f64 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-12, "{input}->{output}: {sum}");
            }
            if input == output {
                for (i, row) in m.chunks(input).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        assert!((v - f64::from(i == j)).abs() < 1e-12);
                    }
                }
            }
        }
    }

    /// The Kronecker-product resampling equals Burn's own bicubic `interpolate` with
    /// `align_corners = false` (PyTorch's definition), feature by feature.
    fn resample_matches_interpolate(device: &Device) {
        let (from, to, dim) = ([4, 5], [6, 3], 3);
        let table = Tensor::<3>::random(
            [2, from[0] * from[1], dim],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        let ours = resample(table.clone(), from, to);
        // The reference is Burn's `interpolate` on flex, from the same values: on wgpu
        // (lavapipe, Burn 0.22.1's cubecl kernel) bicubic `interpolate` itself is off by up to
        // 0.3 here (element 0: -1.1638 against flex's and ndarray's -1.2222, which our
        // `resample` matches on every backend).
        let table = Tensor::<3>::from_data(table.into_data(), &Device::flex());
        let image = table.swap_dims(1, 2).reshape([2, dim, from[0], from[1]]);
        let options = InterpolateOptions::new(InterpolateMode::Bicubic)
            .with_align_corners(false)
            .with_output_size(to);
        let theirs = interpolate(image, options)
            .reshape([2, dim, to[0] * to[1]])
            .swap_dims(1, 2);
        let ours = ours.into_data().try_into_vec_as::<f32>().unwrap();
        let theirs = theirs.into_data().try_into_vec_as::<f64>().unwrap();
        repr_testing::assert_close(&ours, &theirs, 1e-5, 1e-5, "bicubic resampling");
    }

    /// MAE's table by its definition: token (row 1, column 2) of a 2x3 grid, dim 8.
    #[test]
    fn sincos_matches_the_definition() {
        let table = sincos_2d(8, [2, 3]);
        let token = &table[5 * 8..6 * 8];
        let w = [1.0, 0.01f64]; // 10000^(-i/2), i = 0, 1
        let expected = [
            (2.0 * w[0]).sin(),
            (2.0 * w[1]).sin(),
            (2.0 * w[0]).cos(),
            (2.0 * w[1]).cos(),
            (1.0 * w[0]).sin(),
            (1.0 * w[1]).sin(),
            (1.0 * w[0]).cos(),
            (1.0 * w[1]).cos(),
        ];
        repr_testing::assert_close(token, &expected, 1e-7, 0.0, "sincos token");
    }

    repr_testing::backend_tests!(resample_matches_interpolate);
}
