//! Embeddings of a dataset from any layer of a backbone, and the raw-pixel baseline.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::Device;
use repr_backbones::{Backbone, Pooling, Stage};
use repr_data::{ImageBatcher, ImageDataset, Normalize};
use serde::{Deserialize, Serialize};

use crate::{Embeddings, EvalError};

/// Where in the backbone embeddings are taken.
///
/// In TOML: `layer = "final"` or `layer = { stage = 3 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The last feature map ([`Backbone::forward_features`]).
    #[default]
    Final,
    /// The output of stage `n`, 1 to 4 for a ResNet (`layer1` … `layer4`; 4 is the same as
    /// `Final`).
    Stage(usize),
}

impl Layer {
    fn stage(self) -> Result<Option<Stage>, EvalError> {
        match self {
            Layer::Final => Ok(None),
            Layer::Stage(1) => Ok(Some(Stage::Layer1)),
            Layer::Stage(2) => Ok(Some(Stage::Layer2)),
            Layer::Stage(3) => Ok(Some(Stage::Layer3)),
            Layer::Stage(4) => Ok(Some(Stage::Layer4)),
            Layer::Stage(n) => Err(EvalError::invalid(
                "config.layer",
                format!("stage {n} does not exist; a ResNet has stages 1 to 4"),
            )),
        }
    }
}

/// Settings of [`embed_dataset`]. The default is the reference protocol: the final feature map
/// with global average pooling.
#[derive(Config, Debug)]
pub struct EmbedConfig {
    /// The layer whose activations are pooled.
    #[config(default = "Layer::Final")]
    pub layer: Layer,
    /// How the feature map is pooled into a vector.
    #[config(default = "Pooling::Avg")]
    pub pooling: Pooling,
    /// Images per forward pass.
    #[config(default = 256)]
    pub batch_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Embeds every image of `dataset`, in order: normalise, run `backbone` up to `config.layer`,
/// pool over height and width.
///
/// The backbone runs in inference mode ([`Module::valid`]: BatchNorm running statistics, no
/// autodiff graph) on `device` without autodiff, so a training copy may be passed as is. For
/// the random-initialisation baseline, pass a freshly initialised backbone.
///
/// ```
/// use burn::tensor::Device;
/// use repr_backbones::{BackboneConfig, ResNetConfig, Stem};
/// use repr_data::{ImageDataset, Normalize};
/// use repr_eval::{embed_dataset, EmbedConfig, Layer};
///
/// let device = Device::flex();
/// let config = ResNetConfig::resnet18().with_stem(Stem::Cifar).with_width(4)
///     .with_in_channels(1).with_num_classes(0);
/// let backbone = BackboneConfig::from(config).init(&device);
/// let data = ImageDataset::new(vec![0; 3 * 8 * 8], vec![0, 1, 0], [1, 8, 8], vec!["a".into(), "b".into()])?;
/// let config = EmbedConfig::new().with_layer(Layer::Stage(2)).with_batch_size(2);
/// let e = embed_dataset(&backbone, &data, &Normalize::identity(1), &config, &device)?;
/// assert_eq!((e.len, e.dim), (3, 8)); // layer2 has 2 * width channels
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EvalError::InvalidInput`] when the batch size is 0, the stage does not exist, or the
/// normalisation's channel count differs from the images'; [`EvalError::NonFinite`] when the
/// backbone produces NaN or infinity.
pub fn embed_dataset(
    backbone: &Backbone,
    dataset: &ImageDataset,
    normalize: &Normalize,
    config: &EmbedConfig,
    device: &Device,
) -> Result<Embeddings, EvalError> {
    if config.batch_size == 0 {
        return Err(EvalError::invalid(
            "config.batch_size",
            "must be at least 1",
        ));
    }
    check_channels(dataset, normalize)?;
    let stage = config.layer.stage()?;
    let device = device.clone().without_autodiff();
    let backbone = backbone.valid().to_device(&device);
    let batcher = ImageBatcher::new(normalize.clone());
    let shape = dataset.shape();
    let mut data = Vec::new();
    let mut dim = 0;
    let mut floats = Vec::new();
    for start in (0..dataset.len()).step_by(config.batch_size) {
        let end = (start + config.batch_size).min(dataset.len());
        let images: Vec<&[u8]> = (start..end).map(|i| dataset.image(i)).collect();
        batcher.normalize_into(&images, &mut floats);
        let labels = vec![0; end - start];
        let batch = ImageBatcher::to_batch(std::mem::take(&mut floats), &labels, shape, &device);
        let features = match stage {
            None => backbone.forward_features(batch.images),
            Some(stage) => backbone
                .forward_intermediates(batch.images, &[stage])
                .pop()
                .expect("one tensor per requested stage"),
        };
        let pooled = backbone.pool(features, config.pooling); // [b, channels]
        dim = pooled.dims()[1];
        data.extend(pooled.into_data().iter::<f32>());
    }
    if dataset.is_empty() {
        dim = backbone.num_features();
    }
    let embeddings = Embeddings {
        len: dataset.len(),
        dim,
        data,
    };
    embeddings.check("backbone output")?;
    Ok(embeddings)
}

/// The raw-pixel baseline: each image's normalised pixel values (`(v / 255 - mean) / std` per
/// channel), flattened in CHW order into one vector.
///
/// ```
/// use repr_data::{ImageDataset, Normalize};
/// use repr_eval::raw_pixel_embeddings;
///
/// let data = ImageDataset::new(vec![0, 255, 51, 102], vec![0, 1], [1, 1, 2], vec!["a".into(), "b".into()])?;
/// let e = raw_pixel_embeddings(&data, &Normalize::identity(1));
/// assert_eq!((e.len, e.dim), (2, 2));
/// assert_eq!(e.row(0), &[0.0, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// If the normalisation's channel count differs from the images' (a programming error: both
/// come from the same dataset).
pub fn raw_pixel_embeddings(dataset: &ImageDataset, normalize: &Normalize) -> Embeddings {
    if let Err(e) = check_channels(dataset, normalize) {
        panic!("raw_pixel_embeddings: {e}");
    }
    let tables = normalize.tables();
    let mut data = vec![0.0; dataset.pixels().len()];
    let dim = dataset.shape().iter().product();
    for (i, out) in data.chunks_exact_mut(dim).enumerate() {
        Normalize::write_image(&tables, dataset.image(i), out);
    }
    Embeddings {
        data,
        len: dataset.len(),
        dim,
    }
}

fn check_channels(dataset: &ImageDataset, normalize: &Normalize) -> Result<(), EvalError> {
    if normalize.mean.len() != dataset.channels() || normalize.std.len() != dataset.channels() {
        return Err(EvalError::invalid(
            "normalize",
            format!(
                "{} means and {} stds for images with {} channels",
                normalize.mean.len(),
                normalize.std.len(),
                dataset.channels()
            ),
        ));
    }
    Ok(())
}
