//! The cap on bytes held for requests still arriving, across every connection of a server:
//! a data block reserves its announced length before it is read, a long `get` line its length
//! as it grows. What does not fit is refused (`SERVER_ERROR out of memory ...`) and its bytes
//! read and thrown away, so a crowd of slow or hostile clients cannot make the server hold
//! more than the cap.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes reserved for unfinished requests, and the most there may be.
#[derive(Debug)]
pub(super) struct Budget {
    cap: AtomicUsize,
    used: AtomicUsize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            cap: AtomicUsize::new(usize::MAX),
            used: AtomicUsize::new(0),
        }
    }
}

impl Budget {
    /// Sets the cap (reservations already made stay).
    pub fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
    }

    /// Reserves `bytes`, unless that would pass the cap.
    pub fn reserve(&self, bytes: usize) -> Option<Reserved<'_>> {
        let cap = self.cap.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= cap)
            })
            .ok()
            .map(|_| Reserved {
                budget: self,
                bytes,
            })
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes held out of a [`Budget`] until dropped.
#[derive(Debug)]
pub(super) struct Reserved<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Reserved<'_> {
    /// Reserves `more` bytes besides; false (and nothing more reserved) past the cap.
    pub fn grow(&mut self, more: usize) -> bool {
        match self.budget.reserve(more) {
            Some(extra) => {
                self.bytes += extra.bytes;
                std::mem::forget(extra);
                true
            }
            None => false,
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_cap_and_come_back_when_dropped() {
        let budget = Budget::default();
        budget.set_cap(100);
        let first = budget.reserve(60).unwrap();
        assert!(budget.reserve(41).is_none());
        let mut second = budget.reserve(40).unwrap();
        assert!(!second.grow(1));
        drop(first);
        assert!(second.grow(60));
        assert_eq!(budget.used(), 100);
        drop(second);
        assert_eq!(budget.used(), 0);
    }
}
