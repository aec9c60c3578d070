//! Long polls: per-queue wake-ups for receivers in this process.
//!
//! A receive with `wait > 0` that finds nothing registers on its queue's
//! [`Notify`](tokio::sync::Notify) (in the shared
//! [`Waiters`](storage_core::wake::Waiters)) and subscribes to the clock's
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

use std::time::Duration;

use storage_core::wake::long_poll;
use storage_core::{ReceiveOptions, ReceivedMessage, Result};

use crate::backend::SqliteStore;

impl SqliteStore {
    /// A receive with `wait > 0` (options already validated), through
    /// the shared wait loop with the cross-process re-check interval.
    pub(super) async fn long_poll(
        &self,
        queue: &str,
        options: ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>> {
        let recheck = self
            .inner
            .config
            .cross_process_poll
            .max(Duration::from_millis(1));
        long_poll(
            &self.inner.waiters,
            self.inner.clock.as_ref(),
            queue,
            options.wait,
            Some(recheck),
            || self.receive_once(queue, options),
        )
        .await
    }
}
