//! Batch normalisation with burn-nn's parameters and record, computed by [`crate::ops`], with an
//! optional fused ReLU.

use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::BatchNormConfig;
use burn::tensor::{Device, Tensor};

/// Batch normalisation (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network
/// Training by Reducing Internal Covariate Shift"): the fields, names and record of
/// `burn::nn::BatchNorm`, and its behaviour (batch statistics when the input is on an autodiff
/// device and the layer trains, running statistics otherwise; running variance from the biased
/// batch variance, as burn-nn).
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// The learnable scale.
    pub gamma: Param<Tensor<1>>,
    /// The learnable shift.
    pub beta: Param<Tensor<1>>,
    /// Whether training behaviour is enabled for this layer.
    pub training: Param<Flag>,
    /// The running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// The running variance.
    pub running_var: RunningState<Tensor<1>>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
}

impl BatchNorm {
    /// A layer initialised exactly as `config.init(device)` would initialise burn-nn's.
    pub fn init(config: &BatchNormConfig, device: &Device) -> Self {
        config.init(device).into()
    }

    /// Normalises the input.
    ///
    /// # Shapes
    /// - input: `[batch, channels, ...]`
    /// - output: the same
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_impl(input, false)
    }

    /// `relu(self.forward(input))`, in one pass on flex (and one saved tensor fewer).
    ///
    /// # Shapes
    /// - input: `[batch, channels, ...]`
    /// - output: the same
    pub fn forward_relu<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_impl(input, true)
    }

    fn forward_impl<const D: usize>(&self, input: Tensor<D>, relu: bool) -> Tensor<D> {
        let [channels] = self.gamma.shape().dims();
        let dims = input.dims();
        assert!(
            D >= 2 && dims[1] == channels,
            "BatchNorm over {channels} channels got an input of shape {dims:?}"
        );
        let device = input.device();
        if device.is_autodiff() && self.training.is_enabled() {
            let out = crate::ops::batch_norm_train(
                input,
                self.gamma.val(),
                self.beta.val(),
                self.epsilon,
                relu,
            );
            let m = self.momentum;
            let mean = self.running_mean.value_sync().to_device(&device);
            let var = self.running_var.value_sync().to_device(&device);
            self.running_mean
                .update((mean.mul_scalar(1.0 - m) + out.mean.mul_scalar(m)).detach());
            self.running_var
                .update((var.mul_scalar(1.0 - m) + out.variance.mul_scalar(m)).detach());
            out.output
        } else {
            crate::ops::batch_norm(
                input,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
                self.epsilon,
                relu,
            )
        }
    }
}

impl From<burn::nn::BatchNorm> for BatchNorm {
    fn from(b: burn::nn::BatchNorm) -> Self {
        Self {
            gamma: b.gamma,
            beta: b.beta,
            training: b.training,
            running_mean: b.running_mean,
            running_var: b.running_var,
            momentum: b.momentum,
            epsilon: b.epsilon,
        }
    }
}
