//! A counting semaphore: at most `n` threads at once inside a section.

use std::sync::{Condvar, Mutex, PoisonError};

/// `n` slots; [`Slots::acquire`] waits for a free one. The graph library keeps one search
/// context per thread it was sized for and fails a call that finds none free, so calls into
/// it take a slot first.
#[derive(Debug)]
pub(crate) struct Slots {
    len: usize,
    free: Mutex<usize>,
    freed: Condvar,
}

/// A taken slot, given back when dropped.
pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        let len = n.max(1);
        Self {
            len,
            free: Mutex::new(len),
            freed: Condvar::new(),
        }
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Takes a slot, waiting until one is free.
    pub fn acquire(&self) -> Slot<'_> {
        // The count stays consistent even if a holder panicked: it is only changed here and
        // in `drop`, never across a panic.
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Slots::new(2);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _slot = slots.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(*slots.free.lock().unwrap(), 2);
    }
}
