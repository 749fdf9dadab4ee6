//! Layer normalisation with burn-nn's parameters and record, computed by [`crate::ops`].

use burn::module::{Module, Param};
use burn::nn::LayerNormConfig;
use burn::tensor::{DType, Device, FloatDType, Tensor};

/// Layer normalisation (Ba et al. 2016, "Layer Normalization") over the last dimension: the
/// fields, names and record of `burn::nn::LayerNorm` (`gamma`, optional `beta`, `epsilon`) and
/// its behaviour (half-precision inputs are normalised in f32, as burn-nn does).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// The learnable scale.
    pub gamma: Param<Tensor<1>>,
    /// The learnable shift, when the layer has one.
    pub beta: Option<Param<Tensor<1>>>,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
}

impl LayerNorm {
    /// A layer initialised exactly as `config.init(device)` initialises burn-nn's: `gamma`
    /// ones, `beta` zeros (when `config.bias`).
    pub fn init(config: &LayerNormConfig, device: &Device) -> Self {
        let burn_nn = config.init(device);
        Self {
            gamma: burn_nn.gamma,
            beta: burn_nn.beta,
            epsilon: config.epsilon,
        }
    }

    /// Normalises each row of the last dimension.
    ///
    /// # Shapes
    /// - input: `[..., features]`
    /// - output: the same
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let [features] = self.gamma.shape().dims();
        let dims = input.dims();
        assert!(
            D >= 1 && dims[D - 1] == features,
            "LayerNorm over {features} features got an input of shape {dims:?}"
        );
        let (gamma, beta) = (self.gamma.val(), self.beta.as_ref().map(Param::val));
        if input.dtype() == DType::F16 {
            let original: FloatDType = input.dtype().into();
            let f32 = FloatDType::F32;
            return crate::ops::layer_norm(
                input.cast(f32),
                gamma.cast(f32),
                beta.map(|b| b.cast(f32)),
                self.epsilon,
            )
            .cast(original);
        }
        crate::ops::layer_norm(input, gamma, beta, self.epsilon)
    }
}
