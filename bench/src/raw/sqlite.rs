//! Raw `rusqlite` doing the SQLite adapter's work: one connection on its
//! own file in the same temp dir, the same settings (WAL, `synchronous =
//! FULL`), the same schema (created by opening a `SqliteStore` on the file
//! once) and the adapter's own statements, copied from
//! `storage-sqlite/src/{kv,atomic,queue}.rs`, each write in one `BEGIN
//! IMMEDIATE` transaction, statements `prepare_cached`. Called inline:
//! what a rusqlite user does. A second comparator runs the same
//! statements behind one `spawn_blocking` hop per adapter call (what the
//! adapter does so SQLite never blocks the async runtime).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use storage_core::MessageId;

use crate::kv::{self, Fixture, Work, NS, PAGE};
use crate::measure::{op, Op};

const SQL_NEXT_VERSION: &str =
    "UPDATE storage_meta SET value = value + 1 WHERE key = 'version_counter' RETURNING value";
const SQL_GET: &str = "SELECT value FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
const SQL_GET_VERSIONED: &str = "SELECT value, version FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
const SQL_LIVE_VERSION: &str = "SELECT version FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
const SQL_SCAN: &str = "SELECT key, value, version, expires_at FROM storage_kv \
     WHERE ns = ?1 AND key >= ?2 AND (expires_at IS NULL OR expires_at > ?3) \
     ORDER BY key LIMIT ?4";
const SQL_UPSERT: &str = "INSERT INTO storage_kv (ns, key, value, version, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (ns, key) DO UPDATE SET \
     value = excluded.value, version = excluded.version, expires_at = excluded.expires_at";
const SQL_PURGE: &str = "DELETE FROM storage_kv WHERE (ns, key) IN \
     (SELECT ns, key FROM storage_kv \
      WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
      ORDER BY expires_at LIMIT ?2)";
const PURGE_BUDGET: i64 = 64;

const SQL_LOAD_QUEUE: &str = "SELECT config, next_sequence FROM storage_queues WHERE name = ?1";
const SQL_EXPIRE: &str = "DELETE FROM storage_messages WHERE queue = ?1 AND sent_at <= ?2";
const SQL_INSERT_MSG: &str =
    "INSERT INTO storage_messages (queue, seq, id, body, attributes, group_id, dedup_id,
             sent_at, visible_at, receive_count, first_received_at, grp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
const SQL_SET_NEXT: &str = "UPDATE storage_queues SET next_sequence = ?2 WHERE name = ?1";
const SQL_STANDARD_PAGE: &str = "SELECT seq, id, body, attributes, group_id, dedup_id, \
     sent_at, visible_at, receive_count, first_received_at, grp
     FROM storage_messages INDEXED BY storage_messages_visible
     WHERE queue = ?1 AND visible_at <= ?2 AND (visible_at, seq) > (?3, ?4)
     ORDER BY visible_at, seq LIMIT ?5";
const SQL_PICK: &str = "UPDATE storage_messages
                 SET visible_at = ?3, receive_count = ?4, first_received_at = ?5
                 WHERE queue = ?1 AND seq = ?2";
const SQL_FIND_BY_ID: &str =
    "SELECT seq, receive_count, grp FROM storage_messages WHERE queue = ?1 AND id = ?2";
const SQL_DELETE_MSG: &str = "DELETE FROM storage_messages WHERE queue = ?1 AND seq = ?2";

/// The default queue config the raw side created its queue with.
const RETENTION_MS: i64 = 4 * 24 * 60 * 60 * 1000;
const VISIBILITY_MS: i64 = 30_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// (seq, id, body, receive_count, first_received_at) of a page row.
type PageRow = (i64, String, Vec<u8>, i64, Option<i64>);

/// A raw connection on a file whose schema the adapter created.
pub struct RawSqlite {
    conn: Mutex<Connection>,
    /// The queue name the raw queue statements use.
    queue: String,
}

impl RawSqlite {
    /// Opens `path` (created with the adapter's schema by the caller)
    /// with the adapter's settings.
    pub fn open(path: &Path, queue: &str) -> Result<RawSqlite> {
        let conn = Connection::open(path).context("opening the raw sqlite file")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        ensure!(mode == "wal", "journal mode is {mode}");
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
        Ok(RawSqlite {
            conn: Mutex::new(conn),
            queue: queue.to_owned(),
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let now = now_ms();
        let c = self.conn.lock();
        let mut st = c.prepare_cached(SQL_GET)?;
        Ok(st
            .query_row(params![NS, key, now], |r| r.get(0))
            .optional()?)
    }

    fn scan(&self, start: &[u8]) -> Result<usize> {
        let now = now_ms();
        let c = self.conn.lock();
        let mut st = c.prepare_cached(SQL_SCAN)?;
        let rows = st
            .query_map(params![NS, start, now, (PAGE + 1) as i64], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.len())
    }

    /// Puts every entry in one transaction (put = a batch of one).
    fn put_batch<'a>(&self, entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<()> {
        let now = now_ms();
        let mut c = self.conn.lock();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (k, v) in entries {
            let version: i64 = tx
                .prepare_cached(SQL_NEXT_VERSION)?
                .query_row([], |r| r.get(0))?;
            tx.prepare_cached(SQL_UPSERT)?
                .execute(params![NS, k, v, version, None::<i64>])?;
        }
        tx.prepare_cached(SQL_PURGE)?
            .execute(params![now, PURGE_BUDGET])?;
        tx.commit()?;
        Ok(())
    }

    /// get_versioned + put_if(Update).
    fn cas(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let now = now_ms();
        let mut c = self.conn.lock();
        let (_old, expected): (Vec<u8>, i64) = c
            .prepare_cached(SQL_GET_VERSIONED)?
            .query_row(params![NS, key, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let now = now_ms();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<i64> = tx
            .prepare_cached(SQL_LIVE_VERSION)?
            .query_row(params![NS, key, now], |r| r.get(0))
            .optional()?;
        ensure!(current == Some(expected), "CAS conflict");
        let version: i64 = tx
            .prepare_cached(SQL_NEXT_VERSION)?
            .query_row([], |r| r.get(0))?;
        tx.prepare_cached(SQL_UPSERT)?
            .execute(params![NS, key, value, version, None::<i64>])?;
        tx.prepare_cached(SQL_PURGE)?
            .execute(params![now, PURGE_BUDGET])?;
        tx.commit()?;
        Ok(())
    }

    /// The queue row and retention delete every queue write starts with.
    fn queue_prologue(&self, conn: &Connection, now: i64) -> Result<i64> {
        let (_config, next): (String, i64) = conn
            .prepare_cached(SQL_LOAD_QUEUE)?
            .query_row([&self.queue], |r| Ok((r.get(0)?, r.get(1)?)))?;
        conn.prepare_cached(SQL_EXPIRE)?
            .execute(params![self.queue, now - RETENTION_MS])?;
        Ok(next)
    }

    /// Sends `bodies` in one transaction.
    pub fn send_batch(&self, bodies: &[Bytes]) -> Result<()> {
        let mut c = self.conn.lock();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let mut next = self.queue_prologue(&tx, now)?;
        for body in bodies {
            let id = MessageId::random();
            tx.prepare_cached(SQL_INSERT_MSG)?.execute(params![
                self.queue,
                next,
                id.as_str(),
                &body[..],
                "{}",
                None::<String>,
                None::<String>,
                now,
                now,
                0i64,
                None::<i64>,
                None::<String>,
            ])?;
            next += 1;
        }
        tx.prepare_cached(SQL_SET_NEXT)?
            .execute(params![self.queue, next])?;
        tx.commit()?;
        Ok(())
    }

    /// Receives up to `max`: (id, receive count).
    pub fn receive(&self, max: usize) -> Result<Vec<(String, i64)>> {
        let mut c = self.conn.lock();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        self.queue_prologue(&tx, now)?;
        let page: Vec<PageRow> = tx
            .prepare_cached(SQL_STANDARD_PAGE)?
            .query_map(params![self.queue, now, i64::MIN, 0i64, max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(8)?, r.get(9)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(page.len());
        for (seq, id, _body, count, first) in page {
            let count = count + 1;
            tx.prepare_cached(SQL_PICK)?.execute(params![
                self.queue,
                seq,
                now + VISIBILITY_MS,
                count,
                first.unwrap_or(now)
            ])?;
            out.push((id, count));
        }
        tx.commit()?;
        Ok(out)
    }

    /// Acks one delivery, checking its receive count.
    pub fn ack(&self, id: &str, receive_count: i64) -> Result<()> {
        let mut c = self.conn.lock();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        self.queue_prologue(&tx, now)?;
        let (seq, count, _grp): (i64, i64, Option<String>) = tx
            .prepare_cached(SQL_FIND_BY_ID)?
            .query_row(params![self.queue, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        ensure!(count == receive_count, "stale receipt");
        tx.prepare_cached(SQL_DELETE_MSG)?
            .execute(params![self.queue, seq])?;
        tx.commit()?;
        Ok(())
    }

    /// Runs one KV workload operation synchronously.
    fn kv_work(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        match work {
            Work::Get => {
                let v = self.get(&fx.keys[fx.any(n)])?;
                kv::check_len(v.map(|v| v.len()), fx.value.len())
            }
            Work::Put => {
                let k = &fx.keys[fx.own(t, n, conc)];
                self.put_batch(std::iter::once((&k[..], &fx.value[..])))
            }
            Work::Scan => {
                let got = self.scan(&fx.keys[fx.any(n)])?;
                ensure!(got > 0, "scan returned nothing");
                Ok(())
            }
            Work::Cas => self.cas(&fx.keys[fx.own(t, n, conc)], &fx.value),
            Work::Tx => self.put_batch(
                fx.own_run(t, n, conc)
                    .map(|i| (&fx.keys[i][..], &fx.value[..])),
            ),
        }
    }
}

/// Raw rusqlite, called inline.
pub struct Inline(pub Arc<RawSqlite>);

#[async_trait]
impl kv::Comparator for Inline {
    fn name(&self) -> String {
        "rusqlite".into()
    }
    fn target(&self) -> Option<f64> {
        Some(0.9)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        for chunk in fx.keys.chunks(1000) {
            self.0
                .put_batch(chunk.iter().map(|k| (&k[..], &fx.value[..])))?;
        }
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        let raw = self.0.clone();
        Some(op(move |t, n| {
            std::future::ready(raw.kv_work(work, &fx, t, n, conc))
        }))
    }
}

impl super::BlockingKv for RawSqlite {
    fn kv_op(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        self.kv_work(work, fx, t, n, conc)
    }
}
