//! Deterministic per-epoch shuffling.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A permutation of `0..len` that depends only on `(seed, epoch)`: ChaCha8 seeded from `seed`
/// on stream `epoch`, then a Fisher–Yates shuffle. Resuming a run at epoch `e` therefore sees
/// the same order as the uninterrupted run.
///
/// ```
/// let order = repr_data::epoch_permutation(5, 42, 0);
/// assert_eq!(order, repr_data::epoch_permutation(5, 42, 0));
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// ```
pub fn epoch_permutation(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_permutation() {
        let mut order = epoch_permutation(1000, 3, 5);
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn repeats_for_the_same_seed_and_epoch_only() {
        let a = epoch_permutation(100, 1, 0);
        assert_eq!(a, epoch_permutation(100, 1, 0));
        assert_ne!(a, epoch_permutation(100, 1, 1));
        assert_ne!(a, epoch_permutation(100, 2, 0));
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn handles_empty_and_single() {
        assert!(epoch_permutation(0, 1, 0).is_empty());
        assert_eq!(epoch_permutation(1, 1, 9), vec![0]);
    }
}
