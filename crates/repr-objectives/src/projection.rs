//! The MLP projection head of SimCLR.

use burn::module::Module;
use burn::nn::{BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::BatchNorm;

use serde::{Deserialize, Serialize};

use crate::ObjectiveError;

/// Configuration of [`ProjectionHead`].
///
/// `layers = 2` without batch norm is the SimCLR v1 head `Linear → ReLU → Linear`; with
/// `batch_norm` it is `Linear → BatchNorm → ReLU → Linear` (the v1 code base; SimCLR v2 uses 3
/// layers).
///
/// In a config file (`[method.head]`) `input` is not given: it is the width of the encoder the
/// head is built on, set by the method that builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionHeadConfig {
    /// Width of the representation `h` that enters the head (e.g. 512 for ResNet-18).
    #[serde(skip)]
    pub input: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Width of the projection `z` given to the loss (SimCLR: 128).
    pub output: usize,
    /// Number of linear layers, at least 1. Every layer but the last is followed by
    /// (optionally) BatchNorm and a ReLU; `1` is a single linear map `input → output`.
    pub layers: usize,
    /// BatchNorm after each hidden linear layer. Those layers then have no bias (BatchNorm's
    /// shift replaces it).
    pub batch_norm: bool,
}

impl Default for ProjectionHeadConfig {
    /// SimCLR v1's head for an encoder not yet known (`input` 0): 256 hidden, 128 out, 2
    /// layers, no BatchNorm.
    fn default() -> Self {
        Self {
            input: 0,
            hidden: 256,
            output: 128,
            layers: 2,
            batch_norm: false,
        }
    }
}

with_setters!(ProjectionHeadConfig {
    with_layers => layers: usize,
    with_batch_norm => batch_norm: bool,
});

impl ProjectionHeadConfig {
    /// A head `input → hidden → output` of 2 layers without BatchNorm.
    pub fn new(input: usize, hidden: usize, output: usize) -> Self {
        Self {
            input,
            hidden,
            output,
            ..Self::default()
        }
    }

    /// This config for an encoder of `input` features.
    pub fn for_input(&self, input: usize) -> Self {
        Self {
            input,
            ..self.clone()
        }
    }

    /// Checks the sizes, naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        for (field, value) in [
            ("input", self.input),
            ("hidden", self.hidden),
            ("output", self.output),
            ("layers", self.layers),
        ] {
            if value == 0 {
                return Err(ObjectiveError::OutOfRange {
                    field,
                    value: 0.0,
                    allowed: "at least 1",
                });
            }
            // Far above any published head (BYOL: 4096 hidden, 256 out; 3 layers), low enough
            // that a mistyped size cannot ask for terabytes of weights.
            let (max, allowed) = match field {
                "layers" => (64, "at most 64"),
                _ => (65_536, "at most 65536"),
            };
            if value > max {
                return Err(ObjectiveError::OutOfRange {
                    field,
                    value: value as f64,
                    allowed,
                });
            }
        }
        Ok(())
    }

    /// Builds the head on `device` with Burn's default `Linear` initialisation (PyTorch's) and
    /// BatchNorm gamma 1, beta 0.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails; call it first on configurations read from files.
    pub fn init(&self, device: &Device) -> ProjectionHead {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let mut hidden = Vec::with_capacity(self.layers - 1);
        let mut width = self.input;
        for _ in 1..self.layers {
            hidden.push(ProjectionBlock {
                linear: LinearConfig::new(width, self.hidden)
                    .with_bias(!self.batch_norm)
                    .init(device),
                norm: self
                    .batch_norm
                    .then(|| BatchNorm::init(&BatchNormConfig::new(self.hidden), device)),
            });
            width = self.hidden;
        }
        ProjectionHead {
            hidden,
            output: LinearConfig::new(width, self.output).init(device),
        }
    }
}

/// One hidden layer of the head: `Linear → BatchNorm? → ReLU`.
#[derive(Module, Debug)]
pub struct ProjectionBlock {
    /// The linear map.
    pub linear: Linear,
    /// BatchNorm over the features, when configured.
    pub norm: Option<BatchNorm>,
}

/// The projection head `g(·)` of SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive
/// Learning of Visual Representations", section 2.1): an MLP mapping the representation `h` to
/// the space `z = g(h)` where the contrastive loss is applied. The paper found the loss works
/// better on `z` while `h` keeps more information for downstream tasks.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use repr_objectives::ProjectionHeadConfig;
///
/// let device = Device::flex();
/// let head = ProjectionHeadConfig::new(512, 512, 128).with_batch_norm(true).init(&device);
/// let z = head.forward(Tensor::<2>::ones([4, 512], &device));
/// assert_eq!(z.dims(), [4, 128]);
/// ```
#[derive(Module, Debug)]
pub struct ProjectionHead {
    /// The hidden layers, `layers - 1` of them.
    pub hidden: Vec<ProjectionBlock>,
    /// The last linear layer (no activation).
    pub output: Linear,
}

impl ProjectionHead {
    /// Projects representations.
    ///
    /// # Shapes
    /// - `h`: `[batch, input]`
    /// - output: `[batch, output]`
    pub fn forward(&self, h: Tensor<2>) -> Tensor<2> {
        let mut x = h;
        for block in &self.hidden {
            x = block.linear.forward(x);
            x = match &block.norm {
                Some(norm) => norm.forward_relu(x),
                None => relu(x),
            };
        }
        self.output.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_count_and_parameters() {
        let device = Device::flex();
        // SimCLR v1 on ResNet-50: 2048 → 2048 → 128 with biases.
        let head = ProjectionHeadConfig::new(2048, 2048, 128).init(&device);
        assert_eq!(head.hidden.len(), 1);
        assert_eq!(head.num_params(), 2048 * 2048 + 2048 + 2048 * 128 + 128);
        // With BatchNorm the hidden layers have no bias; BatchNorm adds gamma, beta and its
        // running mean and variance (Burn counts those buffers as parameters too).
        let head = ProjectionHeadConfig::new(8, 16, 4)
            .with_layers(3)
            .with_batch_norm(true)
            .init(&device);
        assert_eq!(head.hidden.len(), 2);
        assert_eq!(
            head.num_params(),
            (8 * 16 + 4 * 16) + (16 * 16 + 4 * 16) + (16 * 4 + 4)
        );
        let single = ProjectionHeadConfig::new(8, 16, 4)
            .with_layers(1)
            .init(&device);
        assert!(single.hidden.is_empty());
        assert_eq!(single.num_params(), 8 * 4 + 4);
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let err = ProjectionHeadConfig::new(8, 16, 4)
            .with_layers(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("layers"), "{err}");
        let err = ProjectionHeadConfig::new(8, 0, 4).validate().unwrap_err();
        assert!(err.to_string().contains("hidden"), "{err}");
    }
}
