//! Embeddings of a dataset from any layer of a backbone, and the raw-pixel baseline.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use repr_backbones::{Backbone, Pooling};
use repr_data::{ImageBatcher, ImageDataset, Normalize};
use serde::{Deserialize, Serialize};

use crate::{Embeddings, EvalError};

/// Where in the backbone embeddings are taken.
///
/// In TOML: `layer = "final"`, `layer = { stage = 3 }` (ResNet) or `layer = { block = 6 }`
/// (ViT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The final features ([`Backbone::forward_features`]; a ViT's tokens after its final
    /// LayerNorm).
    #[default]
    Final,
    /// A ResNet's stage `n`: 1 to 4 for `layer1` … `layer4` (4 is the same as `Final`), 0 for
    /// the stem.
    Stage(usize),
    /// A ViT's block `n`: its output tokens, 1 to the depth (before the final LayerNorm), 0 for
    /// the encoder input (patch embeddings, CLS and positions).
    Block(usize),
}

impl Layer {
    /// The layer index of [`Backbone::embed_at`], checked against `backbone` and `pooling`.
    fn index(self, backbone: &Backbone, pooling: Pooling) -> Result<Option<usize>, EvalError> {
        let index = match (self, backbone) {
            (Layer::Final, _) => None,
            (Layer::Stage(n), Backbone::ResNet(_)) | (Layer::Block(n), Backbone::ViT(_)) => Some(n),
            (Layer::Stage(_), Backbone::ViT(_)) => {
                return Err(EvalError::invalid(
                    "config.layer",
                    "a ViT has blocks, not stages: use { block = n }",
                ));
            }
            (Layer::Block(_), Backbone::ResNet(_)) => {
                return Err(EvalError::invalid(
                    "config.layer",
                    "a ResNet has stages, not blocks: use { stage = n }",
                ));
            }
        };
        backbone.check_layer(index, pooling).map_err(|e| {
            let field = match e {
                repr_backbones::ConfigError::Pooling { .. } => "config.pooling",
                _ => "config.layer",
            };
            EvalError::invalid(field, e.to_string())
        })?;
        Ok(index)
    }
}

/// Settings of [`embed_dataset`]. The default is the reference protocol: the final feature map
/// with global average pooling (for a ViT, the mean of its patch tokens; [`Pooling::Cls`] takes
/// the CLS token instead).
#[derive(Config, Debug)]
pub struct EmbedConfig {
    /// The layer whose activations are pooled.
    #[config(default = "Layer::Final")]
    pub layer: Layer,
    /// How the feature map is pooled into a vector (`Cls`: a ViT's CLS token).
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
/// pool over height and width (or take a ViT's CLS token): [`Backbone::embed_at`].
///
/// The backbone runs in inference mode ([`Module::valid`]: BatchNorm running statistics, no
/// autodiff graph) on `device` without autodiff, so a training copy may be passed as is. For
/// the random-initialisation baseline, pass a freshly initialised backbone.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use repr_backbones::{BackboneConfig, Pooling, ResNetConfig, Stem, ViTConfig};
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
///
/// // A ViT with 4-pixel patches: the CLS token after block 1 of 2.
/// let vit = BackboneConfig::from(ViTConfig::new(8, 4, 16, 2, 2, 32).with_in_channels(1));
/// let vit = vit.init(&device);
/// let config = EmbedConfig::new().with_layer(Layer::Block(1)).with_pooling(Pooling::Cls);
/// let e = embed_dataset(&vit, &data, &Normalize::identity(1), &config, &device)?;
/// assert_eq!((e.len, e.dim), (3, 16));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EvalError::InvalidInput`] when the batch size is 0, the layer does not exist or is of the
/// other backbone kind, the pooling is `Cls` for a ResNet, or the normalisation's channel count
/// differs from the images'; [`EvalError::NonFinite`] when the backbone produces NaN or
/// infinity.
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
    let layer = config.layer.index(backbone, config.pooling)?;
    let plain = device.clone().without_autodiff();
    let backbone = backbone.valid().to_device(&plain);
    let (pooling, features) = (config.pooling, backbone.num_features());
    embed_with(
        dataset,
        normalize,
        config.batch_size,
        device,
        |images| {
            backbone
                .embed_at(images, layer, pooling)
                .expect("the layer was checked against the backbone")
        },
        |_| {},
    )
    .map(|e| {
        if dataset.is_empty() {
            Embeddings { dim: features, ..e }
        } else {
            e
        }
    })
}

/// The one embedding loop: every image of `dataset`, in order, normalised by `normalize` and
/// given to `encoder` in batches of `batch_size` on `device` without autodiff; `encoder` maps
/// `[batch, channels, height, width]` to `[batch, dim]` (a backbone's pooled layer, a method's
/// trained embedding, anything). `progress` is told the images embedded so far after each
/// batch. [`embed_dataset`] is this with a backbone layer as the encoder.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use repr_data::{ImageDataset, Normalize};
///
/// let device = Device::flex();
/// let data = ImageDataset::new(vec![0, 255, 51, 102], vec![0, 1], [1, 1, 2], vec!["a".into(), "b".into()])?;
/// // An encoder that sums each image's pixels.
/// let e = repr_eval::embed_with(&data, &Normalize::identity(1), 1, &device,
///     |x: Tensor<4>| x.sum_dim(3).flatten::<2>(1, 3), |_| {})?;
/// assert_eq!((e.len, e.dim), (2, 1));
/// assert!((e.data[0] - 1.0).abs() < 1e-6 && (e.data[1] - 0.6).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`EvalError::InvalidInput`] when the batch size is 0 or the normalisation's channel count
/// differs from the images'; [`EvalError::NonFinite`] when the encoder produces NaN or
/// infinity.
pub fn embed_with(
    dataset: &ImageDataset,
    normalize: &Normalize,
    batch_size: usize,
    device: &Device,
    mut encoder: impl FnMut(Tensor<4>) -> Tensor<2>,
    mut progress: impl FnMut(usize),
) -> Result<Embeddings, EvalError> {
    if batch_size == 0 {
        return Err(EvalError::invalid("batch_size", "must be at least 1"));
    }
    check_channels(dataset, normalize)?;
    let device = device.clone().without_autodiff();
    let batcher = ImageBatcher::new(normalize.clone());
    let shape = dataset.shape();
    let mut data = Vec::new();
    let mut dim = 0;
    let mut floats = Vec::new();
    for start in (0..dataset.len()).step_by(batch_size) {
        let end = (start + batch_size).min(dataset.len());
        let images: Vec<&[u8]> = (start..end).map(|i| dataset.image(i)).collect();
        batcher.normalize_into(&images, &mut floats);
        let labels = vec![0; end - start];
        let batch = ImageBatcher::to_batch(std::mem::take(&mut floats), &labels, shape, &device);
        let embedded = encoder(batch.images); // [b, dim]
        dim = embedded.dims()[1];
        data.extend(embedded.into_data().iter::<f32>());
        progress(end);
    }
    let embeddings = Embeddings {
        len: dataset.len(),
        dim,
        data,
    };
    embeddings.check("encoder output")?;
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

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};
    use repr_backbones::{BackboneConfig, ResNetConfig, Stem, ViTConfig};

    use super::*;

    fn dataset() -> ImageDataset {
        let pixels = (0..3 * 8 * 8).map(|i| (i * 37 % 256) as u8).collect();
        ImageDataset::new(
            pixels,
            vec![0, 1, 0],
            [1, 8, 8],
            vec!["a".into(), "b".into()],
        )
        .unwrap()
    }

    fn vit(device: &Device) -> Backbone {
        let config = ViTConfig::new(8, 4, 16, 2, 2, 32)
            .with_in_channels(1)
            .with_num_classes(0);
        BackboneConfig::from(config).init(device)
    }

    fn values(x: Tensor<2>) -> Vec<f64> {
        x.into_data().iter::<f64>().collect()
    }

    /// A ViT's embeddings are `Backbone::embed_at`'s: the CLS token of the final tokens (the
    /// same as `embed`), and the mean patch token after block 1, in batches of 2.
    fn vit_layers_and_cls(device: &Device) {
        let data = dataset();
        let normalize = Normalize::identity(1);
        let model = vit(device);
        let raw = raw_pixel_embeddings(&data, &normalize);
        let x = Tensor::<4>::from_data(TensorData::new(raw.data, [3, 1, 8, 8]), device);
        for (layer, pooling, expected) in [
            (Layer::Final, Pooling::Cls, model.embed(x.clone())),
            (
                Layer::Block(1),
                Pooling::Avg,
                Pooling::Avg.pool(model.forward_layers(x.clone(), &[1]).unwrap().remove(0)),
            ),
        ] {
            let config = EmbedConfig::new()
                .with_layer(layer)
                .with_pooling(pooling)
                .with_batch_size(2);
            let e = embed_dataset(&model, &data, &normalize, &config, device).unwrap();
            assert_eq!((e.len, e.dim), (3, 16));
            let what = format!("{layer:?} {pooling:?}");
            repr_testing::assert_close(&e.data, &values(expected), 1e-5, 1e-4, &what);
        }
    }

    fn rejects_layers_and_poolings_of_the_other_kind(device: &Device) {
        let data = dataset();
        let resnet = ResNetConfig::resnet18()
            .with_stem(Stem::Cifar)
            .with_width(4)
            .with_in_channels(1)
            .with_num_classes(0);
        let resnet = BackboneConfig::from(resnet).init(device);
        let normalize = Normalize::identity(1);
        for (model, layer, pooling, field) in [
            (vit(device), Layer::Stage(1), Pooling::Avg, "config.layer"),
            (vit(device), Layer::Block(3), Pooling::Avg, "config.layer"),
            (
                resnet.clone(),
                Layer::Block(1),
                Pooling::Avg,
                "config.layer",
            ),
            (
                resnet.clone(),
                Layer::Stage(5),
                Pooling::Avg,
                "config.layer",
            ),
            (resnet, Layer::Final, Pooling::Cls, "config.pooling"),
        ] {
            let config = EmbedConfig::new().with_layer(layer).with_pooling(pooling);
            let err = embed_dataset(&model, &data, &normalize, &config, device).unwrap_err();
            assert!(
                matches!(&err, EvalError::InvalidInput { field: f, .. } if f == field),
                "{layer:?} {pooling:?}: {err}"
            );
        }
    }

    repr_testing::backend_tests!(
        vit_layers_and_cls,
        rejects_layers_and_poolings_of_the_other_kind
    );

    #[test]
    fn block_and_cls_in_config_files() {
        let config: EmbedConfig =
            toml::from_str("layer = { block = 6 }\npooling = \"cls\"\nbatch_size = 8").unwrap();
        assert_eq!(
            (config.layer, config.pooling),
            (Layer::Block(6), Pooling::Cls)
        );
    }
}
