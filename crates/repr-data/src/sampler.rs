//! Class-balanced P×K batches for metric learning.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// Batches of `P` classes × `K` images each (Hermans, Beyer, Leibe 2017, "In Defense of the
/// Triplet Loss for Person Re-Identification", section 3.1), so that every anchor of a batch has
/// positives and negatives to mine.
///
/// The sampler produces whole batches of dataset indices ([`epoch_batches`](Self::epoch_batches)),
/// so the grouping survives any number of loader workers: a worker is handed a batch, not a
/// stream of indices.
///
/// An epoch, a pure function of `(seed, epoch)`:
/// 1. each class's images are shuffled and cut into chunks of `K`. A class with at least `K`
///    images fills its last, short chunk with other images of the class (no image twice in a
///    chunk); a class with fewer than `K` images makes one chunk of all of them plus draws with
///    replacement (the only case where a batch repeats an image);
/// 2. batches are formed one at a time from the `P` classes with the most chunks left (ties
///    broken at random), so classes run out together; the epoch ends when fewer than `P` classes
///    have chunks left;
/// 3. the batches are shuffled.
///
/// When no class holds more than `1/P` of the chunks, every image appears in the epoch except at
/// most `P - 1` chunks' worth; a class that holds more cannot be covered by batches that take one
/// chunk of it each, and its remaining chunks are left for other epochs (the shuffle differs).
///
/// ```
/// use repr_data::PkSampler;
///
/// let labels = [0u32, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];
/// let sampler = PkSampler::new(&labels, 2, 3, 7)?;
/// let batches = sampler.epoch_batches(0);
/// assert_eq!(batches.len(), 2);
/// for batch in &batches {
///     assert_eq!(batch.len(), 6);
/// }
/// assert_eq!(batches, sampler.epoch_batches(0));
/// # Ok::<(), repr_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PkSampler {
    /// Dataset indices of each class present, by increasing label.
    classes: Vec<Vec<usize>>,
    classes_per_batch: usize,
    images_per_class: usize,
    seed: u64,
}

impl PkSampler {
    /// A sampler over a dataset with these `labels` (one per image, in dataset order), taking
    /// `classes_per_batch` (P) classes × `images_per_class` (K) images per batch.
    ///
    /// # Errors
    /// [`DataError::InvalidSampler`] when P or K is 0, when P exceeds the number of classes present,
    /// or when P × K exceeds the number of images.
    pub fn new(
        labels: &[u32],
        classes_per_batch: usize,
        images_per_class: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        let invalid = |reason: String| Err(DataError::InvalidSampler { reason });
        if classes_per_batch == 0 || images_per_class == 0 {
            return invalid(format!(
                "P (classes per batch) = {classes_per_batch} and K (images per class) = \
                 {images_per_class} must both be at least 1"
            ));
        }
        let mut by_label: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (index, &label) in labels.iter().enumerate() {
            by_label.entry(label).or_default().push(index);
        }
        let classes: Vec<Vec<usize>> = by_label.into_values().collect();
        if classes_per_batch > classes.len() {
            return invalid(format!(
                "P (classes per batch) = {classes_per_batch} but the dataset has only {} classes",
                classes.len()
            ));
        }
        match classes_per_batch.checked_mul(images_per_class) {
            Some(size) if size <= labels.len() => {}
            _ => {
                return invalid(format!(
                    "a batch of P × K = {classes_per_batch} × {images_per_class} images is larger \
                     than the dataset ({} images)",
                    labels.len()
                ));
            }
        }
        Ok(Self {
            classes,
            classes_per_batch,
            images_per_class,
            seed,
        })
    }

    /// P, the number of classes in each batch.
    pub fn classes_per_batch(&self) -> usize {
        self.classes_per_batch
    }

    /// K, the number of images of each class in a batch.
    pub fn images_per_class(&self) -> usize {
        self.images_per_class
    }

    /// P × K.
    pub fn batch_size(&self) -> usize {
        self.classes_per_batch * self.images_per_class
    }

    /// The batches of `epoch`, each `P × K` dataset indices grouped by class (K indices of one
    /// class, then K of the next). The same `(seed, epoch)` always gives the same batches.
    pub fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch);
        let k = self.images_per_class;

        // Step 1: chunks of K per class, consumed from the back (the order is random anyway).
        let mut chunks: Vec<Vec<Vec<usize>>> = self
            .classes
            .iter()
            .map(|images| {
                let mut order = images.clone();
                order.shuffle(&mut rng);
                let mut class_chunks: Vec<Vec<usize>> =
                    order.chunks(k).map(<[usize]>::to_vec).collect();
                if let Some(last) = class_chunks.last_mut().filter(|c| c.len() < k) {
                    if images.len() >= k {
                        // Fill from the images not already in this chunk (no repeats).
                        let mut others: Vec<usize> = order[..order.len() - last.len()].to_vec();
                        others.shuffle(&mut rng);
                        last.extend(others.into_iter().take(k - last.len()));
                    } else {
                        while last.len() < k {
                            last.push(images[rng.random_range(0..images.len())]);
                        }
                    }
                }
                class_chunks
            })
            .collect();

        // Step 2: P classes per batch, those with the most chunks left first.
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        let mut batches = Vec::new();
        loop {
            order.shuffle(&mut rng);
            // Stable: ties keep the random order just drawn.
            order.sort_by_key(|&c| std::cmp::Reverse(chunks[c].len()));
            let picked = &order[..self.classes_per_batch];
            if chunks[picked[self.classes_per_batch - 1]].is_empty() {
                break;
            }
            let mut batch = Vec::with_capacity(self.batch_size());
            for &class in picked {
                batch.extend(
                    chunks[class]
                        .pop()
                        .expect("picked classes have chunks left"),
                );
            }
            batches.push(batch);
        }

        // Step 3.
        batches.shuffle(&mut rng);
        batches
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Labels with the given number of images per class, interleaved (not sorted by class).
    fn labels_with_counts(counts: &[usize]) -> Vec<u32> {
        let mut labels = Vec::new();
        let max = counts.iter().copied().max().unwrap_or(0);
        for i in 0..max {
            for (class, &count) in counts.iter().enumerate() {
                if i < count {
                    labels.push(class as u32);
                }
            }
        }
        labels
    }

    fn check_batches(labels: &[u32], sampler: &PkSampler, batches: &[Vec<usize>]) {
        let (p, k) = (sampler.classes_per_batch(), sampler.images_per_class());
        for batch in batches {
            assert_eq!(batch.len(), p * k);
            let mut per_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for &i in batch {
                per_class.entry(labels[i]).or_default().push(i);
            }
            assert_eq!(per_class.len(), p, "{batch:?}");
            for (class, images) in &per_class {
                assert_eq!(images.len(), k, "class {class} in {batch:?}");
                let distinct: BTreeSet<_> = images.iter().collect();
                let class_size = labels.iter().filter(|&&l| l == *class).count();
                // Repeats only when the class has fewer than K images.
                assert_eq!(
                    distinct.len(),
                    k.min(class_size),
                    "class {class} in {batch:?}"
                );
            }
            // Grouped by class: K of one class, then K of the next.
            for group in batch.chunks(k) {
                assert!(
                    group.iter().all(|&i| labels[i] == labels[group[0]]),
                    "{batch:?}"
                );
            }
        }
    }

    #[test]
    fn every_batch_has_p_classes_of_k() {
        for (counts, p, k) in [
            (vec![6; 10], 4, 3),
            (vec![7, 5, 9, 2, 12, 8], 3, 4),
            (vec![1, 1, 1, 30], 2, 2),
            (vec![6000; 10], 8, 4),
        ] {
            let labels = labels_with_counts(&counts);
            let sampler = PkSampler::new(&labels, p, k, 3).unwrap();
            for epoch in 0..3 {
                let batches = sampler.epoch_batches(epoch);
                assert!(!batches.is_empty());
                check_batches(&labels, &sampler, &batches);
            }
        }
    }

    #[test]
    fn deterministic_per_seed_and_epoch() {
        let labels = labels_with_counts(&[9, 7, 8, 10, 6]);
        let a = PkSampler::new(&labels, 3, 2, 11).unwrap();
        let b = PkSampler::new(&labels, 3, 2, 11).unwrap();
        assert_eq!(a.epoch_batches(4), b.epoch_batches(4));
        assert_ne!(a.epoch_batches(4), a.epoch_batches(5));
        let c = PkSampler::new(&labels, 3, 2, 12).unwrap();
        assert_ne!(a.epoch_batches(4), c.epoch_batches(4));
    }

    #[test]
    fn balanced_epoch_covers_every_image_once() {
        // 10 classes × 12 images, P = 5, K = 4: 30 chunks, 6 batches, nothing left over.
        let labels = labels_with_counts(&[12; 10]);
        let sampler = PkSampler::new(&labels, 5, 4, 1).unwrap();
        for epoch in 0..4 {
            let batches = sampler.epoch_batches(epoch);
            assert_eq!(batches.len(), 6);
            let mut seen: Vec<usize> = batches.concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..labels.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn unbalanced_epoch_leaves_fewer_than_p_chunks() {
        // No class holds more than 1/P of the chunks: all but < P chunks are used, and every
        // image of a class whose size is a multiple of K appears.
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        for trial in 0..50 {
            let classes = rng.random_range(3..12);
            let k = rng.random_range(1..5);
            let p = rng.random_range(2..=classes);
            let counts: Vec<usize> = (0..classes).map(|_| k * rng.random_range(1..8)).collect();
            let total_chunks: usize = counts.iter().map(|c| c / k).sum();
            if counts.iter().any(|c| c / k * p > total_chunks) {
                continue;
            }
            let labels = labels_with_counts(&counts);
            let sampler = PkSampler::new(&labels, p, k, trial).unwrap();
            let batches = sampler.epoch_batches(0);
            check_batches(&labels, &sampler, &batches);
            let used = batches.len() * p;
            assert!(
                total_chunks - used < p,
                "{counts:?} p={p} k={k}: used {used} of {total_chunks}"
            );
            let seen: BTreeSet<usize> = batches.concat().into_iter().collect();
            assert_eq!(
                seen.len(),
                used * k,
                "no image twice when class sizes are multiples of K"
            );
        }
    }

    #[test]
    fn small_classes_are_sampled_with_replacement() {
        // Class 0 has 2 images, K = 4: its chunk repeats images; the others do not.
        let labels = labels_with_counts(&[2, 8, 8]);
        let sampler = PkSampler::new(&labels, 3, 4, 5).unwrap();
        let batches = sampler.epoch_batches(0);
        assert_eq!(batches.len(), 1);
        check_batches(&labels, &sampler, &batches);
    }

    #[test]
    fn impossible_configurations_are_errors() {
        let labels = labels_with_counts(&[3, 3, 3]);
        let err = PkSampler::new(&labels, 4, 2, 0).unwrap_err();
        assert!(err.to_string().contains("only 3 classes"), "{err}");
        let err = PkSampler::new(&labels, 3, 4, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("larger than the dataset (9 images)"),
            "{err}"
        );
        let err = PkSampler::new(&labels, 0, 4, 0).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = PkSampler::new(&[], 1, 1, 0).unwrap_err();
        assert!(err.to_string().contains("only 0 classes"), "{err}");
    }
}
