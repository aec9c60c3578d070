//! Long-poll plumbing: waiter accounting (the wait itself uses
//! [`storage_core::wake::first_of`]).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts a long-polling receive for as long as it lives, so senders can
/// skip the notification (and its lock) when nobody waits.
///
/// Lost wake-ups are impossible: a poller increments the count, enables
/// its `Notified`, then re-checks the queue under the queue's mutex. A
/// sender changes the queue under that mutex and reads the count after
/// unlocking; if the poller's check came first, the mutex orders the
/// increment before the sender's read, so the sender notifies.
#[derive(Debug)]
pub(super) struct WaiterGuard<'a>(&'a AtomicUsize);

impl<'a> WaiterGuard<'a> {
    pub(super) fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WaiterGuard(count)
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
