//! Buffers kept from one invocation for the next. A TimerFetch invocation reads a ~1 MB page and
//! writes ~1.2 MB of events: taken fresh each time, each is new memory that the kernel maps in
//! 4 KiB at a time as it is first written (a page fault each, ~250 per MB), and that the allocator
//! gives back to the kernel when it is freed (musl, as deployed, maps blocks this large on their
//! own and unmaps them; glibc does too, or trims its heap). Kept, a buffer is written again in
//! place, without faults.

use std::sync::{Mutex, PoisonError};

/// The largest buffer kept: a 2000-asset page is ~1 MB; anything far larger is let go.
const MAX_KEPT: usize = 16 * 1024 * 1024;

/// One buffer kept for the next use (two invocations at once: the second takes a fresh one).
#[derive(Debug, Default)]
pub struct Spare {
    kept: Mutex<Vec<u8>>,
}

impl Spare {
    pub const fn new() -> Self {
        Self {
            kept: Mutex::new(Vec::new()),
        }
    }

    /// The kept buffer, emptied, with room for at least `capacity` bytes (a new one if none is
    /// kept).
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut buffer = std::mem::take(&mut *self.lock());
        buffer.clear();
        buffer.reserve(capacity);
        buffer
    }

    /// Keeps `buffer` for the next [`Spare::take`], unless the one kept is larger (or it is
    /// larger than `MAX_KEPT`).
    pub fn keep(&self, buffer: Vec<u8>) {
        if buffer.capacity() > MAX_KEPT {
            return;
        }
        let mut kept = self.lock();
        if buffer.capacity() > kept.capacity() {
            *kept = buffer;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A buffer is only moved in and out under the lock: a panic cannot leave it half-written.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_taken_again_emptied() {
        let spare = Spare::new();
        let mut buffer = spare.take(1000);
        assert!(buffer.capacity() >= 1000);
        buffer.extend_from_slice(b"page");
        let at = buffer.as_ptr();
        spare.keep(buffer);
        let again = spare.take(10);
        assert_eq!((again.as_ptr(), again.len()), (at, 0));
        assert!(again.capacity() >= 1000);
        // Taken: the next one is new.
        assert_eq!(spare.take(0).capacity(), 0);
    }

    #[test]
    fn the_larger_buffer_is_kept_and_a_huge_one_let_go() {
        let spare = Spare::new();
        spare.keep(Vec::with_capacity(100));
        spare.keep(Vec::with_capacity(10));
        assert_eq!(spare.take(0).capacity(), 100);
        spare.keep(Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(spare.take(0).capacity(), 0);
    }
}
