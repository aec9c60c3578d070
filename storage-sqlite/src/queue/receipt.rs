//! ack and change_visibility: a receipt is honoured only if its message is
//! still in the queue with exactly the receipt's receive count.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use storage_core::{validate, Receipt, Result};

use super::rows;
use super::{dur_ms, ms, Cx};
use crate::backend::SqliteStore;

/// What a receipt operation does to the message it names.
#[derive(Debug, Clone, Copy)]
enum Action {
    Delete,
    /// Visible again after this long (from now).
    Hide(i64),
}

impl SqliteStore {
    pub(super) async fn q_ack(&self, queue: &str, receipt: &Receipt) -> Result<()> {
        let cx = Cx::new("ack", queue);
        cx.check_name()?;
        let fifo = self.on_receipt(cx, receipt, Action::Delete).await?;
        // Acking a FIFO message may unblock its group.
        if fifo {
            self.inner.waiters.wake(queue);
        }
        Ok(())
    }

    pub(super) async fn q_change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<()> {
        let cx = Cx::new("change_visibility", queue);
        validate::visibility_timeout(cx.at(), timeout)?;
        cx.check_name()?;
        self.on_receipt(cx, receipt, Action::Hide(dur_ms(timeout)))
            .await?;
        self.inner.waiters.wake(queue);
        Ok(())
    }

    /// Applies `action` to the receipt's message in one immediate
    /// transaction; returns whether the queue is FIFO.
    async fn on_receipt(&self, cx: Cx<'_>, receipt: &Receipt, action: Action) -> Result<bool> {
        let op = cx.op;
        let name = cx.queue.to_owned();
        let receipt = receipt.clone();
        let clock = self.inner.clock.clone();
        self.inner
            .db
            .write(cx.ctx(), move |conn| {
                let cx = Cx::new(op, &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                let now = ms(clock.now());
                let fifo = receipt_in(&tx, cx, &receipt, action, now)?;
                tx.commit().map_err(cx.db())?;
                Ok(fifo)
            })
            .await
    }
}

fn receipt_in(
    conn: &Connection,
    cx: Cx<'_>,
    receipt: &Receipt,
    action: Action,
    now: i64,
) -> Result<bool> {
    let q = rows::require_queue(conn, cx)?;
    rows::expire(conn, cx, &q, now)?;
    let found: Option<(i64, i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT seq, receive_count, grp FROM storage_messages WHERE queue = ?1 AND id = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![cx.queue, receipt.message_id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(cx.db())?;
    let Some((seq, count, grp)) = found else {
        return Err(cx.stale(receipt));
    };
    if count <= 0 || count != i64::from(receipt.receive_count) {
        return Err(cx.stale(receipt));
    }
    match action {
        Action::Delete => conn
            .prepare_cached("DELETE FROM storage_messages WHERE queue = ?1 AND seq = ?2")
            .and_then(|mut st| st.execute(params![cx.queue, seq])),
        Action::Hide(timeout) => conn
            .prepare_cached(
                "UPDATE storage_messages SET visible_at = ?3 WHERE queue = ?1 AND seq = ?2",
            )
            .and_then(|mut st| st.execute(params![cx.queue, seq, now.saturating_add(timeout)])),
    }
    .map_err(cx.db())?;
    if let Some(g) = grp {
        rows::refresh_group(conn, cx, cx.queue, &g)?;
    }
    Ok(q.config.fifo)
}
