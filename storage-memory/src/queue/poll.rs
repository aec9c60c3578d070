//! Long-poll plumbing: waiter accounting and "first of several wake-ups".

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

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

/// Resolves when any of the three futures does.
pub(super) async fn first_of<A, B, C>(a: Pin<&mut A>, b: Pin<&mut B>, c: Pin<&mut C>)
where
    A: Future + ?Sized,
    B: Future + ?Sized,
    C: Future + ?Sized,
{
    let (mut a, mut b, mut c) = (a, b, c);
    std::future::poll_fn(move |cx| {
        if a.as_mut().poll(cx).is_ready()
            || b.as_mut().poll(cx).is_ready()
            || c.as_mut().poll(cx).is_ready()
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
