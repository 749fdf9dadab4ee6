//! Gradients and parameters across ranks: the all-reduce of a step's gradients in flat
//! buckets, and a fingerprint of the trained parameters to check that ranks agree.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::Group;

/// Gradients are all-reduced in buckets of this many values (16 MiB of f32), so no message
/// is larger than that and the host copy of one bucket is reused.
pub const BUCKET_VALUES: usize = 4 << 20;

/// Where one parameter's gradient sits in the flat buffer.
struct Slot {
    dims: Vec<usize>,
    device: Device,
    start: usize,
}

/// Takes every parameter's gradient (in the module's visiting order, the same on every rank)
/// out of `grads` into one flat buffer.
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    flat: Vec<f32>,
    slots: Vec<Option<Slot>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let slot = self.grads.remove::<D>(param.id).map(|grad| {
            let dims = grad.dims().to_vec();
            let device = grad.device();
            let start = self.flat.len();
            let values = grad
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 after convert");
            self.flat.extend_from_slice(&values);
            Slot {
                dims,
                device,
                start,
            }
        });
        self.slots.push(slot);
    }
}

/// Puts the reduced gradients back, visiting in the same order.
struct Unflatten<'a> {
    grads: &'a mut GradientsParams,
    flat: &'a [f32],
    slots: std::vec::IntoIter<Option<Slot>>,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(Some(slot)) = self.slots.next() {
            let len: usize = slot.dims.iter().product();
            let values = self.flat[slot.start..slot.start + len].to_vec();
            let dims: [usize; D] = slot.dims.try_into().expect("the gradient's own rank");
            let grad = Tensor::<D>::from_data(TensorData::new(values, dims), &slot.device);
            self.grads.register(param.id, grad);
        }
    }
}

/// The gradients of `module` summed over every rank of `group` and multiplied by `scale`
/// (1 / ranks for a loss that is a mean over each rank's share; 1 for a loss of the whole
/// global batch). Every rank gets the same gradients, bit for bit. The values travel in
/// buckets of [`BUCKET_VALUES`].
pub fn all_reduce_gradients<M: Module>(
    group: &Group,
    module: &M,
    mut grads: GradientsParams,
    scale: f32,
) -> GradientsParams {
    if group.size() == 1 && scale == 1.0 {
        return grads;
    }
    let mut flatten = Flatten {
        grads: &mut grads,
        flat: Vec::new(),
        slots: Vec::new(),
    };
    module.visit(&mut flatten);
    let Flatten {
        mut flat, slots, ..
    } = flatten;
    for bucket in flat.chunks_mut(BUCKET_VALUES) {
        group.all_reduce_sum(bucket);
    }
    if scale != 1.0 {
        flat.iter_mut().for_each(|v| *v *= scale);
    }
    let mut unflatten = Unflatten {
        grads: &mut grads,
        flat: &flat,
        slots: slots.into_iter(),
    };
    module.visit(&mut unflatten);
    grads
}

/// Draws every lazily initialised parameter of `module` now: Burn runs a parameter's
/// initializer on its first use, which on threads sharing a device's generator would make the
/// draws race.
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// FNV-1a over the bits of every trainable parameter (those that take gradients), in visiting
/// order: equal on two ranks exactly when their trained parameters are bit-identical.
pub fn fingerprint<M: Module>(module: &M) -> u64 {
    struct Hash(u64);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            if !tensor.is_require_grad() {
                return;
            }
            let values = tensor
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 after convert");
            for v in values {
                for byte in v.to_bits().to_le_bytes() {
                    self.0 = (self.0 ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    let mut hash = Hash(0xcbf2_9ce4_8422_2325);
    module.visit(&mut hash);
    hash.0
}

/// Checks that every rank of `group` holds the same trained parameters as rank 0: the ranks
/// whose fingerprint differs, empty when all agree.
pub fn diverged_ranks<M: Module>(group: &Group, module: &M) -> Vec<usize> {
    let mine = fingerprint(module).to_le_bytes();
    let all = group.all_gather_bytes(&mine);
    let prints: Vec<u64> = all
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    prints
        .iter()
        .enumerate()
        .filter(|&(_, &p)| p != prints[0])
        .map(|(rank, _)| rank)
        .collect()
}
