//! The k best (score, id) pairs of a stream, in a bounded heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{FileId, Hit};

/// A candidate ordered from best to worst: higher score first, then lower id. The heap's
/// maximum is therefore the worst candidate kept.
#[derive(Clone, Copy, Debug)]
struct Candidate(Hit);

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.id.cmp(&other.0.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The `k` best candidates pushed so far.
#[derive(Clone, Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub fn push(&mut self, id: FileId, score: f32) {
        let candidate = Candidate(Hit { id, score });
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate < *worst
        {
            *worst = candidate;
        }
    }

    /// Adds the candidates of `other` (kept from another part of the gallery).
    pub fn merge(&mut self, other: TopK) {
        for Candidate(hit) in other.heap {
            self.push(hit.id, hit.score);
        }
    }

    /// The candidates kept, best first.
    pub fn into_hits(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Candidate(hit)| hit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_by_id() {
        let mut top = TopK::new(3);
        for (id, score) in [(5, 0.5), (1, 0.9), (4, 0.5), (3, 0.1), (2, 0.5), (6, 0.9)] {
            top.push(FileId(id), score);
        }
        let hits: Vec<(u64, f32)> = top.into_hits().iter().map(|h| (h.id.0, h.score)).collect();
        assert_eq!(hits, [(1, 0.9), (6, 0.9), (2, 0.5)]);
    }

    #[test]
    fn merging_halves_equals_one_pass() {
        let scores: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let mut whole = TopK::new(7);
        let (mut left, mut right) = (TopK::new(7), TopK::new(7));
        for (i, &s) in scores.iter().enumerate() {
            whole.push(FileId(i as u64), s);
            let half = if i % 2 == 0 { &mut left } else { &mut right };
            half.push(FileId(i as u64), s);
        }
        left.merge(right);
        assert_eq!(left.into_hits(), whole.into_hits());
        assert!(TopK::new(0).into_hits().is_empty());
    }
}
