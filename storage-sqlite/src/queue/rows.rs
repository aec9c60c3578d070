//! Row-level helpers shared by the queue operations: the queue row,
//! message rows, lazy retention and FIFO group upkeep. Everything here
//! runs inside the caller's transaction.

use std::collections::BTreeMap;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use storage_core::{MessageId, MessageState, QueueConfig, Result};

use super::{dur_ms, ts, Cx};

/// A queue's row.
#[derive(Debug, Clone)]
pub(super) struct QueueRow {
    pub(super) config: QueueConfig,
    pub(super) next_sequence: i64,
}

/// The queue's row, if the queue exists.
pub(super) fn load_queue(conn: &Connection, cx: Cx<'_>, name: &str) -> Result<Option<QueueRow>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT config, next_sequence FROM storage_queues WHERE name = ?1")
        .and_then(|mut st| {
            st.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(cx.db())?;
    match row {
        None => Ok(None),
        Some((json, next_sequence)) => {
            let config: QueueConfig =
                serde_json::from_str(&json).map_err(|e| cx.corrupt("queue config", e))?;
            Ok(Some(QueueRow {
                config,
                next_sequence,
            }))
        }
    }
}

/// The operation's queue, or `NotFound`.
pub(super) fn require_queue(conn: &Connection, cx: Cx<'_>) -> Result<QueueRow> {
    load_queue(conn, cx, cx.queue)?.ok_or_else(|| cx.not_found())
}

/// Records the next sequence to assign.
pub(super) fn set_next_sequence(
    conn: &Connection,
    cx: Cx<'_>,
    name: &str,
    next: i64,
) -> Result<()> {
    conn.prepare_cached("UPDATE storage_queues SET next_sequence = ?2 WHERE name = ?1")
        .and_then(|mut st| st.execute(params![name, next]))
        .map_err(cx.db())?;
    Ok(())
}

/// The FIFO ordering group a message files under in a queue with
/// `config`: its group id (`""` without one) on FIFO queues, none on
/// standard queues.
pub(super) fn grp_for(config: &QueueConfig, group_id: Option<&str>) -> Option<String> {
    config.fifo.then(|| group_id.unwrap_or_default().to_owned())
}

/// Deletes the queue's messages past retention (`sent_at + retention <=
/// now`), re-filing the FIFO groups they leave.
pub(super) fn expire(conn: &Connection, cx: Cx<'_>, q: &QueueRow, now: i64) -> Result<()> {
    let cutoff = now.saturating_sub(dur_ms(q.config.retention));
    if cutoff < 0 {
        return Ok(());
    }
    if !q.config.fifo {
        conn.prepare_cached("DELETE FROM storage_messages WHERE queue = ?1 AND sent_at <= ?2")
            .and_then(|mut st| st.execute(params![cx.queue, cutoff]))
            .map_err(cx.db())?;
        return Ok(());
    }
    let groups: Vec<String> = conn
        .prepare_cached(
            "DELETE FROM storage_messages WHERE queue = ?1 AND sent_at <= ?2 RETURNING grp",
        )
        .and_then(|mut st| {
            st.query_map(params![cx.queue, cutoff], |r| r.get::<_, Option<String>>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(cx.db())?
        .into_iter()
        .flatten()
        .collect();
    let mut groups = groups;
    groups.sort_unstable();
    groups.dedup();
    for g in &groups {
        refresh_group(conn, cx, cx.queue, g)?;
    }
    Ok(())
}

/// A FIFO group's head: its earliest message (`?1` queue, `?2` group).
pub(super) const GROUP_HEAD: &str = "SELECT seq, visible_at
     FROM storage_messages INDEXED BY storage_messages_group
     WHERE queue = ?1 AND grp = ?2 ORDER BY seq LIMIT 1";

/// The latest visible-at of a FIFO group's received messages.
pub(super) const GROUP_HIDDEN_UNTIL: &str = "SELECT MAX(visible_at)
     FROM storage_messages INDEXED BY storage_messages_received
     WHERE queue = ?1 AND grp = ?2 AND receive_count > 0";

/// Re-derives one FIFO group's row from its messages: head sequence and
/// `ready_at` = max(head's visible_at, latest visible_at of a received
/// message); drops the row when the group is empty. O(log n): both
/// lookups are one index probe (`storage_messages_group`,
/// `storage_messages_received`).
pub(super) fn refresh_group(conn: &Connection, cx: Cx<'_>, queue: &str, grp: &str) -> Result<()> {
    let head: Option<(i64, i64)> = conn
        .prepare_cached(GROUP_HEAD)
        .and_then(|mut st| {
            st.query_row(params![queue, grp], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(cx.db())?;
    let Some((head_seq, head_visible)) = head else {
        conn.prepare_cached("DELETE FROM storage_fifo_groups WHERE queue = ?1 AND grp = ?2")
            .and_then(|mut st| st.execute(params![queue, grp]))
            .map_err(cx.db())?;
        return Ok(());
    };
    let hidden_until: Option<i64> = conn
        .prepare_cached(GROUP_HIDDEN_UNTIL)
        .and_then(|mut st| st.query_row(params![queue, grp], |r| r.get(0)))
        .map_err(cx.db())?;
    let ready_at = head_visible.max(hidden_until.unwrap_or(0));
    conn.prepare_cached(
        "INSERT INTO storage_fifo_groups (queue, grp, head_seq, ready_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (queue, grp) DO UPDATE SET head_seq = excluded.head_seq, ready_at = excluded.ready_at",
    )
    .and_then(|mut st| st.execute(params![queue, grp, head_seq, ready_at]))
    .map_err(cx.db())?;
    Ok(())
}

/// Rebuilds every group row of a FIFO queue from its messages (import).
pub(super) fn rebuild_groups(conn: &Connection, cx: Cx<'_>, queue: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM storage_fifo_groups WHERE queue = ?1")
        .and_then(|mut st| st.execute([queue]))
        .map_err(cx.db())?;
    let groups: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT grp FROM storage_messages WHERE queue = ?1 AND grp IS NOT NULL",
        )
        .and_then(|mut st| {
            st.query_map([queue], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(cx.db())?;
    for g in &groups {
        refresh_group(conn, cx, queue, g)?;
    }
    Ok(())
}

/// The columns [`Msg::read`] expects, in order.
pub(super) const MSG_COLS: &str = "seq, id, body, attributes, group_id, dedup_id, sent_at, \
     visible_at, receive_count, first_received_at, grp";

/// A stored message.
#[derive(Debug, Clone)]
pub(super) struct Msg {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) body: Vec<u8>,
    pub(super) attributes: String,
    pub(super) group_id: Option<String>,
    pub(super) dedup_id: Option<String>,
    pub(super) sent_at: i64,
    pub(super) visible_at: i64,
    pub(super) receive_count: i64,
    pub(super) first_received_at: Option<i64>,
    pub(super) grp: Option<String>,
}

impl Msg {
    /// Reads a row selected with [`MSG_COLS`].
    pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Msg> {
        Ok(Msg {
            seq: r.get(0)?,
            id: r.get(1)?,
            body: r.get(2)?,
            attributes: r.get(3)?,
            group_id: r.get(4)?,
            dedup_id: r.get(5)?,
            sent_at: r.get(6)?,
            visible_at: r.get(7)?,
            receive_count: r.get(8)?,
            first_received_at: r.get(9)?,
            grp: r.get(10)?,
        })
    }

    pub(super) fn receive_count(&self) -> u32 {
        u32::try_from(self.receive_count.max(0)).unwrap_or(u32::MAX)
    }

    pub(super) fn decode_attributes(&self, cx: Cx<'_>) -> Result<BTreeMap<String, String>> {
        decode_attributes(cx, &self.attributes)
    }

    /// The snapshot form.
    pub(super) fn into_state(self, cx: Cx<'_>) -> Result<MessageState> {
        let attributes = self.decode_attributes(cx)?;
        Ok(MessageState {
            id: MessageId::new(self.id),
            sequence: u64::try_from(self.seq).unwrap_or(0),
            body: Bytes::from(self.body),
            attributes,
            group_id: self.group_id,
            dedup_id: self.dedup_id,
            sent_at: ts(self.sent_at),
            visible_at: ts(self.visible_at),
            receive_count: u32::try_from(self.receive_count.max(0)).unwrap_or(u32::MAX),
            first_received_at: self.first_received_at.map(ts),
        })
    }
}

/// Attributes as stored: a JSON object of strings.
pub(super) fn encode_attributes(cx: Cx<'_>, attrs: &BTreeMap<String, String>) -> Result<String> {
    if attrs.is_empty() {
        return Ok("{}".to_owned());
    }
    serde_json::to_string(attrs).map_err(|e| cx.corrupt("attributes", e))
}

fn decode_attributes(cx: Cx<'_>, json: &str) -> Result<BTreeMap<String, String>> {
    if json == "{}" {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(json).map_err(|e| cx.corrupt("attributes", e))
}

/// Inserts one message row.
pub(super) fn insert_msg(conn: &Connection, cx: Cx<'_>, queue: &str, m: &Msg) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO storage_messages (queue, seq, id, body, attributes, group_id, dedup_id,
             sent_at, visible_at, receive_count, first_received_at, grp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut st| {
        st.execute(params![
            queue,
            m.seq,
            m.id,
            m.body,
            m.attributes,
            m.group_id,
            m.dedup_id,
            m.sent_at,
            m.visible_at,
            m.receive_count,
            m.first_received_at,
            m.grp,
        ])
    })
    .map_err(cx.db())?;
    Ok(())
}
