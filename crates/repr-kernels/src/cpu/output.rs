//! Output buffers that a kernel writes in full, without zeroing them first.
//!
//! `vec![0.0; n]` for an op's output is a memset of the whole buffer on the calling thread,
//! before the kernel's parallel tasks write every element again. With
//! [`crate::reuse_freed_memory`] the allocator hands back recycled (non-zero) memory, so
//! `calloc` cannot skip it: in the `simclr` recipe's training step these memsets were 80% of
//! what the main thread did while rayon's workers waited (`perf`, `docs/benchmarks.md`). The
//! kernels that overwrite their output therefore take it as `&mut [MaybeUninit<f32>]`, and
//! [`uninit_vec`] (or [`written`], around one kernel call) allocates one without initialising it.

use std::mem::{ManuallyDrop, MaybeUninit};

/// `len` values to be written by a kernel: allocated, not initialised.
pub fn uninit_vec(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut buf = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` elements need no initialisation, and the capacity is `len`.
    unsafe { buf.set_len(len) };
    buf
}

/// The values of `buf` once a kernel has written every one of them.
///
/// # Safety
/// Every element of `buf` is initialised.
pub unsafe fn assume_init_vec(buf: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut buf = ManuallyDrop::new(buf);
    // SAFETY: every element is initialised (the caller's promise); `MaybeUninit<f32>` and
    // `f32` have the same size and alignment, and the allocation is handed over unchanged.
    unsafe { Vec::from_raw_parts(buf.as_mut_ptr().cast::<f32>(), buf.len(), buf.capacity()) }
}

/// A new buffer of `len` values written by `kernel`, and what `kernel` returned.
///
/// # Safety
/// `kernel` initialises every element of the buffer it is given.
pub unsafe fn written<R>(
    len: usize,
    kernel: impl FnOnce(&mut [MaybeUninit<f32>]) -> R,
) -> (Vec<f32>, R) {
    let mut buf = uninit_vec(len);
    let r = kernel(&mut buf);
    // SAFETY: the caller's promise.
    (unsafe { assume_init_vec(buf) }, r)
}

/// An initialised buffer, seen as the output of a kernel of this crate (for tests, examples
/// and callers that already hold a buffer to overwrite).
///
/// # Safety
/// Only initialised values may be written through the result, which every kernel of this
/// crate that takes an output buffer does.
pub unsafe fn overwrite(y: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the caller writes only initialised values, so `y` stays initialised.
    unsafe { &mut *(std::ptr::from_mut(y) as *mut [MaybeUninit<f32>]) }
}

/// Writes `v` into every element of `dst`, and returns it initialised.
pub fn write_filled(dst: &mut [MaybeUninit<f32>], v: f32) -> &mut [f32] {
    for d in dst.iter_mut() {
        d.write(v);
    }
    // SAFETY: every element was just written.
    unsafe { dst.assume_init_mut() }
}
