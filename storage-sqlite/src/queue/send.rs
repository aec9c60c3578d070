//! send_batch: one immediate transaction per batch.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use storage_core::validate::{self, DEDUP_WINDOW};
use storage_core::{MessageId, Result, SendMessage};

use super::rows::{self, encode_attributes, grp_for, Msg};
use super::{dur_ms, ms, Cx};
use crate::backend::SqliteStore;

impl SqliteStore {
    pub(super) async fn q_send(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
    ) -> Result<Vec<MessageId>> {
        let cx = Cx::new("send_batch", queue);
        validate::batch_size(cx.at(), messages.len())?;
        cx.check_name()?;
        let name = queue.to_owned();
        let clock = self.inner.clock.clone();
        self.inner
            .db
            .write(cx.ctx(), move |conn| {
                let cx = Cx::new("send_batch", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                let now = ms(clock.now());
                let ids = send_in(&tx, cx, messages, now)?;
                tx.commit().map_err(cx.db())?;
                Ok(ids)
            })
            .await
            .inspect(|_| self.inner.waiters.wake(queue))
    }
}

fn send_in(
    conn: &Connection,
    cx: Cx<'_>,
    messages: Vec<SendMessage>,
    now: i64,
) -> Result<Vec<MessageId>> {
    let q = rows::require_queue(conn, cx)?;
    // The whole batch is validated before anything is written.
    let dedup: Vec<Option<String>> = messages
        .iter()
        .map(|m| m.validate(cx.at(), &q.config))
        .collect::<Result<_>>()?;
    rows::expire(conn, cx, &q, now)?;
    if q.config.fifo {
        conn.prepare_cached("DELETE FROM storage_dedup WHERE queue = ?1 AND expires_at <= ?2")
            .and_then(|mut st| st.execute(params![cx.queue, now]))
            .map_err(cx.db())?;
    }
    let mut next = q.next_sequence;
    let mut ids = Vec::with_capacity(messages.len());
    for (msg, dedup_id) in messages.into_iter().zip(dedup) {
        if let Some(d) = &dedup_id {
            let original: Option<String> = conn
                .prepare_cached(
                    "SELECT message_id FROM storage_dedup
                     WHERE queue = ?1 AND dedup_id = ?2 AND expires_at > ?3",
                )
                .and_then(|mut st| {
                    st.query_row(params![cx.queue, d, now], |r| r.get(0))
                        .optional()
                })
                .map_err(cx.db())?;
            if let Some(original) = original {
                ids.push(MessageId::new(original));
                continue;
            }
        }
        let id = MessageId::random();
        if let Some(d) = &dedup_id {
            conn.prepare_cached(
                "INSERT INTO storage_dedup (queue, dedup_id, message_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (queue, dedup_id) DO UPDATE
                 SET message_id = excluded.message_id, expires_at = excluded.expires_at",
            )
            .and_then(|mut st| {
                st.execute(params![
                    cx.queue,
                    d,
                    id.as_str(),
                    now.saturating_add(dur_ms(DEDUP_WINDOW))
                ])
            })
            .map_err(cx.db())?;
        }
        let delay = msg.delay.unwrap_or(q.config.delay);
        let grp = grp_for(&q.config, msg.group_id.as_deref());
        let seq = next;
        next = next.saturating_add(1);
        let row = Msg {
            seq,
            id: id.as_str().to_owned(),
            attributes: encode_attributes(cx, &msg.attributes)?,
            body: msg.body.to_vec(),
            group_id: msg.group_id,
            dedup_id,
            sent_at: now,
            visible_at: now.saturating_add(dur_ms(delay)),
            receive_count: 0,
            first_received_at: None,
            grp,
        };
        rows::insert_msg(conn, cx, cx.queue, &row)?;
        if let Some(g) = &row.grp {
            // A new message has the highest sequence and was never
            // received: it changes its group's row only by creating it.
            conn.prepare_cached(
                "INSERT INTO storage_fifo_groups (queue, grp, head_seq, ready_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (queue, grp) DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![cx.queue, g, seq, row.visible_at]))
            .map_err(cx.db())?;
        }
        ids.push(id);
    }
    rows::set_next_sequence(conn, cx, cx.queue, next)?;
    Ok(ids)
}
