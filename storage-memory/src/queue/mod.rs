//! The SQS-style queue tier of the memory backend.
//!
//! # Layout
//!
//! The store holds `RwLock<BTreeMap<name, Arc<Queue>>>`. Send, receive,
//! ack and change_visibility hold the map's read lock for the call (no
//! reference count to move on the hot path); a long poll and the rarer
//! operations clone the queue's `Arc` under it and release it. Each then
//! works under the queue's own `parking_lot::Mutex`. No lock is held
//! across an `.await`, and no code path takes the map's write lock while
//! holding a queue lock. The dead-letter lookup, made under a queue lock
//! (and maybe under the map's read lock already), takes the read lock
//! recursively, which a waiting writer cannot block, so it cannot
//! deadlock against a create or delete. A dead-letter move takes
//! the messages out under the source queue's lock, releases it, then files
//! them under the dead-letter queue's lock. A queue naming itself as its dead-letter
//! queue is treated as having none. If the dead-letter queue is deleted in between,
//! the move is ordered before the deletion and the messages go with it.
//!
//! # Costs
//!
//! See [`state`] (per queue), [`lanes`] (the time indexes) and [`fifo`]
//! (FIFO groups). In short: on a standard queue send, receive (per
//! message), ack and change_visibility are O(1) amortised while keys
//! arrive in a few increasing runs (one per delay and visibility in use)
//! and O(log n) otherwise; FIFO queues add O(log m + log G) per message
//! for their groups; counts is O(n).
//!
//! # Long polls
//!
//! A receive with `wait > 0` that finds nothing registers on the queue's
//! `Notify` (and the clock's [`advanced`](storage_core::Clock::advanced)
//! signal) *before* re-checking, then sleeps until whichever comes first:
//! a notification (send, nack / change_visibility, ack on a FIFO queue,
//! dead-letter arrival, import, deletion), a manual clock move, the
//! earliest future visible-at (meaningful on a real clock; on a manual
//! clock it only causes a harmless re-check), or the end of the wait
//! (real time, `tokio::time`; the runtime needs its time driver). A queue
//! deleted during the wait makes the receive `NotFound`.

mod fifo;
mod hash;
mod ids;
mod lanes;
mod poll;
mod state;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use storage_core::{
    validate, At, Capabilities, Context, Error, MessageId, QueueConfig, QueueCounts, QueueStore,
    Receipt, ReceiveOptions, ReceivedMessage, Result, SendMessage, Timestamp,
};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::backend::MemoryStore;
use crate::config::{BACKEND, CAPABILITIES};

use self::poll::WaiterGuard;
use self::state::QueueCore;
use storage_core::wake::first_of;

/// Every queue of one store, by name.
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    map: RwLock<BTreeMap<String, Arc<Queue>>>,
}

/// One queue: its state and its long-poll plumbing.
#[derive(Debug)]
pub(crate) struct Queue {
    core: Mutex<QueueCore>,
    notify: Notify,
    /// Long polls currently registered (see [`WaiterGuard`]).
    waiters: AtomicUsize,
    /// Set once the queue is removed from the store.
    deleted: AtomicBool,
}

impl Queue {
    fn new(core: QueueCore) -> Self {
        Queue {
            core: Mutex::new(core),
            notify: Notify::new(),
            waiters: AtomicUsize::new(0),
            deleted: AtomicBool::new(false),
        }
    }

    /// Wakes the long polls of this queue, if there are any. Call after
    /// releasing the queue's lock.
    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }
}

/// A receive: done at once, or a long poll to run on this queue.
enum Attempt {
    Done(Vec<ReceivedMessage>),
    Poll(Arc<Queue>),
}

fn span(op: &'static str, queue: &str) -> tracing::Span {
    tracing::debug_span!("queue", backend = BACKEND, op = op, queue = queue)
}

fn not_found(op: &'static str, queue: &str) -> Error {
    Error::not_found(
        Context::scoped(op, BACKEND, queue),
        format!("queue {queue:?}"),
    )
}

fn stale(op: &'static str, queue: &str, receipt: &Receipt) -> Error {
    Error::StaleReceipt {
        ctx: Context::scoped(op, BACKEND, queue),
        receipt: receipt.to_string(),
    }
}

/// The allocation-free context of an operation on `queue`; the owned
/// `Context` is built only if a check fails.
fn at<'a>(op: &'static str, queue: &'a str) -> At<'a> {
    At::scoped(op, BACKEND, queue)
}

/// Checks a queue name by the namespace rules.
fn check_name(op: &'static str, queue: &str) -> Result<()> {
    validate::namespace(at(op, queue), &CAPABILITIES, queue)
}

impl MemoryStore {
    fn queue_handle(&self, name: &str) -> Option<Arc<Queue>> {
        self.inner.queues.map.read().get(name).cloned()
    }

    /// The dead-letter queue `name`, looked up from under a queue lock
    /// (see the module docs on why the read is recursive).
    fn dead_letter_handle(&self, name: &str) -> Option<Arc<Queue>> {
        self.inner.queues.map.read_recursive().get(name).cloned()
    }

    /// Runs `f` on the named queue under the map's read lock; errors as
    /// [`MemoryStore::existing_queue`].
    fn with_queue<T>(
        &self,
        op: &'static str,
        name: &str,
        f: impl FnOnce(&Queue) -> Result<T>,
    ) -> Result<T> {
        let map = self.inner.queues.map.read();
        match map.get(name) {
            Some(q) => f(q),
            None => {
                drop(map);
                check_name(op, name)?;
                Err(not_found(op, name))
            }
        }
    }

    /// The named queue: `InvalidInput` for a name no queue can have,
    /// `NotFound` for a valid name that is not a queue.
    ///
    /// The name is checked only on a miss: create and import validate
    /// every name they file, so a name found in the map is valid, and the
    /// hot path skips the character scan.
    fn existing_queue(&self, op: &'static str, name: &str) -> Result<Arc<Queue>> {
        match self.queue_handle(name) {
            Some(q) => Ok(q),
            None => {
                check_name(op, name)?;
                Err(not_found(op, name))
            }
        }
    }

    fn q_create(&self, queue: &str, config: QueueConfig) -> Result<()> {
        let ctx = Context::scoped("create_queue", BACKEND, queue);
        validate::namespace(&ctx, &CAPABILITIES, queue)?;
        config.validate(&ctx, &CAPABILITIES)?;
        let existing = {
            let mut map = self.inner.queues.map.write();
            match map.get(queue) {
                Some(q) => q.clone(),
                None => {
                    map.insert(
                        queue.to_owned(),
                        Arc::new(Queue::new(QueueCore::new(config))),
                    );
                    return Ok(());
                }
            }
        };
        let same = *existing.core.lock().config == config;
        if same {
            Ok(())
        } else {
            Err(Error::AlreadyExists {
                ctx,
                what: format!("queue {queue:?} with a different configuration"),
            })
        }
    }

    fn q_delete(&self, queue: &str) -> Result<bool> {
        check_name("delete_queue", queue)?;
        let removed = self.inner.queues.map.write().remove(queue);
        Ok(match removed {
            Some(q) => {
                q.deleted.store(true, Ordering::SeqCst);
                q.notify.notify_waiters();
                true
            }
            None => false,
        })
    }

    fn q_list(&self, prefix: &str) -> Vec<String> {
        self.inner
            .queues
            .map
            .read()
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn q_send(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        let at = at("send_batch", queue);
        validate::batch_size(at, messages.len())?;
        self.with_queue("send_batch", queue, |q| self.send_to(at, q, messages))
    }

    fn send_to(&self, at: At<'_>, q: &Queue, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        let mut core = q.core.lock();
        let dedup = loop {
            if !core.config.content_based_dedup {
                // Cheap checks: done under the lock, against the config
                // the send is filed under.
                break state::validate_batch(at, &messages, &core.config)?;
            }
            // Content-based dedup hashes bodies: validate outside the
            // lock, then check the config was not replaced meanwhile (by
            // an import) or validate again.
            let config = core.config.clone();
            drop(core);
            let dedup = state::validate_batch(at, &messages, &config)?;
            core = q.core.lock();
            if Arc::ptr_eq(&core.config, &config) {
                break dedup;
            }
        };
        let now = self.inner.clock.now();
        core.expire(now);
        let ids = core.send(messages, dedup, now);
        drop(core);
        q.wake();
        Ok(ids)
    }

    /// One non-waiting receive attempt: picks under the queue's lock, then
    /// files dead-letter moves under the dead-letter queue's lock. Returns
    /// the deliveries and, when there are none, the next visible-at.
    fn receive_once(
        &self,
        queue: &str,
        q: &Queue,
        options: &ReceiveOptions,
    ) -> (Vec<ReceivedMessage>, Option<Timestamp>) {
        let (pick, now) = {
            let mut core = q.core.lock();
            let now = self.inner.clock.now();
            core.expire(now);
            let visibility = options
                .visibility_timeout
                .unwrap_or(core.config.visibility_timeout);
            // A queue redriving to itself has no dead-letter queue: its
            // messages are delivered normally.
            let pick = core.receive(now, options.max_messages, visibility, |dlq| {
                if dlq == queue {
                    None
                } else {
                    self.dead_letter_handle(dlq)
                }
            });
            (pick, now)
        };
        if !pick.moved.is_empty() {
            if let Some(dlq) = &pick.dlq {
                {
                    let mut core = dlq.core.lock();
                    for m in pick.moved {
                        core.accept_dead_letter(m, now);
                    }
                }
                dlq.wake();
            }
        }
        (pick.delivered, pick.next_visible)
    }

    async fn long_poll(
        &self,
        queue: &str,
        q: &Queue,
        options: &ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>> {
        let deadline = tokio::time::Instant::now() + options.wait;
        let _waiting = WaiterGuard::new(&q.waiters);
        loop {
            // Register for every wake-up before looking, so none is lost.
            let mut notified = pin!(q.notify.notified());
            notified.as_mut().enable();
            let mut advanced = self.inner.clock.advanced();
            if q.deleted.load(Ordering::SeqCst) {
                return Err(not_found("receive", queue));
            }
            let (got, next_visible) = self.receive_once(queue, q, options);
            if !got.is_empty() {
                return Ok(got);
            }
            let real_now = tokio::time::Instant::now();
            if real_now >= deadline {
                return Ok(got);
            }
            let mut wake_at = deadline;
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

    fn q_ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        self.with_queue("ack", queue, |q| {
            let fifo = {
                let mut core = q.core.lock();
                let now = self.inner.clock.now();
                core.expire(now);
                core.ack(receipt, now)
                    .map_err(|_| stale("ack", queue, receipt))?;
                core.config.fifo
            };
            // Acking a FIFO message may unblock its group.
            if fifo {
                q.wake();
            }
            Ok(())
        })
    }

    fn q_change_visibility(&self, queue: &str, receipt: &Receipt, timeout: Duration) -> Result<()> {
        validate::visibility_timeout(at("change_visibility", queue), timeout)?;
        self.with_queue("change_visibility", queue, |q| {
            {
                let mut core = q.core.lock();
                let now = self.inner.clock.now();
                core.expire(now);
                core.change_visibility(receipt, timeout, now)
                    .map_err(|_| stale("change_visibility", queue, receipt))?;
            }
            q.wake();
            Ok(())
        })
    }

    fn q_import(&self, queue: &str, state: storage_core::QueueState) -> Result<()> {
        let ctx = Context::scoped("import_queue", BACKEND, queue);
        validate::namespace(&ctx, &CAPABILITIES, queue)?;
        state.config.validate(&ctx, &CAPABILITIES)?;
        let now = self.inner.clock.now();
        let core = QueueCore::from_state(state, now).map_err(|r| Error::invalid(ctx, r))?;
        let existing = {
            let mut map = self.inner.queues.map.write();
            match map.get(queue) {
                Some(q) => q.clone(),
                None => {
                    map.insert(queue.to_owned(), Arc::new(Queue::new(core)));
                    return Ok(());
                }
            }
        };
        *existing.core.lock() = core;
        existing.wake();
        Ok(())
    }
}

#[async_trait]
impl QueueStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn create_queue(&self, queue: &str, config: QueueConfig) -> Result<()> {
        span("create_queue", queue).in_scope(|| self.q_create(queue, config))
    }

    async fn queue_config(&self, queue: &str) -> Result<QueueConfig> {
        span("queue_config", queue).in_scope(|| {
            let q = self.existing_queue("queue_config", queue)?;
            let config = QueueConfig::clone(&q.core.lock().config);
            Ok(config)
        })
    }

    async fn delete_queue(&self, queue: &str) -> Result<bool> {
        span("delete_queue", queue).in_scope(|| self.q_delete(queue))
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        span("list_queues", prefix).in_scope(|| Ok(self.q_list(prefix)))
    }

    async fn send_batch(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        span("send_batch", queue).in_scope(|| self.q_send(queue, messages))
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let span = span("receive", queue);
        let wait = span.in_scope(|| {
            let ctx = at("receive", queue);
            validate::batch_size(ctx, options.max_messages)?;
            if let Some(v) = options.visibility_timeout {
                validate::visibility_timeout(ctx, v)?;
            }
            validate::wait(ctx, options.wait)?;
            if options.wait.is_zero() {
                self.with_queue("receive", queue, |q| {
                    Ok(Attempt::Done(self.receive_once(queue, q, &options).0))
                })
            } else {
                self.existing_queue("receive", queue).map(Attempt::Poll)
            }
        })?;
        let q = match wait {
            Attempt::Done(got) => return Ok(got),
            Attempt::Poll(q) => q,
        };
        // Boxed on its own so the future of a plain receive (which
        // `async_trait` boxes on every call) does not carry the long
        // poll's much larger state.
        Box::pin(self.long_poll(queue, &q, &options))
            .instrument(span)
            .await
    }

    async fn ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        span("ack", queue).in_scope(|| self.q_ack(queue, receipt))
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<()> {
        span("change_visibility", queue)
            .in_scope(|| self.q_change_visibility(queue, receipt, timeout))
    }

    async fn purge(&self, queue: &str) -> Result<()> {
        span("purge", queue).in_scope(|| {
            let q = self.existing_queue("purge", queue)?;
            q.core.lock().purge();
            Ok(())
        })
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts> {
        span("counts", queue).in_scope(|| {
            let q = self.existing_queue("counts", queue)?;
            let mut core = q.core.lock();
            let now = self.inner.clock.now();
            core.expire(now);
            Ok(core.counts(now))
        })
    }

    async fn export_queue(&self, queue: &str) -> Result<storage_core::QueueState> {
        span("export_queue", queue).in_scope(|| {
            let q = self.existing_queue("export_queue", queue)?;
            let mut core = q.core.lock();
            let now = self.inner.clock.now();
            Ok(core.export(now))
        })
    }

    async fn import_queue(&self, queue: &str, state: storage_core::QueueState) -> Result<()> {
        span("import_queue", queue).in_scope(|| self.q_import(queue, state))
    }
}
