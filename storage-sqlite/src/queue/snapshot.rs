//! export_queue / import_queue: the exact state — config, messages with
//! sequence, visibility, receive count and first receive, dedup memory and
//! next sequence — so snapshots round-trip between backends.

use rusqlite::{params, TransactionBehavior};
use storage_core::{DedupEntry, Error, MessageId, QueueState, Result, Timestamp};

use super::rows::{self, encode_attributes, grp_for, Msg};
use super::{dur_ms, ms, ts, Cx};
use crate::backend::SqliteStore;
use crate::config::CAPABILITIES;

impl SqliteStore {
    pub(super) async fn q_export(&self, queue: &str) -> Result<QueueState> {
        let cx = Cx::new("export_queue", queue);
        cx.check_name()?;
        let name = queue.to_owned();
        let clock = self.inner.clock.clone();
        self.inner
            .db
            .read(cx.ctx(), move |conn| {
                let cx = Cx::new("export_queue", &name);
                let tx = conn.unchecked_transaction().map_err(cx.db())?;
                let now = ms(clock.now());
                let q = rows::require_queue(&tx, cx)?;
                let cutoff = now.saturating_sub(dur_ms(q.config.retention));
                let msgs: Vec<Msg> = tx
                    .prepare(&format!(
                        "SELECT {} FROM storage_messages WHERE queue = ?1 AND sent_at > ?2
                         ORDER BY seq",
                        rows::MSG_COLS
                    ))
                    .and_then(|mut st| {
                        st.query_map(params![name, cutoff], Msg::read)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(cx.db())?;
                let messages = msgs
                    .into_iter()
                    .map(|m| m.into_state(cx))
                    .collect::<Result<Vec<_>>>()?;
                let dedup: Vec<DedupEntry> = tx
                    .prepare(
                        "SELECT dedup_id, message_id, expires_at FROM storage_dedup
                         WHERE queue = ?1 AND expires_at > ?2 ORDER BY expires_at, dedup_id",
                    )
                    .and_then(|mut st| {
                        st.query_map(params![name, now], |r| {
                            Ok(DedupEntry {
                                dedup_id: r.get(0)?,
                                message_id: MessageId::new(r.get::<_, String>(1)?),
                                expires_at: ts(r.get(2)?),
                            })
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(cx.db())?;
                tx.finish().map_err(cx.db())?;
                Ok(QueueState {
                    config: q.config,
                    messages,
                    dedup,
                    next_sequence: u64::try_from(q.next_sequence).unwrap_or(0),
                })
            })
            .await
    }

    pub(super) async fn q_import(&self, queue: &str, state: QueueState) -> Result<()> {
        let cx = Cx::new("import_queue", queue);
        let ctx = cx.ctx();
        cx.check_name()?;
        state.config.validate(&ctx, &CAPABILITIES)?;
        check_state(&state).map_err(|reason| Error::invalid(ctx.clone(), reason))?;
        let json =
            serde_json::to_string(&state.config).map_err(|e| cx.corrupt("queue config", e))?;
        // Rows are built before the transaction (attributes encoded).
        let fifo = state.config.fifo;
        let mut msgs = Vec::with_capacity(state.messages.len());
        for m in state.messages {
            msgs.push(Msg {
                seq: seq_i64(m.sequence),
                id: m.id.as_str().to_owned(),
                attributes: encode_attributes(cx, &m.attributes)?,
                body: m.body.to_vec(),
                grp: grp_for(&state.config, m.group_id.as_deref()),
                group_id: m.group_id,
                dedup_id: m.dedup_id,
                sent_at: ms(m.sent_at),
                visible_at: ms(m.visible_at),
                receive_count: i64::from(m.receive_count),
                first_received_at: m.first_received_at.map(ms),
            });
        }
        let dedup = state.dedup;
        let next = seq_i64(state.next_sequence);
        let name = queue.to_owned();
        self.inner
            .db
            .write(ctx, move |conn| {
                let cx = Cx::new("import_queue", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                tx.execute(
                    "INSERT INTO storage_queues (name, config, next_sequence) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE
                     SET config = excluded.config, next_sequence = excluded.next_sequence",
                    params![name, json, next],
                )
                .map_err(cx.db())?;
                for sql in [
                    "DELETE FROM storage_messages WHERE queue = ?1",
                    "DELETE FROM storage_fifo_groups WHERE queue = ?1",
                    "DELETE FROM storage_dedup WHERE queue = ?1",
                ] {
                    tx.execute(sql, [&name]).map_err(cx.db())?;
                }
                for m in &msgs {
                    rows::insert_msg(&tx, cx, &name, m)?;
                }
                for d in &dedup {
                    tx.prepare_cached(
                        "INSERT INTO storage_dedup (queue, dedup_id, message_id, expires_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            name,
                            d.dedup_id,
                            d.message_id.as_str(),
                            ms(d.expires_at)
                        ])
                    })
                    .map_err(cx.db())?;
                }
                if fifo {
                    rows::rebuild_groups(&tx, cx, &name)?;
                }
                tx.commit().map_err(cx.db())
            })
            .await?;
        self.inner.waiters.wake(queue);
        Ok(())
    }
}

/// A sequence number as stored (`check_state` has refused sequences
/// beyond `i64::MAX` already).
fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

const MAX_STORED: u64 = i64::MAX as u64;

/// The consistency every backend demands of an imported state, plus
/// SQLite's integer range.
fn check_state(state: &QueueState) -> std::result::Result<(), String> {
    state.check_consistency()?;
    if state.next_sequence > MAX_STORED {
        return Err(format!(
            "next_sequence {} exceeds {MAX_STORED}",
            state.next_sequence
        ));
    }
    let in_range = |t: Timestamp| t.as_millis() <= MAX_STORED;
    for m in &state.messages {
        let times = [Some(m.sent_at), Some(m.visible_at), m.first_received_at];
        if !times.into_iter().flatten().all(in_range) {
            return Err(format!(
                "message {} has a timestamp beyond {MAX_STORED} ms",
                m.id
            ));
        }
    }
    for d in &state.dedup {
        if !in_range(d.expires_at) {
            return Err(format!(
                "dedup id {:?} expires beyond {MAX_STORED} ms",
                d.dedup_id
            ));
        }
    }
    Ok(())
}
