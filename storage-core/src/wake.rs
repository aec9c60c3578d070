//! Long-poll plumbing shared by queue backends: per-queue wake-ups for
//! receivers in this process, and the wait loop of a receive with
//! `wait > 0`.
//!
//! A backend calls [`Waiters::wake`] after a change that can make a
//! message deliverable has become visible to other readers (a commit, a
//! script's reply, a pub/sub notification), and runs long polls through
//! [`long_poll`], which registers for every wake-up *before* each
//! re-check so none is lost.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::queue::ReceivedMessage;

/// One [`Notify`] per queue that has a waiting receive.
#[derive(Debug, Default)]
pub struct Waiters {
    /// Registered long polls over all queues, so writers skip the map
    /// lock when nobody waits.
    count: AtomicUsize,
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    /// An empty registry.
    pub fn new() -> Self {
        Waiters::default()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        // The map holds no invariant a panicking holder could break.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any long poll is registered.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Wakes the long polls waiting on `queue`.
    pub fn wake(&self, queue: &str) {
        if !self.any() {
            return;
        }
        if let Some(n) = self.map().get(queue) {
            n.notify_waiters();
        }
    }

    /// Wakes every long poll (e.g. after a lost notification channel, so
    /// each re-checks).
    pub fn wake_all(&self) {
        if !self.any() {
            return;
        }
        for n in self.map().values() {
            n.notify_waiters();
        }
    }

    /// Registers a long poll on `queue` until the registration drops.
    pub fn register(&self, queue: &str) -> Registration<'_> {
        let notify = {
            let mut map = self.map();
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
pub struct Registration<'a> {
    waiters: &'a Waiters,
    queue: String,
    notify: Arc<Notify>,
}

impl Registration<'_> {
    /// The queue's wake-up signal.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
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

/// Resolves when any of the three futures does.
pub async fn first_of<A, B, C>(a: Pin<&mut A>, b: Pin<&mut B>, c: Pin<&mut C>)
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

/// What one receive attempt found: the deliveries, and when nothing was
/// delivered, the next instant (store clock) something may become
/// deliverable.
pub type Attempt = (Vec<ReceivedMessage>, Option<Timestamp>);

/// Runs a receive with `wait > 0`: `attempt` until it delivers something
/// or `wait` (real time) runs out.
///
/// Before each attempt the poll registers on `queue` in `waiters` and on
/// the clock's [`advanced`](Clock::advanced) signal, then sleeps after an
/// empty attempt until whichever comes first: a [`Waiters::wake`] for the
/// queue, a manual clock move, the attempt's next visible instant (on a
/// real clock; on a manual clock a harmless re-check), `recheck` (for
/// changes no notification reports, e.g. another process; `None` = never)
/// or the end of the wait. Needs the tokio time driver.
pub async fn long_poll<F, Fut>(
    waiters: &Waiters,
    clock: &dyn Clock,
    queue: &str,
    wait: Duration,
    recheck: Option<Duration>,
    mut attempt: F,
) -> Result<Vec<ReceivedMessage>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let reg = waiters.register(queue);
    loop {
        // Register for every wake-up before looking, so none is lost.
        let mut notified = pin!(reg.notify().notified());
        notified.as_mut().enable();
        let mut advanced = clock.advanced();
        let (got, next_visible) = attempt().await?;
        if !got.is_empty() {
            return Ok(got);
        }
        let real_now = tokio::time::Instant::now();
        if real_now >= deadline {
            return Ok(got);
        }
        let mut wake_at = deadline;
        if let Some(every) = recheck {
            wake_at = wake_at.min(real_now + every.max(Duration::from_millis(1)));
        }
        if let Some(t) = next_visible {
            let until = t
                .saturating_since(clock.now())
                .max(Duration::from_millis(1));
            wake_at = wake_at.min(real_now + until);
        }
        let sleep = pin!(tokio::time::sleep_until(wake_at));
        first_of(notified, advanced.as_mut(), sleep).await;
    }
}
