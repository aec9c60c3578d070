//! receive: one immediate transaction per attempt.
//!
//! # Standard queues
//!
//! [`STANDARD_PAGE`] walks `storage_messages_visible` — `(queue,
//! visible_at, seq)` — from the oldest visible-at up to `now` with a
//! `LIMIT`: O(log n) to seek plus O(log n) per row, hidden messages are
//! never visited. Messages moved to a dead-letter queue do not count
//! against the batch, so the walk pages on (a row-value cursor on
//! `(visible_at, seq)`) until the batch is full or nothing visible is left.
//!
//! # FIFO queues
//!
//! [`FIFO_PAGE`] walks `storage_fifo_groups` in head-sequence order
//! (index `(queue, head_seq, ready_at)`), keeping the groups whose
//! `ready_at <= now` (head visible and nothing in flight). Within the
//! call the picked groups' heads and their following visible messages
//! are merged by sequence (a small heap), which is exactly "messages in
//! send order, skipping blocked groups": a group's next message comes
//! from `storage_messages_group` — one probe. Blocked groups cost one
//! index step each and their queued messages are never visited; the
//! touched groups are re-derived at the end (see `rows::refresh_group`).

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet, VecDeque};
use storage_core::{MessageId, Receipt, ReceiveOptions, ReceivedMessage, Result, Timestamp};

use super::rows::{self, grp_for, Msg, QueueRow};
use super::{dur_ms, ms, ts, Cx};
use crate::backend::SqliteStore;

/// One page of a standard receive: visible messages in (visible_at, seq)
/// order after a cursor (`?3`, `?4`; start with `(i64::MIN, 0)`).
pub(super) const STANDARD_PAGE: &str = "SELECT seq, id, body, attributes, group_id, dedup_id, \
     sent_at, visible_at, receive_count, first_received_at, grp
     FROM storage_messages INDEXED BY storage_messages_visible
     WHERE queue = ?1 AND visible_at <= ?2 AND (visible_at, seq) > (?3, ?4)
     ORDER BY visible_at, seq LIMIT ?5";

/// One page of deliverable FIFO groups, in head order after `?3`.
pub(super) const FIFO_PAGE: &str = "SELECT head_seq, grp
     FROM storage_fifo_groups INDEXED BY storage_fifo_groups_head
     WHERE queue = ?1 AND head_seq > ?3 AND ready_at <= ?2
     ORDER BY head_seq LIMIT ?4";

/// A FIFO group's message after `?3`.
pub(super) const GROUP_NEXT: &str = "SELECT seq, visible_at
     FROM storage_messages INDEXED BY storage_messages_group
     WHERE queue = ?1 AND grp = ?2 AND seq > ?3 ORDER BY seq LIMIT 1";

/// What one attempt did.
#[derive(Debug, Default)]
pub(super) struct Attempt {
    pub(super) delivered: Vec<ReceivedMessage>,
    /// The dead-letter queue that received messages (to wake its polls).
    pub(super) dlq_fed: Option<String>,
    /// When nothing was delivered: the earliest future visible-at of the
    /// queue's messages (a lower bound of the next possible delivery).
    pub(super) next_visible: Option<Timestamp>,
}

impl SqliteStore {
    /// One non-waiting receive (options already validated).
    pub(super) async fn receive_once(
        &self,
        queue: &str,
        options: ReceiveOptions,
    ) -> Result<(Vec<ReceivedMessage>, Option<Timestamp>)> {
        let cx = Cx::new("receive", queue);
        let name = queue.to_owned();
        let clock = self.inner.clock.clone();
        let attempt = self
            .inner
            .db
            .write(cx.ctx(), move |conn| {
                let cx = Cx::new("receive", &name);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(cx.db())?;
                let now = ms(clock.now());
                let attempt = receive_in(&tx, cx, &options, now)?;
                tx.commit().map_err(cx.db())?;
                Ok(attempt)
            })
            .await?;
        if let Some(dlq) = &attempt.dlq_fed {
            self.inner.waiters.wake(dlq);
        }
        Ok((attempt.delivered, attempt.next_visible))
    }
}

/// The dead-letter target of one receive, resolved at most once.
#[derive(Debug)]
struct Dlq {
    name: String,
    row: QueueRow,
    next: i64,
    touched: BTreeSet<String>,
    /// Received at least one message.
    fed: bool,
}

struct Picker<'c> {
    conn: &'c Connection,
    cx: Cx<'c>,
    q: QueueRow,
    now: i64,
    visibility: i64,
    /// `None` until looked up; `Some(None)` when there is no usable DLQ.
    dlq: Option<Option<Dlq>>,
    delivered: Vec<ReceivedMessage>,
}

fn receive_in(
    conn: &Connection,
    cx: Cx<'_>,
    options: &ReceiveOptions,
    now: i64,
) -> Result<Attempt> {
    let q = rows::require_queue(conn, cx)?;
    rows::expire(conn, cx, &q, now)?;
    let visibility = dur_ms(
        options
            .visibility_timeout
            .unwrap_or(q.config.visibility_timeout),
    );
    let fifo = q.config.fifo;
    let mut p = Picker {
        conn,
        cx,
        q,
        now,
        visibility,
        dlq: None,
        delivered: Vec::with_capacity(options.max_messages.min(16)),
    };
    if fifo {
        p.fifo(options.max_messages)?;
    } else {
        p.standard(options.max_messages)?;
    }
    let dlq_fed = p.finish_dlq()?;
    let next_visible = if p.delivered.is_empty() {
        next_visible(conn, cx, now)?
    } else {
        None
    };
    Ok(Attempt {
        delivered: p.delivered,
        dlq_fed,
        next_visible,
    })
}

/// The earliest visible-at after `now` of the queue's messages.
fn next_visible(conn: &Connection, cx: Cx<'_>, now: i64) -> Result<Option<Timestamp>> {
    let t: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(visible_at) FROM storage_messages WHERE queue = ?1 AND visible_at > ?2",
        )
        .and_then(|mut st| st.query_row(params![cx.queue, now], |r| r.get(0)))
        .map_err(cx.db())?;
    Ok(t.map(ts))
}

impl Picker<'_> {
    fn standard(&mut self, max: usize) -> Result<()> {
        let mut cursor = (i64::MIN, 0i64);
        // Messages delivered with a zero visibility are visible again in
        // this very call; they must not be picked twice.
        let mut picked: HashSet<i64> = HashSet::new();
        while self.delivered.len() < max {
            let limit = max - self.delivered.len();
            let page: Vec<Msg> = self
                .conn
                .prepare_cached(STANDARD_PAGE)
                .and_then(|mut st| {
                    st.query_map(
                        params![
                            self.cx.queue,
                            self.now,
                            cursor.0,
                            cursor.1,
                            i64::try_from(limit).unwrap_or(i64::MAX)
                        ],
                        Msg::read,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(self.cx.db())?;
            let full = page.len() >= limit;
            for m in page {
                cursor = (m.visible_at, m.seq);
                if self.visibility == 0 && !picked.insert(m.seq) {
                    continue;
                }
                self.pick(m)?;
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    fn fifo(&mut self, max: usize) -> Result<()> {
        // Groups continuing in this call: (next sequence, group).
        let mut heap: BinaryHeap<Reverse<(i64, String)>> = BinaryHeap::new();
        let mut page: VecDeque<(i64, String)> = VecDeque::new();
        let mut after = i64::MIN;
        let mut groups_left = true;
        let mut touched: BTreeSet<String> = BTreeSet::new();
        while self.delivered.len() < max {
            if page.is_empty() && groups_left {
                let limit = max - self.delivered.len();
                let fetched: Vec<(i64, String)> = self
                    .conn
                    .prepare_cached(FIFO_PAGE)
                    .and_then(|mut st| {
                        st.query_map(
                            params![
                                self.cx.queue,
                                self.now,
                                after,
                                i64::try_from(limit).unwrap_or(i64::MAX)
                            ],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(self.cx.db())?;
                groups_left = fetched.len() >= limit;
                if let Some((h, _)) = fetched.last() {
                    after = *h;
                }
                page.extend(fetched);
            }
            let from_page = match (page.front(), heap.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((h, _)), Some(Reverse((s, _)))) => h < s,
            };
            let (seq, grp) = if from_page {
                match page.pop_front() {
                    Some(x) => x,
                    None => break,
                }
            } else {
                match heap.pop() {
                    Some(Reverse(x)) => x,
                    None => break,
                }
            };
            let msg: Option<Msg> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {} FROM storage_messages WHERE queue = ?1 AND seq = ?2",
                    rows::MSG_COLS
                ))
                .and_then(|mut st| {
                    st.query_row(params![self.cx.queue, seq], Msg::read)
                        .optional()
                })
                .map_err(self.cx.db())?;
            if let Some(m) = msg {
                self.pick(m)?;
            }
            // The group's next message may follow in this call if it is
            // visible; it competes with the other groups' heads.
            let next: Option<(i64, i64)> = self
                .conn
                .prepare_cached(GROUP_NEXT)
                .and_then(|mut st| {
                    st.query_row(params![self.cx.queue, grp, seq], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(self.cx.db())?;
            if let Some((n, visible_at)) = next {
                if visible_at <= self.now {
                    heap.push(Reverse((n, grp.clone())));
                }
            }
            touched.insert(grp);
        }
        for g in &touched {
            rows::refresh_group(self.conn, self.cx, self.cx.queue, g)?;
        }
        Ok(())
    }

    /// Delivers `m`, or moves it to the dead-letter queue when it has
    /// been received `max_receives` times and the DLQ exists.
    fn pick(&mut self, m: Msg) -> Result<()> {
        if self.must_move(m.receive_count())? {
            return self.move_to_dlq(m);
        }
        let count = m.receive_count().saturating_add(1);
        let visible_at = self.now.saturating_add(self.visibility);
        let first = m.first_received_at.unwrap_or(self.now);
        self.conn
            .prepare_cached(
                "UPDATE storage_messages
                 SET visible_at = ?3, receive_count = ?4, first_received_at = ?5
                 WHERE queue = ?1 AND seq = ?2",
            )
            .and_then(|mut st| {
                st.execute(params![
                    self.cx.queue,
                    m.seq,
                    visible_at,
                    i64::from(count),
                    first
                ])
            })
            .map_err(self.cx.db())?;
        let attributes = m.decode_attributes(self.cx)?;
        let id = MessageId::new(m.id);
        self.delivered.push(ReceivedMessage {
            receipt: Receipt {
                message_id: id.clone(),
                receive_count: count,
            },
            id,
            body: Bytes::from(m.body),
            attributes,
            receive_count: count,
            sent_at: ts(m.sent_at),
            first_received_at: ts(first),
            group_id: m.group_id,
            dedup_id: m.dedup_id,
        });
        Ok(())
    }

    fn must_move(&mut self, count: u32) -> Result<bool> {
        let Some(r) = &self.q.config.redrive else {
            return Ok(false);
        };
        if count < r.max_receives {
            return Ok(false);
        }
        if self.dlq.is_none() {
            // A queue redriving to itself has no dead-letter queue.
            let found = if r.dead_letter_queue == self.cx.queue {
                None
            } else {
                rows::load_queue(self.conn, self.cx, &r.dead_letter_queue)?.map(|row| Dlq {
                    name: r.dead_letter_queue.clone(),
                    next: row.next_sequence,
                    row,
                    touched: BTreeSet::new(),
                    fed: false,
                })
            };
            self.dlq = Some(found);
        }
        Ok(matches!(self.dlq, Some(Some(_))))
    }

    /// Files `m` in the dead-letter queue: new sequence, never received,
    /// visible now; id, body, attributes, group, dedup id and send time
    /// kept.
    fn move_to_dlq(&mut self, m: Msg) -> Result<()> {
        let (conn, cx, now) = (self.conn, self.cx, self.now);
        let Some(Some(dlq)) = &mut self.dlq else {
            return Ok(());
        };
        conn.prepare_cached("DELETE FROM storage_messages WHERE queue = ?1 AND seq = ?2")
            .and_then(|mut st| st.execute(params![cx.queue, m.seq]))
            .map_err(cx.db())?;
        // A message with this id already in the DLQ (only possible
        // through import) is replaced.
        let replaced: Option<Option<String>> = conn
            .prepare_cached(
                "DELETE FROM storage_messages WHERE queue = ?1 AND id = ?2 RETURNING grp",
            )
            .and_then(|mut st| {
                st.query_row(params![dlq.name, m.id], |r| r.get(0))
                    .optional()
            })
            .map_err(cx.db())?;
        if let Some(Some(g)) = replaced {
            dlq.touched.insert(g);
        }
        let grp = grp_for(&dlq.row.config, m.group_id.as_deref());
        let seq = dlq.next;
        dlq.next = dlq.next.saturating_add(1);
        let moved = Msg {
            seq,
            visible_at: now,
            receive_count: 0,
            first_received_at: None,
            grp,
            ..m
        };
        rows::insert_msg(conn, cx, &dlq.name, &moved)?;
        if let Some(g) = moved.grp {
            dlq.touched.insert(g);
        }
        dlq.fed = true;
        Ok(())
    }

    /// Records the DLQ's sequence and groups; returns its name if it was
    /// fed.
    fn finish_dlq(&mut self) -> Result<Option<String>> {
        let Some(Some(dlq)) = self.dlq.take() else {
            return Ok(None);
        };
        if !dlq.fed {
            return Ok(None);
        }
        rows::set_next_sequence(self.conn, self.cx, &dlq.name, dlq.next)?;
        for g in &dlq.touched {
            rows::refresh_group(self.conn, self.cx, &dlq.name, g)?;
        }
        Ok(Some(dlq.name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use rusqlite::Connection;

    use super::super::rows::{GROUP_HEAD, GROUP_HIDDEN_UNTIL};
    use super::{FIFO_PAGE, GROUP_NEXT, STANDARD_PAGE};

    fn plan(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<String> {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        st.query_map(params, |r| r.get::<_, String>(3))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        crate::schema::migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        // Make the planner see a big table (ANALYZE statistics).
        conn.execute_batch(
            "INSERT INTO storage_queues VALUES ('q', '{}', 1);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO storage_messages
             SELECT 'q', i, 'id' || i, x'00', '{}', NULL, NULL, NULL, i, i, 0, NULL FROM n;
             ANALYZE;",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        conn
    }

    /// The standard receive seeks the visible index (a SEARCH bounded by
    /// queue and visible_at), never scans the table, and needs no sort.
    #[test]
    fn standard_receive_searches_the_visible_index() {
        let conn = db();
        // Without the INDEXED BY hint the planner picks the same index.
        let unhinted = STANDARD_PAGE.replace("INDEXED BY storage_messages_visible", "");
        for sql in [STANDARD_PAGE, unhinted.as_str()] {
            let p = plan(&conn, sql, &[&"q", &1000i64, &i64::MIN, &0i64, &10i64]);
            let text = p.join(" | ");
            assert!(
                p.iter()
                    .any(|d| d.starts_with("SEARCH storage_messages USING")
                        && d.contains("storage_messages_visible")
                        && d.contains("queue=?")
                        && d.contains("visible_at")),
                "{text}"
            );
            assert!(!text.contains("SCAN"), "{text}");
            assert!(!text.contains("TEMP B-TREE"), "{text}");
        }
    }

    /// The FIFO receive walks the group index in head order, and its
    /// per-group lookups are single index probes.
    #[test]
    fn fifo_receive_searches_the_group_indexes() {
        let conn = db();
        let p = plan(&conn, FIFO_PAGE, &[&"q", &1000i64, &0i64, &10i64]);
        let text = p.join(" | ");
        assert!(text.contains("SEARCH storage_fifo_groups USING"), "{text}");
        assert!(text.contains("storage_fifo_groups_head"), "{text}");
        assert!(!text.contains("TEMP B-TREE"), "{text}");
        for (sql, index) in [
            (
                GROUP_NEXT,
                "storage_messages_group (queue=? AND grp=? AND seq>?)",
            ),
            (GROUP_HEAD, "storage_messages_group (queue=? AND grp=?)"),
            (
                GROUP_HIDDEN_UNTIL,
                "storage_messages_received (queue=? AND grp=?)",
            ),
        ] {
            let all: [&dyn rusqlite::ToSql; 3] = [&"q", &"g", &1i64];
            let n = sql.matches('?').count();
            let p = plan(&conn, sql, &all[..n]);
            let text = p.join(" | ");
            assert!(text.contains(index), "{sql}: {text}");
            assert!(
                !text.contains("SCAN") && !text.contains("TEMP B-TREE"),
                "{sql}: {text}"
            );
        }
    }
}
