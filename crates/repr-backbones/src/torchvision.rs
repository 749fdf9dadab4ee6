//! Loading PyTorch weights with torchvision's parameter names into a [`Backbone`].
//!
//! The file is a state dict: `.safetensors` (F32, F16 or BF16; cast to f32) or a `torch.save`d
//! `.pt`/`.pth`. Keys map onto repr's parameter paths by this table (enum variant names such as
//! `ResNet` or `Basic` do not appear in torchvision's keys and are skipped when matching):
//!
//! | torchvision | repr | note |
//! | --- | --- | --- |
//! | `conv1.weight` | `conv1.weight` | |
//! | `bn1.weight`, `bn1.bias` | `bn1.gamma`, `bn1.beta` | every BatchNorm |
//! | `bn1.running_mean`, `bn1.running_var` | `bn1.running_mean`, `bn1.running_var` | |
//! | `layer{i}.{j}.conv{k}.weight`, `layer{i}.{j}.bn{k}.*` | the same, inside the block | |
//! | `layer{i}.0.downsample.0.weight` | `layer{i}.0.downsample.conv.weight` | 1×1 shortcut conv |
//! | `layer{i}.0.downsample.1.*` | `layer{i}.0.downsample.bn.*` | its BatchNorm |
//! | `fc.weight` `[out, in]`, `fc.bias` | `fc.weight` `[in, out]`, `fc.bias` | transposed |
//! | `*.num_batches_tracked` | — | ignored (unused in evaluation) |
//!
//! Anything in the file the backbone lacks is *unexpected*, anything the backbone has that the
//! file lacks is *missing*; both are listed in one [`ImportError::Keys`]. Prefixes passed as
//! `ignore` (e.g. `["fc."]` to put a pre-trained body under a new classifier) are neither
//! loaded nor reported.

use std::path::{Path, PathBuf};

use burn::store::{
    ApplyResult, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PathFilter,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

use crate::Backbone;

/// Why PyTorch weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read or parsed.
    #[error("{path}: cannot read PyTorch weights: {reason}")]
    Read {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file's keys do not match the backbone.
    #[error(
        "{path}: the weights do not match the backbone: missing {missing:?}, unexpected {unexpected:?}"
    )]
    Keys {
        /// The weights file.
        path: PathBuf,
        /// Backbone parameters the file has no tensor for.
        missing: Vec<String>,
        /// File tensors the backbone has no parameter for.
        unexpected: Vec<String>,
    },
    /// Tensors were found but could not be loaded (a shape or dtype that does not fit).
    #[error("{path}: {}", errors.join("; "))]
    Tensors {
        /// The weights file.
        path: PathBuf,
        /// One message per tensor, naming it with the expected and found shape.
        errors: Vec<String>,
    },
}

impl Backbone {
    /// Loads a torchvision state dict from `path` (`.safetensors`, `.pt` or `.pth`), leaving
    /// the parameters under the `ignore` prefixes (repr paths without variant names, e.g.
    /// `"fc."`) as they are. BatchNorm running statistics are loaded too.
    ///
    /// ```
    /// use repr_backbones::{BackboneConfig, ResNetConfig};
    ///
    /// let device = burn::tensor::Device::flex();
    /// let weights = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/resnet18/weights_f16.safetensors");
    /// // torchvision's ResNet-18 body under a new 3-class head.
    /// let backbone = BackboneConfig::from(ResNetConfig::resnet18().with_num_classes(3))
    ///     .init(&device)
    ///     .load_torchvision(weights.as_ref(), &["fc."])?;
    /// assert_eq!(backbone.num_features(), 512);
    /// # Ok::<(), repr_backbones::ImportError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImportError::Read`] for an unreadable file or extension, [`ImportError::Tensors`] for
    /// a tensor whose shape does not fit (naming it), [`ImportError::Keys`] listing missing and
    /// unexpected keys.
    pub fn load_torchvision(mut self, path: &Path, ignore: &[&str]) -> Result<Self, ImportError> {
        let read = |reason: String| ImportError::Read {
            path: path.to_path_buf(),
            reason,
        };
        // Only the backbone's own parameters outside `ignore` are loaded.
        let wanted: Vec<String> = self
            .collect(None, None, true)
            .into_iter()
            .map(|t| t.name)
            .filter(|name| !ignore.iter().any(|p| name.starts_with(p)))
            .collect();
        let filter = PathFilter::new().with_full_paths(wanted.clone());
        let remap = KeyRemapper::new()
            .add_pattern(r"\.downsample\.0\.", ".downsample.conv.")
            .and_then(|r| r.add_pattern(r"\.downsample\.1\.", ".downsample.bn."))
            .expect("valid patterns");
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let result: ApplyResult = match extension {
            "safetensors" => {
                let mut store = SafetensorsStore::from_file(path)
                    .remap(remap)
                    .with_from_adapter(adapter)
                    .skip_enum_variants(true)
                    .allow_partial(true)
                    // Shape errors come back in the result, named, with the key lists.
                    .validate(false)
                    .filter(filter);
                self.load_from(&mut store)
                    .map_err(|e| read(e.to_string()))?
            }
            "pt" | "pth" => {
                let mut store = PytorchStore::from_file(path)
                    .remap(remap)
                    .skip_enum_variants(true)
                    .allow_partial(true)
                    // Shape errors come back in the result, named, with the key lists.
                    .validate(false)
                    .filter(filter);
                // PytorchStore applies the PyTorch adapter itself, without a cast: a float
                // tensor keeps the file's dtype, so only float32 files are accepted.
                let result = self
                    .load_from(&mut store)
                    .map_err(|e| read(e.to_string()))?;
                if let Some(t) = self
                    .collect(None, None, true)
                    .into_iter()
                    .find(|t| t.dtype.is_float() && t.dtype != DType::F32)
                {
                    return Err(read(format!(
                        "{} is {:?}; .pt weights must be float32 (or use .safetensors, which \
                         is cast)",
                        t.name, t.dtype
                    )));
                }
                result
            }
            other => {
                return Err(read(format!(
                    "unknown extension `{other}`: expected .safetensors, .pt or .pth"
                )));
            }
        };
        if !result.errors.is_empty() {
            return Err(ImportError::Tensors {
                path: path.to_path_buf(),
                errors: result.errors.iter().map(|e| e.to_string()).collect(),
            });
        }
        let ignored = |name: &str| {
            ignore.iter().any(|p| name.starts_with(p)) || name.ends_with("num_batches_tracked")
        };
        let unexpected: Vec<String> = result
            .unused
            .iter()
            .filter(|name| !ignored(name))
            .cloned()
            .collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|name| !result.applied.iter().any(|a| a == *name))
            .cloned()
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(ImportError::Keys {
                path: path.to_path_buf(),
                missing,
                unexpected,
            });
        }
        Ok(self)
    }
}
