//! Splitting work over rayon's threads.

use std::mem::MaybeUninit;

/// A raw pointer that may cross threads: each task writes a part of the buffer no other task
/// touches (the caller proves the parts disjoint).
#[derive(Clone, Copy)]
pub struct SharedMut(pub *mut f32);

// SAFETY: only used for disjoint writes, see the call sites.
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The `len` elements from `start` as an output to overwrite (they may be uninitialised).
    ///
    /// # Safety
    /// `start + len` lies within the buffer, and no other live slice overlaps this range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn uninit(&self, start: usize, len: usize) -> &mut [MaybeUninit<f32>] {
        // SAFETY: guaranteed by the caller; `MaybeUninit<f32>` has `f32`'s layout.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start).cast(), len) }
    }

    /// The start of an output buffer.
    pub fn of(out: &mut [MaybeUninit<f32>]) -> Self {
        Self(out.as_mut_ptr().cast())
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
