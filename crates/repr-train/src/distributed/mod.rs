//! Data parallel training: the processes a run is spread over ([`Group`]), the collectives
//! between them ([`Collective`]: one process, or MPI behind the `mpi` feature), and the
//! tensor operations the methods and the [`crate::DataParallel`] stepper build on them.
//!
//! The rules (`docs/distributed.md`):
//! - every rank trains on its own contiguous share of each global batch (same seed: the same
//!   global batch, and the same augmentation of each image, as one process);
//! - a loss is either a mean over the rank's own images ([`LossScope::Shard`]: cross-entropy,
//!   BYOL, masked-patch prediction), and the global loss is the mean over ranks, or a loss over
//!   the whole global batch ([`LossScope::Global`]: NT-Xent, SupCon, triplet mining), which
//!   every rank computes from embeddings gathered by [`Group::gather_rows`];
//! - either way the summed gradients over ranks are the gradient of the global loss, so the
//!   stepper all-reduces them (a sum, divided by the ranks for a shard loss) and every rank
//!   takes the same optimizer step.

mod grads;
#[cfg(feature = "mpi")]
pub mod mpi;

pub use grads::{BUCKET_VALUES, all_reduce_gradients, diverged_ranks, fingerprint, materialize};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::TrainError;

/// The collective operations between the members of a group, on host buffers. Every member
/// calls the same operations in the same order (they block until all have).
pub trait Collective: Send + Sync {
    /// This member's index, `0..size`.
    fn rank(&self) -> usize;

    /// Members in the group.
    fn size(&self) -> usize;

    /// Element-wise sum over every member, in place; the same result on every member.
    fn all_reduce_sum_f32(&self, values: &mut [f32]);

    /// Element-wise sum over every member, in place, in f64.
    fn all_reduce_sum_f64(&self, values: &mut [f64]);

    /// Every member's `local` (the same length on each), concatenated in rank order.
    fn all_gather_bytes(&self, local: &[u8]) -> Vec<u8>;

    /// Rank 0's `bytes` on every member (resized to rank 0's length).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>);

    /// Returns once every member has called it.
    fn barrier(&self);

    /// Stops every member of the group with exit code `code`.
    fn abort(&self, code: i32) -> !;

    /// What carries the collectives, for logs ("one process", "MPI: MPICH 4.0.2").
    fn describe(&self) -> String;
}

/// The collectives of a run of one process: every operation is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct OneProcess;

impl Collective for OneProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum_f32(&self, _values: &mut [f32]) {}

    fn all_reduce_sum_f64(&self, _values: &mut [f64]) {}

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<u8> {
        local.to_vec()
    }

    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) {}

    fn barrier(&self) {}

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }

    fn describe(&self) -> String {
        "one process".into()
    }
}

/// The collectives between threads of one process, each training on its own device: the
/// members exchange host buffers through shared memory. Every reduction adds the members'
/// values in rank order, so all members get the same bits.
pub struct LocalGroup {
    rank: usize,
    shared: Arc<LocalShared>,
}

struct LocalShared {
    size: usize,
    barrier: std::sync::Barrier,
    slots: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl LocalGroup {
    /// The `size` members of a new group, rank 0 first: give one to each thread.
    pub fn members(size: usize) -> Vec<LocalGroup> {
        assert!(size >= 1, "a group has at least one member");
        let shared = Arc::new(LocalShared {
            size,
            barrier: std::sync::Barrier::new(size),
            slots: std::sync::Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| LocalGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Every member's `mine`, in rank order.
    fn exchange(&self, mine: Vec<u8>) -> Vec<Vec<u8>> {
        let lock = || {
            self.shared
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        lock()[self.rank] = mine;
        self.shared.barrier.wait();
        let all = lock().clone();
        // Nobody writes the next exchange's slot before everyone has read this one.
        self.shared.barrier.wait();
        all
    }

    /// A [`Group`] over this member.
    pub fn group(self) -> Group {
        Group::new(Arc::new(self))
    }
}

impl Collective for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_sum_f32(&self, values: &mut [f32]) {
        let all = self.exchange(bytemuck_f32(values).to_vec());
        values.fill(0.0);
        for member in all {
            for (v, x) in values.iter_mut().zip(f32_from_bytes(&member)) {
                *v += x;
            }
        }
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        let mine = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let all = self.exchange(mine);
        values.fill(0.0);
        for member in all {
            for (v, x) in values.iter_mut().zip(member.chunks_exact(8)) {
                *v += f64::from_ne_bytes(x.try_into().expect("8 bytes"));
            }
        }
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<u8> {
        self.exchange(local.to_vec()).concat()
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        let mine = if self.rank == 0 {
            bytes.clone()
        } else {
            Vec::new()
        };
        *bytes = self.exchange(mine).swap_remove(0);
    }

    fn barrier(&self) {
        self.shared.barrier.wait();
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }

    fn describe(&self) -> String {
        format!("{} threads of one process", self.shared.size)
    }
}

/// How a method's step loss relates to the loss of the global batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossScope {
    /// A mean over this rank's images (the same number on every rank): the global loss is the
    /// mean over ranks, its gradient the mean of the ranks' gradients. Metric counts add up.
    Shard,
    /// The loss of the whole global batch, the same value on every rank, computed from
    /// gathered embeddings whose own rows carry this rank's gradient: the gradient of the
    /// global loss is the sum of the ranks' gradients. Metrics are already global.
    Global,
}

/// Bytes moved and time spent in collectives, summed since the group was made.
#[derive(Debug, Default)]
pub struct CommStats {
    bytes: AtomicU64,
    nanos: AtomicU64,
    calls: AtomicU64,
}

/// A snapshot of [`CommStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommTotals {
    /// Bytes this member sent into collectives (its buffer sizes).
    pub bytes: u64,
    /// Seconds spent inside collectives (waiting for other members included).
    pub seconds: f64,
    /// Collective calls.
    pub calls: u64,
}

/// The members a run is spread over: a [`Collective`] with its traffic counted, and the tensor
/// operations on top of it.
#[derive(Clone)]
pub struct Group {
    inner: Arc<dyn Collective>,
    stats: Arc<CommStats>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("collectives", &self.inner.describe())
            .finish()
    }
}

impl Default for Group {
    fn default() -> Self {
        Self::one_process()
    }
}

impl Group {
    /// A group over `collective`.
    pub fn new(collective: Arc<dyn Collective>) -> Self {
        Self {
            inner: collective,
            stats: Arc::new(CommStats::default()),
        }
    }

    /// The group of a run of one process.
    pub fn one_process() -> Self {
        Self::new(Arc::new(OneProcess))
    }

    /// This member's rank.
    pub fn rank(&self) -> usize {
        self.inner.rank()
    }

    /// Members in the group.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// Whether this member writes the run folder, logs and evaluates (rank 0).
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// What carries the collectives.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }

    /// Traffic so far.
    pub fn totals(&self) -> CommTotals {
        CommTotals {
            bytes: self.stats.bytes.load(Ordering::Relaxed),
            seconds: self.stats.nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            calls: self.stats.calls.load(Ordering::Relaxed),
        }
    }

    fn timed<T>(&self, bytes: usize, f: impl FnOnce() -> T) -> T {
        if self.size() == 1 {
            return f();
        }
        let started = Instant::now();
        let out = f();
        self.stats
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// Element-wise sum over every member, in place.
    pub fn all_reduce_sum(&self, values: &mut [f32]) {
        self.timed(values.len() * 4, || self.inner.all_reduce_sum_f32(values))
    }

    /// Element-wise sum over every member, in place, in f64.
    pub fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        self.timed(values.len() * 8, || self.inner.all_reduce_sum_f64(values))
    }

    /// Every member's `local` bytes (equal lengths), in rank order.
    pub fn all_gather_bytes(&self, local: &[u8]) -> Vec<u8> {
        self.timed(local.len(), || self.inner.all_gather_bytes(local))
    }

    /// Rank 0's bytes on every member.
    pub fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        self.timed(len, || self.inner.broadcast_bytes(bytes))
    }

    /// Waits for every member.
    pub fn barrier(&self) {
        self.timed(0, || self.inner.barrier())
    }

    /// Stops every member with exit code `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.inner.abort(code)
    }

    /// The sum over this group that synchronised BatchNorm layers apply to their statistics
    /// (`repr_kernels::with_sync_batch_norm`).
    pub fn statistics_sum(&self) -> repr_kernels::StatisticsSum {
        let group = self.clone();
        Arc::new(move |values: &mut [f64]| group.all_reduce_sum_f64(values))
    }

    /// Rank 0's `value` (bytes, or its error message) on every member.
    pub fn broadcast_result(&self, value: Result<Vec<u8>, String>) -> Result<Vec<u8>, String> {
        // One tag byte: 1 = bytes follow, 0 = an error message follows.
        let mut bytes = match value {
            Ok(mut bytes) => {
                bytes.push(1);
                bytes
            }
            Err(message) => {
                let mut bytes = message.into_bytes();
                bytes.push(0);
                bytes
            }
        };
        self.broadcast_bytes(&mut bytes);
        match bytes.pop() {
            Some(1) => Ok(bytes),
            Some(0) => Err(String::from_utf8_lossy(&bytes).into_owned()),
            _ => Err("rank 0 sent an empty broadcast".into()),
        }
    }

    /// `leader()` run on rank 0 alone, its value (or error) handed to every rank: what only
    /// rank 0 can read (a resumed run's config and checkpoint live in its run folder). Every
    /// rank, rank 0 included, returns the value as it arrived, so all hold the same.
    pub fn share<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        leader: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let sent = if self.is_leader() {
            leader().map(|value| serde_json::to_vec(&value).expect("shared values serialize"))
        } else {
            Ok(Vec::new())
        };
        let bytes = self.broadcast_result(sent)?;
        serde_json::from_slice(&bytes).map_err(|e| format!("rank 0's value did not parse: {e}"))
    }

    /// The rows of every member's `local` (the same shape on each), in rank order: the
    /// embeddings of the whole global batch. This member's rows are `local` itself, so the
    /// gradient of a loss over the result flows back into this member's network; the other
    /// members' rows are constants here (each member back-propagates through its own rows).
    ///
    /// # Shapes
    /// - `local`: `[n, d]`
    /// - output: `[size · n, d]`
    pub fn gather_rows(&self, local: Tensor<2>) -> Tensor<2> {
        let size = self.size();
        if size == 1 {
            return local;
        }
        let [n, d] = local.dims();
        let device = local.device();
        let values = local
            .clone()
            .detach()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 after convert");
        let gathered = self.all_gather_bytes(bytemuck_f32(&values));
        let all = f32_from_bytes(&gathered);
        let rank = self.rank();
        let per = n * d;
        let rows = (0..size)
            .map(|r| {
                if r == rank {
                    local.clone()
                } else {
                    let slice = all[r * per..(r + 1) * per].to_vec();
                    Tensor::<2>::from_data(TensorData::new(slice, [n, d]), &device)
                }
            })
            .collect();
        Tensor::cat(rows, 0)
    }

    /// Every member's labels (the same length on each), in rank order.
    ///
    /// # Shapes
    /// - `local`: `[n]`
    /// - output: `[size · n]`
    pub fn gather_labels(&self, local: Tensor<1, Int>) -> Tensor<1, Int> {
        if self.size() == 1 {
            return local;
        }
        let device = local.device();
        let values = local
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("i64 after convert");
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let gathered = self.all_gather_bytes(&bytes);
        let all: Vec<i64> = gathered
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let len = all.len();
        Tensor::<1, Int>::from_data(TensorData::new(all, [len]), &device)
    }
}

/// Held from seeding a device's generator until the model drawn from it is complete: Burn keeps
/// one generator per backend for the whole process, so two trainings started together (test
/// threads, the ranks of a `LocalGroup`, a user's own threads) would otherwise draw from each
/// other's stream, and the same seed would not give the same model.
static DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A device's generator, seeded and held by one model's draw (see [`SeededDraw::begin`]).
#[must_use = "the generator stays locked until `finish` or drop"]
pub struct SeededDraw {
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl SeededDraw {
    /// Locks the process's generators (waiting for any other draw to finish) and seeds
    /// `device`'s. Burn draws a parameter on its first use: keep this until the model's first
    /// forward pass has run, then [`finish`](Self::finish), and the parameters come out exactly
    /// as in a run alone in its process, in Burn's order.
    pub fn begin(device: &Device, seed: u64) -> Self {
        // A panic in another draw leaves nothing half-done here: the generator is seeded afresh.
        let lock = DRAW.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        Self { _lock: lock }
    }

    /// Draws what `model` has not used yet ([`materialize`]) and unlocks the generators.
    pub fn finish<M: Module>(self, model: &M) {
        materialize(model);
    }
}

/// Seeds `device` and draws a fresh model with `init` under [`SeededDraw`]. One rank: Burn
/// draws each parameter on its first use, so the draw is returned still open, for the caller to
/// [`finish`](SeededDraw::finish) after the model's first step. Several ranks: every parameter
/// is drawn now ([`materialize`]), rank 0 to the end before any other rank starts (rank 0's
/// parameters are the ones [`broadcast_module`] hands to all), and no draw is returned.
pub fn draw_model<M: Module, E>(
    group: &Group,
    device: &Device,
    seed: u64,
    init: impl FnOnce() -> Result<M, E>,
) -> Result<(M, Option<SeededDraw>), E> {
    if group.size() == 1 {
        let draw = SeededDraw::begin(device, seed);
        return Ok((init()?, Some(draw)));
    }
    if !group.is_leader() {
        group.barrier();
    }
    let model = {
        let draw = SeededDraw::begin(device, seed);
        let model = init();
        if let Ok(model) = &model {
            draw.finish(model);
        }
        model
    };
    // Also on an error, so the other ranks go on to fail rather than wait.
    if group.is_leader() {
        group.barrier();
    }
    Ok((model?, None))
}

/// `module` with rank 0's parameters and buffers on every rank of `group` (its record,
/// serialised once on rank 0 and broadcast).
pub fn broadcast_module<M: Module>(
    group: &Group,
    module: M,
    _device: &Device,
) -> Result<M, TrainError> {
    if group.size() == 1 {
        return Ok(module);
    }
    let bytes = if group.is_leader() {
        module
            .valid()
            .into_record()
            .into_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| format!("serializing the model: {e}"))
    } else {
        Ok(Vec::new())
    };
    let bytes = group
        .broadcast_result(bytes)
        .map_err(|message| TrainError::Leader { message })?;
    if group.is_leader() {
        return Ok(module);
    }
    crate::checkpoint::load_module_bytes(module, burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|message| TrainError::Leader {
            message: format!("its parameters do not fit this rank's model: {message}"),
        })
}

/// `values` as little-endian bytes.
pub(crate) fn bytemuck_f32(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern of it is a valid u8 sequence; the slice
    // covers exactly the values' memory.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// f32 values from their bytes (native order, as [`bytemuck_f32`] wrote them).
pub(crate) fn f32_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The contiguous share of `indices` (one global batch) that rank `rank` of `size` trains on.
///
/// # Panics
/// When `indices.len()` is not a multiple of `size` (`TrainConfig::validate` requires the
/// global batch to split evenly).
pub fn shard(indices: &[usize], rank: usize, size: usize) -> &[usize] {
    assert!(
        indices.len().is_multiple_of(size),
        "a global batch of {} does not split over {size} ranks",
        indices.len()
    );
    let per = indices.len() / size;
    &indices[rank * per..(rank + 1) * per]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_and_cover_the_batch() {
        let batch: Vec<usize> = (10..22).collect();
        let parts: Vec<&[usize]> = (0..3).map(|r| shard(&batch, r, 3)).collect();
        assert_eq!(parts[0], &[10, 11, 12, 13]);
        assert_eq!(parts[2], &[18, 19, 20, 21]);
        assert_eq!(parts.concat(), batch);
    }

    #[test]
    fn one_process_gathers_and_broadcasts_as_the_identity() {
        let group = Group::one_process();
        let device = burn::tensor::Device::flex();
        let z = Tensor::<2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &device);
        let out = group.gather_rows(z.clone());
        assert_eq!(out.into_data(), z.into_data());
        assert_eq!(group.broadcast_result(Ok(vec![7, 8])), Ok(vec![7, 8]));
        assert_eq!(
            group.broadcast_result(Err("no file".into())),
            Err("no file".into())
        );
        assert_eq!(group.totals(), CommTotals::default());
    }

    #[test]
    fn the_same_seed_draws_the_same_model_while_other_threads_draw() {
        // Two threads draw models with seeds 1 and 2, over and over, from the one generator
        // Burn keeps for flex: every draw of a seed must equal that seed's first.
        let draw = |seed: u64| {
            let device = burn::tensor::Device::flex();
            let draw = SeededDraw::begin(&device, seed);
            let linear = burn::nn::LinearConfig::new(32, 32).init(&device);
            let first_use = linear.weight.val();
            draw.finish(&linear);
            first_use
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 after convert")
        };
        let runs: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
            let threads: Vec<_> = [1u64, 2]
                .map(|seed| scope.spawn(move || (0..200).map(|_| draw(seed)).collect()))
                .into_iter()
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (seed, draws) in runs.iter().enumerate() {
            for (i, weights) in draws.iter().enumerate() {
                assert!(*weights == draws[0], "seed {}: draw {i} differs", seed + 1);
            }
        }
        assert!(
            runs[0][0] != runs[1][0],
            "seeds 1 and 2 drew the same weights"
        );
    }

    #[test]
    fn f32_bytes_round_trip() {
        let values = [1.5f32, -0.0, f32::MAX, 3e-39];
        assert_eq!(f32_from_bytes(bytemuck_f32(&values)), values);
    }
}
