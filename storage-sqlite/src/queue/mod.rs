//! The SQS-style queue tier on SQLite.
//!
//! # Layout
//!
//! Tables and indexes are documented in [`crate::schema`]. A queue is a
//! row of `storage_queues` (config as JSON, next sequence); its messages
//! are rows of `storage_messages` keyed by `(queue, seq)`; FIFO queues
//! also keep one `storage_fifo_groups` row per non-empty group (head
//! sequence and the instant the group becomes deliverable), which every
//! write keeps in step with the messages in the same transaction.
//!
//! # Transactions
//!
//! Every operation that reads then writes — create, send, receive, ack,
//! change_visibility, purge, delete, import — is one `BEGIN IMMEDIATE`
//! transaction on the writer connection: the write lock is taken before
//! anything is read, so two consumers (in this process or another one on
//! the same file) can never pick the same message, and a stale-receipt
//! check cannot race the delivery that made it stale. `queue_config`,
//! `list_queues`, `counts` and `export_queue` read a consistent snapshot
//! on a reader connection. "Now" is read from the store's clock once per
//! call and bound as a parameter.
//!
//! Retention is lazy: every write transaction first deletes the queue's
//! messages with `sent_at <= now - retention` (an index range on
//! `(queue, sent_at)`: O(e log n) for e expired messages, O(log n) when
//! there are none); reads filter them out.
//!
//! # Costs
//!
//! n = messages in the queue, b = messages a receive delivers or moves.
//!
//! - send: O(log n) per message (+ dedup lookup and group upsert on FIFO);
//! - standard receive: O((b + 1) log n) — an index range on
//!   `(queue, visible_at, seq)` with `LIMIT`, never touching hidden
//!   messages (see [`receive`]);
//! - FIFO receive: O((b + k) log n) where k is the number of *blocked*
//!   groups whose head sequence is below the last group picked (a walk
//!   over `storage_fifo_groups` in head order, skipping groups whose
//!   `ready_at` is in the future) — blocked messages behind a group's
//!   head are never visited, so a backlog in one in-flight group costs
//!   nothing;
//! - ack / change_visibility: O(log n) (+ one group refresh on FIFO);
//! - counts / export: O(n); purge / delete: O(n) deletes.
//!
//! # Long polls
//!
//! See [`poll`]: a waiting receive registers on its queue's
//! [`tokio::sync::Notify`] in [`Waiters`] *before* re-checking, so a send,
//! nack, FIFO ack, dead-letter arrival, import or deletion in this process
//! wakes it at once; a manual clock move wakes it too; and it re-checks
//! every [`cross_process_poll`](crate::SqliteConfig::cross_process_poll)
//! (for messages sent by other processes) or at the earliest future
//! visible-at, whichever comes first.

mod admin;
mod poll;
mod receipt;
mod receive;
mod rows;
mod send;
mod snapshot;

use std::time::Duration;

use async_trait::async_trait;
use storage_core::{
    validate, At, Capabilities, Context, Error, MessageId, QueueConfig, QueueCounts, QueueStore,
    Receipt, ReceiveOptions, ReceivedMessage, Result, SendMessage, Timestamp,
};
use tracing::Instrument;

use crate::backend::SqliteStore;
use crate::config::{BACKEND, CAPABILITIES};
use crate::error::map_err;

pub(crate) use storage_core::wake::Waiters;

/// The operation and queue an error is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cx<'a> {
    pub(super) op: &'static str,
    pub(super) queue: &'a str,
}

impl<'a> Cx<'a> {
    pub(super) fn new(op: &'static str, queue: &'a str) -> Self {
        Cx { op, queue }
    }

    /// The allocation-free context for validators.
    pub(super) fn at(self) -> At<'a> {
        At::scoped(self.op, BACKEND, self.queue)
    }

    pub(super) fn ctx(self) -> Context {
        Context::scoped(self.op, BACKEND, self.queue)
    }

    /// Maps a SQLite error of this operation.
    pub(super) fn db(self) -> impl Fn(rusqlite::Error) -> Error + 'a {
        move |e| map_err(self.ctx(), e)
    }

    /// A stored value that does not decode (a corrupt or foreign row).
    pub(super) fn corrupt(self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Backend {
            ctx: self.ctx(),
            source: format!("stored {what} does not decode: {e}").into(),
        }
    }

    pub(super) fn not_found(self) -> Error {
        Error::not_found(self.ctx(), format!("queue {:?}", self.queue))
    }

    pub(super) fn stale(self, receipt: &Receipt) -> Error {
        Error::StaleReceipt {
            ctx: self.ctx(),
            receipt: receipt.to_string(),
        }
    }

    /// Checks the queue name by the namespace rules.
    pub(super) fn check_name(self) -> Result<()> {
        validate::namespace(self.at(), &CAPABILITIES, self.queue)
    }
}

/// A timestamp as stored (milliseconds; the far future clamps to
/// `i64::MAX`).
pub(super) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// A stored timestamp.
pub(super) fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

/// A duration in stored milliseconds.
pub(super) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(storage_core::clock::duration_millis(d)).unwrap_or(i64::MAX)
}

fn span(op: &'static str, queue: &str) -> tracing::Span {
    tracing::debug_span!("queue", backend = BACKEND, op = op, queue = queue)
}

#[async_trait]
impl QueueStore for SqliteStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn create_queue(&self, queue: &str, config: QueueConfig) -> Result<()> {
        self.q_create(queue, config)
            .instrument(span("create_queue", queue))
            .await
    }

    async fn queue_config(&self, queue: &str) -> Result<QueueConfig> {
        self.q_config(queue)
            .instrument(span("queue_config", queue))
            .await
    }

    async fn delete_queue(&self, queue: &str) -> Result<bool> {
        self.q_delete(queue)
            .instrument(span("delete_queue", queue))
            .await
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        self.q_list(prefix)
            .instrument(span("list_queues", prefix))
            .await
    }

    async fn send_batch(&self, queue: &str, messages: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        self.q_send(queue, messages)
            .instrument(span("send_batch", queue))
            .await
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let span = span("receive", queue);
        let cx = Cx::new("receive", queue);
        span.in_scope(|| {
            validate::batch_size(cx.at(), options.max_messages)?;
            if let Some(v) = options.visibility_timeout {
                validate::visibility_timeout(cx.at(), v)?;
            }
            validate::wait(cx.at(), options.wait)?;
            cx.check_name()
        })?;
        if options.wait.is_zero() {
            let (got, _) = self.receive_once(queue, options).instrument(span).await?;
            return Ok(got);
        }
        // Boxed on its own so a plain receive's future stays small.
        Box::pin(self.long_poll(queue, options))
            .instrument(span)
            .await
    }

    async fn ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        self.q_ack(queue, receipt)
            .instrument(span("ack", queue))
            .await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<()> {
        self.q_change_visibility(queue, receipt, timeout)
            .instrument(span("change_visibility", queue))
            .await
    }

    async fn purge(&self, queue: &str) -> Result<()> {
        self.q_purge(queue).instrument(span("purge", queue)).await
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts> {
        self.q_counts(queue).instrument(span("counts", queue)).await
    }

    async fn export_queue(&self, queue: &str) -> Result<storage_core::QueueState> {
        self.q_export(queue)
            .instrument(span("export_queue", queue))
            .await
    }

    async fn import_queue(&self, queue: &str, state: storage_core::QueueState) -> Result<()> {
        self.q_import(queue, state)
            .instrument(span("import_queue", queue))
            .await
    }
}
