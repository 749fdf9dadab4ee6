//! Data-parallel training without MPI: two threads of this process, each a rank on its own
//! copy of the network (`LocalGroup`), against one rank, on flex and ndarray (wgpu is left out:
//! 21 ResNet steps per check take minutes on lavapipe). The same checks run over MPI processes
//! in `tests/distributed.rs`.
//!
//! 2 ranks × 64 images give the loss and every parameter's gradient of 1 rank × 128 within 1e-5
//! relative, ndarray within 5e-4 (see below) (cross-entropy; SimCLR with negatives gathered over
//! the ranks; triplet loss mined over the gathered batch; SyncBatchNorm on 2 ranks against
//! BatchNorm over the 128 images), and
//! after 20 steps both ranks hold bit-identical parameters, having followed the one-rank run
//! for its first 3 steps within 1e-4 (rounding, amplified by every step, parts them later).

use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use repr_data::{ImageDataset, LoadOptions, Normalize, Split};
use repr_train::distributed::fingerprint;
use repr_train::equivalence as check;
use repr_train::{Group, LocalGroup, Method, TrainConfig};

/// Burn seeds a device's generator once per process: one check at a time.
static ONE_CHECK: Mutex<()> = Mutex::new(());

/// Steps the two ranks train before their parameters are compared. That the ranks stay
/// bit-identical step after step is the stepper's doing (one averaged gradient, the same update
/// on every rank), not the backend's: it is followed for 20 steps on flex, and for a step past
/// `FOLLOW` on ndarray, whose convolution backward makes each step take seconds.
const STEPS: usize = 20;
const STEPS_NDARRAY: usize = FOLLOW + 1;
/// Steps of the one-rank run the two ranks must follow up to rounding (which later steps
/// amplify: after 17 steps of cross-entropy the losses are ~0.5% apart, as in PyTorch's DDP).
const FOLLOW: usize = 3;

struct Rank {
    loss: f64,
    grads: Vec<Vec<f32>>,
    losses: Vec<f64>,
    fingerprint: u64,
}

fn rank(
    config: &TrainConfig,
    model: Method,
    dataset: Arc<ImageDataset>,
    normalize: Normalize,
    group: Group,
    steps: usize,
    device: &Device,
) -> Rank {
    let loader = check::loader(config, &dataset, &normalize, &group).unwrap();
    let (loss, grads) = check::first_step(
        &model,
        config.sync_batch_norm,
        dataset.clone(),
        normalize.clone(),
        loader.clone(),
        &group,
        device,
    );
    let (losses, model) = check::train_steps(
        config, model, dataset, normalize, loader, steps, &group, device,
    );
    Rank {
        loss,
        grads,
        losses,
        fingerprint: fingerprint(&model),
    }
}

fn equivalence(device: &Device, method: &str) {
    let _one = ONE_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let config = check::equivalence_config(method).unwrap();
    device.seed(config.seed);
    let steps = if repr_kernels::is_flex(device) {
        STEPS
    } else {
        STEPS_NDARRAY
    };
    let device = device.clone().autodiff();
    let dataset = Arc::new(
        repr_data::load(
            &repr_data::fashion_mnist_dir(),
            Split::Train,
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let normalize = Normalize::from_dataset(&dataset);
    let model = config
        .init_method(&config.run_facts(normalize.clone()), &device)
        .unwrap();

    let one = rank(
        &config,
        model.clone(),
        dataset.clone(),
        normalize.clone(),
        Group::one_process(),
        FOLLOW,
        &device,
    );
    let two: Vec<Rank> = std::thread::scope(|scope| {
        let handles: Vec<_> = LocalGroup::members(2)
            .into_iter()
            .map(|member| {
                let (config, model, dataset) = (&config, model.clone(), dataset.clone());
                let (normalize, device) = (normalize.clone(), device.clone());
                scope.spawn(move || {
                    let group = member.group();
                    rank(config, model, dataset, normalize, group, steps, &device)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    assert!(
        one.loss.is_finite() && one.loss > 0.0,
        "{method}: loss {}",
        one.loss
    );
    // Our kernels (flex) sum each weight gradient in blocks whose rounding barely depends on
    // the batch: 1e-5, the bar. ndarray's stem convolution weight gradient (100,352
    // products per weight: 128 images × 28 × 28) is itself only good to ~1e-4: between 64 and
    // 128 images it moved by 5.0e-5 and 1.1e-4 (relative to its largest entry) in two runs of
    // the same test, the order of its parallel sums not being fixed: 5e-4 there.
    let tolerance = match repr_kernels::uses_repr_kernels(&device) {
        true => 1e-5,
        false => 5e-4,
    };
    for (r, other) in two.iter().enumerate() {
        let diff = ((one.loss - other.loss) / one.loss).abs();
        assert!(
            diff <= tolerance,
            "{method}, rank {r}: loss {} against {}",
            other.loss,
            one.loss
        );
        assert_eq!(one.grads.len(), other.grads.len());
        for (i, (a, b)) in one.grads.iter().zip(&other.grads).enumerate() {
            assert!(
                a.iter().any(|v| *v != 0.0),
                "{method}: gradient {i} is zero"
            );
            let d = check::relative_difference(a, b);
            assert!(
                d <= tolerance,
                "{method}, rank {r}: gradient {i} differs by {d:e}"
            );
        }
    }
    assert_eq!(
        two[0].fingerprint, two[1].fingerprint,
        "{method}: the ranks' parameters differ after {steps} steps"
    );
    assert_eq!(two[0].losses, two[1].losses);
    assert_eq!(two[0].losses.len(), steps);
    assert!(two[0].losses.iter().all(|l| l.is_finite()));
    for (step, (a, b)) in one.losses.iter().zip(&two[0].losses).enumerate() {
        assert!(
            ((a - b) / a).abs() <= 1e-4,
            "{method}, step {step}: loss {b} on two ranks, {a} on one"
        );
    }
}

fn equivalence_supervised_cross_entropy(device: &Device) {
    equivalence(device, "supervised");
}

fn equivalence_simclr_gathered_negatives(device: &Device) {
    equivalence(device, "simclr");
}

fn equivalence_triplet_batch_hard_over_the_gathered_batch(device: &Device) {
    equivalence(device, "triplet");
}

/// SyncBatchNorm runs in repr's flex kernels only (a run on another device is refused before
/// it starts): flex alone.
#[test]
fn equivalence_sync_batch_norm_against_batch_norm() {
    equivalence(&repr_testing::flex(), "sync-bn");
}

repr_testing::cpu_backend_tests!(
    equivalence_supervised_cross_entropy,
    equivalence_simclr_gathered_negatives,
    equivalence_triplet_batch_hard_over_the_gathered_batch,
);
