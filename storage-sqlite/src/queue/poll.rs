//! Long polls: per-queue wake-ups for receivers in this process.
//!
//! A receive with `wait > 0` that finds nothing registers on its queue's
//! [`Notify`] and subscribes to the clock's
//! [`advanced`](storage_core::Clock::advanced) signal *before* re-checking
//! the database, then sleeps until whichever comes first:
//!
//! - a notification: a send, nack / change_visibility, FIFO ack,
//!   dead-letter arrival, import or deletion of the queue in this process
//!   (fired after the writing transaction commits);
//! - a manual clock move;
//! - the earliest future visible-at of the queue's messages (meaningful
//!   on a real clock; on a manual clock it only causes a harmless
//!   re-check);
//! - the cross-process poll interval
//!   ([`SqliteConfig::cross_process_poll`](crate::SqliteConfig)), which
//!   picks up messages sent by other processes on the same file;
//! - the end of the wait (real time, `tokio::time`).
//!
//! No wake-up is lost: the poller enables its `Notified` before its
//! re-check runs, and a writer notifies only after its commit. The
//! re-check and the write both hold the writer connection's mutex, so
//! either the re-check sees the committed message or it ran first, in
//! which case the writer's notification (which reads the waiter count
//! after its commit) finds the enabled `Notified`. A queue deleted during
//! the wait makes the receive `NotFound` at its next re-check.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use parking_lot::Mutex;
use storage_core::{ReceiveOptions, ReceivedMessage, Result};
use tokio::sync::Notify;

use crate::backend::SqliteStore;

/// Long-poll wake-ups for receivers in this process: one [`Notify`] per
/// queue that has a waiting receive.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// Registered long polls over all queues, so writers skip the map
    /// lock when nobody waits.
    count: AtomicUsize,
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    /// Wakes the long polls waiting on `queue` (call after committing).
    pub(crate) fn wake(&self, queue: &str) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(n) = self.map.lock().get(queue) {
            n.notify_waiters();
        }
    }

    fn register(&self, queue: &str) -> Registration<'_> {
        let notify = {
            let mut map = self.map.lock();
            self.count.fetch_add(1, Ordering::SeqCst);
            map.entry(queue.to_owned())
                .or_insert_with(|| Arc::new(Notify::new()))
                .clone()
        };
        Registration {
            waiters: self,
            queue: queue.to_owned(),
            notify,
        }
    }
}

/// One long poll's registration; dropping it unregisters (and forgets the
/// queue's `Notify` when it was the last waiter).
#[derive(Debug)]
struct Registration<'a> {
    waiters: &'a Waiters,
    queue: String,
    notify: Arc<Notify>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock();
        self.waiters.count.fetch_sub(1, Ordering::SeqCst);
        // The map's handle and ours: nobody else waits on this queue.
        let last = map
            .get(&self.queue)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify) && Arc::strong_count(n) == 2);
        if last {
            map.remove(&self.queue);
        }
    }
}

impl SqliteStore {
    /// A receive with `wait > 0` (options already validated).
    pub(super) async fn long_poll(
        &self,
        queue: &str,
        options: ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>> {
        let deadline = tokio::time::Instant::now() + options.wait;
        let poll_every = self
            .inner
            .config
            .cross_process_poll
            .max(Duration::from_millis(1));
        let reg = self.inner.waiters.register(queue);
        loop {
            // Register for every wake-up before looking, so none is lost.
            let mut notified = pin!(reg.notify.notified());
            notified.as_mut().enable();
            let mut advanced = self.inner.clock.advanced();
            let (got, next_visible) = self.receive_once(queue, options).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let real_now = tokio::time::Instant::now();
            if real_now >= deadline {
                return Ok(got);
            }
            let mut wake_at = deadline.min(real_now + poll_every);
            if let Some(t) = next_visible {
                let until = t
                    .saturating_since(self.inner.clock.now())
                    .max(Duration::from_millis(1));
                wake_at = wake_at.min(real_now + until);
            }
            let sleep = pin!(tokio::time::sleep_until(wake_at));
            first_of(notified, advanced.as_mut(), sleep).await;
        }
    }
}

/// Resolves when any of the three futures does.
async fn first_of<A, B, C>(a: Pin<&mut A>, b: Pin<&mut B>, c: Pin<&mut C>)
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
