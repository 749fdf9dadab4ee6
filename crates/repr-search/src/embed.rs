//! Images to unit vectors: decoded in parallel, normalised into one batch, run through the
//! caller's encoder, checked and L2-normalised.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use repr_data::{DataError, ImageBatcher};

use crate::gallery::normalize;
use crate::{ModelIdentity, Preprocess, SearchError};

/// Runs `encoder` on `images` (channel-first bytes of `preprocess.shape()`, from `paths`),
/// checks that it returns one finite row per image (of `dim` values when given) and
/// normalises each row: the vectors, row-major, and their dimension.
///
/// # Errors
/// [`SearchError::EncoderShape`], [`SearchError::NonFinite`] naming the images at fault.
pub(crate) fn encode(
    images: &[Vec<u8>],
    paths: &[PathBuf],
    preprocess: &Preprocess,
    dim: Option<usize>,
    device: &Device,
    encoder: &mut impl FnMut(Tensor<4>) -> Tensor<2>,
) -> Result<(Vec<f32>, usize), SearchError> {
    let [c, h, w] = preprocess.shape();
    let n = images.len();
    let pixels: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let mut floats = Vec::new();
    ImageBatcher::new(preprocess.normalize.clone()).normalize_into(&pixels, &mut floats);
    let batch = Tensor::<4>::from_data(TensorData::new(floats, [n, c, h, w]), device);
    let output = encoder(batch); // [n, dim]
    let [rows, columns] = output.dims();
    if rows != n || dim.is_some_and(|dim| dim != columns) || columns == 0 {
        return Err(SearchError::EncoderShape {
            images: n,
            dim: dim.unwrap_or(columns.max(1)),
            found: vec![rows, columns],
        });
    }
    let mut vectors: Vec<f32> = output.into_data().iter::<f32>().collect();
    let bad: Vec<PathBuf> = vectors
        .chunks_exact(columns)
        .zip(paths)
        .filter(|(row, _)| row.iter().any(|v| !v.is_finite()))
        .map(|(_, path)| path.clone())
        .collect();
    if !bad.is_empty() {
        return Err(SearchError::NonFinite { paths: bad });
    }
    for row in vectors.chunks_exact_mut(columns) {
        normalize(row);
    }
    Ok((vectors, columns))
}

/// The unit vectors of the image files `paths` (row-major, one row per file, in order):
/// decoded in parallel under the `max_pixels` limit, preprocessed by `preprocess`, encoded by
/// `encoder` in batches of `batch_size` on `device` (without autodiff). This is how a query
/// image is embedded as the index's files were.
///
/// # Errors
/// [`SearchError::InvalidInput`] for a zero batch size or an impossible `preprocess`;
/// [`SearchError::Image`] for the first file that cannot be read;
/// [`SearchError::EncoderShape`], [`SearchError::NonFinite`].
pub fn embed_images<P: AsRef<Path> + Sync>(
    paths: &[P],
    preprocess: &Preprocess,
    max_pixels: u64,
    batch_size: usize,
    device: &Device,
    mut encoder: impl FnMut(Tensor<4>) -> Tensor<2>,
) -> Result<Vec<f32>, SearchError> {
    preprocess.check()?;
    if batch_size == 0 {
        return Err(SearchError::invalid("batch_size", "must be at least 1"));
    }
    let device = device.clone().without_autodiff();
    let mut vectors = Vec::new();
    let mut dim = None;
    for batch in paths.chunks(batch_size) {
        let load = |path: &P| preprocess.load(path.as_ref(), max_pixels);
        let name = |path: &P| path.as_ref().to_path_buf();
        let (rows, columns) =
            embed_batch(batch, load, name, preprocess, dim, &device, &mut encoder)?;
        dim = Some(columns);
        vectors.extend(rows);
    }
    Ok(vectors)
}

/// The unit vector of one image file's content held in memory (an upload), for a search of
/// an index built by `identity`: decoded under the `max_pixels` limit, preprocessed by
/// `identity.preprocess` exactly as [`embed_images`] and the index do, encoded on `device`
/// (without autodiff); the encoder must give `identity.dim` values. Errors name the image
/// `name`.
///
/// # Errors
/// [`SearchError::Image`] when the bytes are not an image this crate decodes (or one over
/// the pixel limit); [`SearchError::InvalidInput`] for an impossible preprocessing;
/// [`SearchError::EncoderShape`], [`SearchError::NonFinite`].
pub fn embed_image_bytes(
    bytes: &[u8],
    name: &Path,
    identity: &ModelIdentity,
    max_pixels: u64,
    device: &Device,
    mut encoder: impl FnMut(Tensor<4>) -> Tensor<2>,
) -> Result<Vec<f32>, SearchError> {
    let preprocess = &identity.preprocess;
    preprocess.check()?;
    let device = device.clone().without_autodiff();
    let load = |bytes: &&[u8]| preprocess.load_bytes(bytes, name, max_pixels);
    let name = |_: &&[u8]| name.to_path_buf();
    let dim = Some(identity.dim);
    let (vector, _) = embed_batch(&[bytes], load, name, preprocess, dim, &device, &mut encoder)?;
    Ok(vector)
}

/// Loads `items` in parallel with `load` (each named by `name` in errors) and encodes them as
/// one batch: see [`encode`].
fn embed_batch<T: Sync>(
    items: &[T],
    load: impl Fn(&T) -> Result<Vec<u8>, DataError> + Send + Sync,
    name: impl Fn(&T) -> PathBuf,
    preprocess: &Preprocess,
    dim: Option<usize>,
    device: &Device,
    encoder: &mut impl FnMut(Tensor<4>) -> Tensor<2>,
) -> Result<(Vec<f32>, usize), SearchError> {
    let images = items.par_iter().map(load).collect::<Result<Vec<_>, _>>()?;
    let names: Vec<PathBuf> = items.iter().map(name).collect();
    encode(&images, &names, preprocess, dim, device, encoder)
}
