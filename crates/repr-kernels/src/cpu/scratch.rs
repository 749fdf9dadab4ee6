//! Per-thread scratch buffers, reused across calls so that the column matrices of every step
//! do not go back to the allocator (and to fresh, page-faulting memory).

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two scratch buffers of at least `a` and `b` elements (contents unspecified).
pub fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let [x, y] = &mut *bufs;
            grow(x, a);
            grow(y, b);
            f(&mut x[..a], &mut y[..b])
        }
        // Re-entered on this thread (a nested rayon task): fresh buffers, still correct.
        Err(_) => f(&mut vec![0.0; a], &mut vec![0.0; b]),
    })
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}
