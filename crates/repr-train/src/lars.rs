//! LARS: layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, "Large Batch Training of
//! Convolutional Networks"), as SimCLR uses it for large batches (Chen et al. 2020, App. B.1).

use burn::optim::momentum::{Momentum, MomentumConfig};
use burn::optim::{LearningRate, Optimizer, SgdState};
use burn::tensor::{Device, Tensor};

/// SGD with momentum whose step for each weight tensor is rescaled by the trust ratio
/// `eta * ||w|| / ||g + wd * w||`.
///
/// Following SimCLR, one-dimensional parameters (biases and normalisation scales/shifts) are
/// excluded from both the weight decay and the adaptation: they take plain momentum SGD steps.
/// The trust ratio is computed on the device (no host read per parameter); a zero weight or
/// gradient norm gives a ratio of 1, as in the reference implementations.
#[derive(Clone)]
pub struct Lars {
    momentum: Momentum,
    weight_decay: f64,
    eta: f64,
}

impl std::fmt::Debug for Lars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lars")
            .field("weight_decay", &self.weight_decay)
            .field("eta", &self.eta)
            .finish_non_exhaustive()
    }
}

impl Lars {
    /// LARS with PyTorch-style momentum (no dampening).
    pub fn new(momentum: f64, weight_decay: f64, eta: f64) -> Self {
        let config = MomentumConfig::new()
            .with_momentum(momentum)
            .with_dampening(0.0)
            .with_nesterov(false);
        Self {
            momentum: Momentum::new(&config),
            weight_decay,
            eta,
        }
    }
}

impl Optimizer for Lars {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = if D > 1 {
            let grad = grad + tensor.clone().mul_scalar(self.weight_decay);
            let weight_norm = tensor.clone().square().sum().sqrt();
            let grad_norm = grad.clone().square().sum().sqrt();
            // Where either norm is zero the ratio is 1 (a fresh zero-initialised layer, a
            // parameter without gradient signal this step).
            let degenerate = weight_norm
                .clone()
                .equal_elem(0.0)
                .bool_or(grad_norm.clone().equal_elem(0.0));
            let ratio = (weight_norm.mul_scalar(self.eta) / grad_norm.clamp_min(f32::MIN_POSITIVE))
                .mask_fill(degenerate, 1.0);
            grad * ratio.reshape([1; D])
        } else {
            grad
        };
        let (grad, momentum) = self
            .momentum
            .transform(grad, state.and_then(|state| state.momentum));
        let next = tensor - grad.mul_scalar(lr);
        (next, Some(SgdState::new(Some(momentum))))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.map(|momentum| momentum.to_device(device));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    repr_testing::backend_tests!(
        first_step_scales_by_trust_ratio,
        weight_decay_is_adapted_too,
        one_dimensional_parameters_are_excluded,
        zero_weights_still_move
    );

    /// One step by hand: w = [3, 4] (norm 5), g = [0.6, 0.8] (norm 1), wd = 0, eta = 0.001,
    /// lr = 1: ratio = 0.001 * 5 / 1 = 0.005, so w' = w - 0.005 * g = [2.997, 3.996].
    fn first_step_scales_by_trust_ratio(device: &Device) {
        let lars = Lars::new(0.9, 0.0, 0.001);
        let w = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), device);
        let g = Tensor::<2>::from_data(TensorData::new(vec![0.6f32, 0.8], [1, 2]), device);
        let (next, state) = lars.step(1.0, w, g, None);
        let values = next.into_data().try_into_vec::<f32>().unwrap();
        assert!((values[0] - 2.997).abs() < 1e-6, "{values:?}");
        assert!((values[1] - 3.996).abs() < 1e-6, "{values:?}");
        assert!(state.unwrap().momentum.is_some());
    }

    /// Weight decay enters the gradient before the norm: w = [3, 4], g = [0, 0], wd = 0.1 →
    /// g' = [0.3, 0.4] (norm 0.5), ratio = 1 * 5 / 0.5 = 10, w' = w - 0.1 * 10 * g' = [2.7, 3.6].
    fn weight_decay_is_adapted_too(device: &Device) {
        let lars = Lars::new(0.0, 0.1, 1.0);
        let w = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [2, 1]), device);
        let g = Tensor::<2>::zeros([2, 1], device);
        let (next, _) = lars.step(0.1, w, g, None);
        let values = next.into_data().try_into_vec::<f32>().unwrap();
        assert!((values[0] - 2.7).abs() < 1e-5, "{values:?}");
        assert!((values[1] - 3.6).abs() < 1e-5, "{values:?}");
    }

    /// Biases (rank 1) take plain SGD steps: no decay, no ratio.
    fn one_dimensional_parameters_are_excluded(device: &Device) {
        let lars = Lars::new(0.0, 0.5, 0.001);
        let w = Tensor::<1>::from_data(TensorData::new(vec![3.0f32, 4.0], [2]), device);
        let g = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -1.0], [2]), device);
        let (next, _) = lars.step(0.1, w, g, None);
        let values = next.into_data().try_into_vec::<f32>().unwrap();
        assert!((values[0] - 2.9).abs() < 1e-6, "{values:?}");
        assert!((values[1] - 4.1).abs() < 1e-6, "{values:?}");
    }

    /// A zero-initialised weight keeps ratio 1 instead of freezing at 0 forever.
    fn zero_weights_still_move(device: &Device) {
        let lars = Lars::new(0.0, 0.0, 0.001);
        let w = Tensor::<2>::zeros([1, 2], device);
        let g = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), device);
        let (next, _) = lars.step(0.5, w, g, None);
        let values = next.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(values, vec![-0.5, -1.0]);
    }
}
