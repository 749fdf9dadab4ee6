//! Reading PyTorch state dicts and loading them into a module by an explicit key table.
//!
//! [`StateDict::read`] reads a state dict saved by PyTorch, as `.safetensors` (`safetensors.torch
//! .save_file`) or `.pt`/`.pth` (`torch.save(model.state_dict())`), into f32 [`TensorData`]
//! keyed by PyTorch's names. A model's importer then renames the keys to repr's parameter paths
//! (and splits or reshapes tensors where the layouts differ), and [`StateDict::load_into`] puts
//! them into the module: PyTorch's `Linear` weights `[out, in]` are transposed to Burn's
//! `[in, out]`, and a normalization layer's `weight`/`bias` fill Burn's `gamma`/`beta`
//! (burn-store's `PyTorchToBurnAdapter`). Every parameter of the module must be filled and every
//! tensor used, or [`ImportError::Keys`] lists the missing and unexpected keys.
//!
//! ```
//! use burn::module::Module;
//! use burn::nn::LinearConfig;
//! use burn::tensor::{Device, TensorData};
//! use repr_backbones::StateDict;
//!
//! let device = Device::flex();
//! let mut dict = StateDict::new("in memory");
//! // A PyTorch nn.Linear(2, 3): weight [out, in].
//! dict.insert("weight", TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]));
//! dict.insert("bias", TensorData::new(vec![0.5f32, 0., -0.5], [3]));
//! let linear = dict
//!     .load_into(LinearConfig::new(2, 3).init(&device), &[])
//!     .unwrap();
//! // Burn's weight is [in, out].
//! assert_eq!(linear.weight.val().dims(), [2, 3]);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, ModuleSnapshot, ModuleStore, PathFilter, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore, bridge,
};
use burn::tensor::{DType, TensorData};

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
    /// A tensor is not floating point (only F64, F32, F16 and BF16 are read).
    #[error("{path}: tensor `{key}` has dtype {dtype}; only float tensors can be loaded")]
    Dtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's key in the file.
        key: String,
        /// Its dtype, as Burn names it.
        dtype: String,
    },
    /// The file's keys do not match the module.
    #[error(
        "{path}: the weights do not match the model: missing {missing:?}, unexpected {unexpected:?}"
    )]
    Keys {
        /// The weights file.
        path: PathBuf,
        /// Module parameters (repr paths) the file has no tensor for.
        missing: Vec<String>,
        /// File tensors (after renaming) the module has no parameter for.
        unexpected: Vec<String>,
    },
    /// Tensors whose shape does not fit their parameter.
    #[error("{path}: shapes do not fit: {}", mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Shapes {
        /// The weights file.
        path: PathBuf,
        /// One entry per parameter, sorted by key.
        mismatches: Vec<ShapeMismatch>,
    },
    /// Tensors that could not be loaded for another reason (a failed conversion).
    #[error("{path}: {}", errors.join("; "))]
    Tensors {
        /// The weights file.
        path: PathBuf,
        /// One message per tensor, naming it.
        errors: Vec<String>,
    },
}

/// A tensor whose shape differs from its parameter's, in Burn's layout (a `Linear` weight is
/// `[in, out]`, the transpose of the file's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` expects {expected:?}, the file has {found:?}")]
pub struct ShapeMismatch {
    /// The parameter's path (without enum variant names).
    pub key: String,
    /// The parameter's shape.
    pub expected: Vec<usize>,
    /// The shape of the file's tensor, after the PyTorch → Burn transpose.
    pub found: Vec<usize>,
}

/// A PyTorch state dict: tensor name → f32 data, sorted by name.
///
/// Integer buffers named `*.num_batches_tracked` (BatchNorm's step counter, unused in
/// evaluation and by Burn) are dropped when reading; any other non-float tensor is an
/// [`ImportError::Dtype`].
#[derive(Debug, Clone)]
pub struct StateDict {
    path: PathBuf,
    tensors: BTreeMap<String, TensorData>,
}

impl StateDict {
    /// An empty state dict; `path` names its source in errors.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            tensors: BTreeMap::new(),
        }
    }

    /// Reads `path`: `.safetensors` (F64, F32, F16 or BF16 tensors) or a `torch.save`d state
    /// dict `.pt`/`.pth` (a flat dict of tensors). Float tensors are cast to f32.
    ///
    /// # Errors
    /// [`ImportError::Read`] for a missing or malformed file or an unknown extension,
    /// [`ImportError::Dtype`] for a non-float tensor other than `num_batches_tracked`.
    pub fn read(path: &Path) -> Result<Self, ImportError> {
        let read = |reason: String| ImportError::Read {
            path: path.to_path_buf(),
            reason,
        };
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let tensors = match extension {
            "safetensors" => SafetensorsStore::from_file(path)
                .get_all_tensors()
                .map_err(|e| read(e.to_string()))?
                .clone(),
            // PyTorch's own names: burn-store renumbers `Sequential` indices by default
            // (torchvision's ViT MLP `mlp.3` would become `mlp.1`).
            "pt" | "pth" => PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .get_all_tensors()
                .map_err(|e| read(e.to_string()))?
                .clone(),
            other => {
                return Err(read(format!(
                    "unknown extension `{other}`: expected .safetensors, .pt or .pth"
                )));
            }
        };
        let mut dict = Self::new(path);
        for (key, tensor) in tensors {
            if !tensor.dtype.is_float() {
                if key.ends_with("num_batches_tracked") {
                    continue;
                }
                return Err(ImportError::Dtype {
                    path: path.to_path_buf(),
                    key,
                    dtype: format!("{:?}", tensor.dtype),
                });
            }
            let data = bridge::into_data(tensor)
                .map_err(|e| read(format!("`{key}`: {e}")))?
                .try_cast(DType::F32)
                .map_err(|e| read(format!("`{key}`: {e}")))?;
            dict.tensors.insert(key, data);
        }
        Ok(dict)
    }

    /// The file this state dict came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The tensor named `key`.
    pub fn get(&self, key: &str) -> Option<&TensorData> {
        self.tensors.get(key)
    }

    /// Takes the tensor named `key` out.
    pub fn remove(&mut self, key: &str) -> Option<TensorData> {
        self.tensors.remove(key)
    }

    /// Adds (or replaces) a tensor; it is cast to f32.
    ///
    /// # Panics
    /// If `data` is not a float tensor.
    pub fn insert(&mut self, key: impl Into<String>, data: TensorData) {
        assert!(
            data.dtype().is_float(),
            "StateDict holds float tensors only"
        );
        self.tensors
            .insert(key.into(), data.convert_dtype(DType::F32));
    }

    /// Renames every key with `rename` (e.g. torchvision's names → repr's paths). Two keys that
    /// map to the same name keep the later one in sort order.
    pub fn rename_keys(self, mut rename: impl FnMut(&str) -> String) -> Self {
        let tensors = self
            .tensors
            .into_iter()
            .map(|(key, data)| (rename(&key), data))
            .collect();
        Self {
            path: self.path,
            tensors,
        }
    }

    /// Loads the tensors into `module`, whose parameter paths (enum variant names skipped, e.g.
    /// `layer1.0.conv1.weight` for `ResNet.layer1.0.Basic.conv1.weight`) must equal the keys,
    /// except that a normalization layer's `gamma`/`beta` take the keys `weight`/`bias` and
    /// `Linear` weights are transposed (PyTorch's `[out, in]` → Burn's `[in, out]`). Parameters
    /// and keys under the `ignore` prefixes (e.g. `"fc."`) are neither loaded nor reported.
    ///
    /// # Errors
    /// [`ImportError::Shapes`] naming every tensor whose shape does not fit,
    /// [`ImportError::Tensors`] for other failures, then [`ImportError::Keys`] listing the
    /// module's parameters without a tensor (*missing*) and the tensors without a parameter
    /// (*unexpected*).
    pub fn load_into<M: Module>(self, mut module: M, ignore: &[&str]) -> Result<M, ImportError> {
        let ignored = |name: &str| ignore.iter().any(|p| name.starts_with(p));
        let wanted: Vec<String> = module
            .collect(None, None, true)
            .into_iter()
            .map(|t| t.name)
            .filter(|name| !ignored(name))
            .collect();
        let tensors = self
            .tensors
            .into_iter()
            .filter(|(key, _)| !ignored(key))
            .map(|(key, data)| bridge::from_data(data, key, None))
            .collect();
        let filter = PathFilter::new().with_full_paths(wanted.clone());
        let result = module.apply(
            tensors,
            Some(filter),
            Some(Box::new(PyTorchToBurnAdapter)),
            true,
        );
        let path = self.path;
        let mut mismatches = Vec::new();
        let mut errors = Vec::new();
        for error in &result.errors {
            match error {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => mismatches.push(ShapeMismatch {
                    key: path.clone(),
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                }),
                other => errors.push(other.to_string()),
            }
        }
        if !mismatches.is_empty() {
            mismatches.sort_by(|a, b| a.key.cmp(&b.key));
            return Err(ImportError::Shapes { path, mismatches });
        }
        if !errors.is_empty() {
            return Err(ImportError::Tensors { path, errors });
        }
        let mut unexpected = result.unused.clone();
        unexpected.sort();
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|name| !result.applied.contains(name))
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(ImportError::Keys {
                path,
                missing,
                unexpected,
            });
        }
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{BatchNormConfig, LinearConfig};
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn linear_weights_are_transposed_and_norm_names_translated() {
        let device = Device::flex();
        let mut dict = StateDict::new("test");
        dict.insert(
            "weight",
            TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]),
        );
        dict.insert("bias", TensorData::new(vec![0.5f32, 0., -0.5], [3]));
        let linear = dict
            .load_into(LinearConfig::new(2, 3).init(&device), &[])
            .unwrap();
        let weight = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(weight, [1., 3., 5., 2., 4., 6.]);

        let mut dict = StateDict::new("test");
        for (key, value) in [
            ("weight", 2.0f32),
            ("bias", 3.),
            ("running_mean", 4.),
            ("running_var", 5.),
        ] {
            dict.insert(key, TensorData::new(vec![value; 2], [2]));
        }
        let bn = dict
            .load_into(BatchNormConfig::new(2).init(&device), &[])
            .unwrap();
        let first = |p: &Param<burn::tensor::Tensor<1>>| {
            p.val().into_data().try_to_vec::<f32>().unwrap()[0]
        };
        assert_eq!(first(&bn.gamma), 2.0);
        assert_eq!(first(&bn.beta), 3.0);
        let mean = bn
            .running_mean
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(mean, [4.0, 4.0]);
    }

    #[test]
    fn missing_unexpected_and_shapes_are_reported() {
        let device = Device::flex();
        let mut dict = StateDict::new("test.safetensors");
        dict.insert("weight", TensorData::new(vec![0.0f32; 6], [3, 2]));
        dict.insert("extra", TensorData::new(vec![0.0f32], [1]));
        let err = dict
            .clone()
            .load_into(LinearConfig::new(2, 3).init(&device), &[])
            .unwrap_err();
        let ImportError::Keys {
            missing,
            unexpected,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(
            (missing.as_slice(), unexpected.as_slice()),
            (&["bias".to_string()][..], &["extra".to_string()][..])
        );
        assert!(err.to_string().contains("bias") && err.to_string().contains("extra"));
        dict.clone()
            .load_into(
                LinearConfig::new(2, 3).with_bias(false).init(&device),
                &["extra"],
            )
            .unwrap();

        let err = dict
            .load_into(LinearConfig::new(2, 4).init(&device), &["extra", "bias"])
            .unwrap_err();
        let ImportError::Shapes { mismatches, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            mismatches,
            &[ShapeMismatch {
                key: "weight".into(),
                expected: vec![2, 4],
                found: vec![2, 3],
            }]
        );
    }
}
