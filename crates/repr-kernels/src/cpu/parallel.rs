//! Splitting work over rayon's threads.

/// A raw pointer that may cross threads: each task writes a part of the buffer no other task
/// touches (the caller proves the parts disjoint).
#[derive(Clone, Copy)]
pub struct SharedMut(pub *mut f32);

// SAFETY: only used for disjoint writes, see the call sites.
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The `len` elements from `start` as a slice.
    ///
    /// # Safety
    /// `start + len` lies within the buffer, and no other live slice overlaps this range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// rayon's thread count.
pub fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Splits `0..n` into `parts` contiguous ranges of near-equal length (some may be empty).
pub fn split(n: usize, parts: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts).map(move |p| (p * n / parts)..((p + 1) * n / parts))
}
