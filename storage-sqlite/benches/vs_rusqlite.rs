//! The SQLite adapter beside raw `rusqlite` doing the same statements, in
//! the same run, and how two adapter latencies scale from 1k to 1M rows.
//!
//! ```sh
//! cargo bench -p storage-sqlite --bench vs_rusqlite
//! BENCH_SECONDS=5 cargo bench -p storage-sqlite --bench vs_rusqlite   # longer
//! BENCH_QUICK=1 cargo bench -p storage-sqlite --bench vs_rusqlite     # smoke run
//! ```
//!
//! Knobs: `BENCH_SECONDS` (time per side per workload, default 2; split
//! over three alternating rounds so drift hits both sides alike),
//! `BENCH_QUICK=1` (0.3 s per side and 100k instead of 1M rows for the
//! scale part), `BENCH_SCALE_ROWS` (the large row count), `BENCH_ONLY`
//! (`compare` or `scale`: run one part).
//!
//! # What is compared
//!
//! **Adapter**: a [`SqliteStore`] on a file in a temp dir (defaults: WAL,
//! `synchronous = FULL`, 4 reader connections), called the way an
//! emulator holds it — `Arc<dyn KvStore>` / `Arc<dyn AtomicKv>` /
//! `Arc<dyn QueueStore>` — from a current-thread tokio runtime, one
//! operation at a time.
//!
//! **Raw**: one `rusqlite::Connection` on its own file in the same temp
//! dir, with the same settings (WAL, `synchronous = FULL`, busy timeout,
//! `foreign_keys = OFF`), the same tables and indexes (the file is created
//! by opening a `SqliteStore` on it once, so the schema is the adapter's
//! own migration), and the statements the adapter runs, copied from
//! `src/kv.rs`, `src/atomic.rs` and `src/queue/*.rs`, each write in one
//! `BEGIN IMMEDIATE` transaction, statements `prepare_cached`:
//!
//! - put: reserve a version (`UPDATE storage_meta ... RETURNING`), upsert
//!   the row, purge up to 64 expired rows (the adapter's TTL upkeep; an
//!   index probe that finds nothing here), commit;
//! - get: the same `SELECT ... AND (expires_at IS NULL OR expires_at > now)`;
//! - batch put: one transaction of 10 × (version + upsert) + purge;
//! - CAS update: the versioned read, then a transaction that re-reads the
//!   live version, compares, reserves a version, upserts, purges;
//! - send: load the queue row, retention delete, insert the message
//!   (UUID v4 id), bump `next_sequence`;
//! - receive: load the queue row, retention delete, the visible-index page
//!   query, one `UPDATE` per delivered message;
//! - ack: load the queue row, retention delete, look the message up by id,
//!   check the receive count, delete by sequence.
//!
//! The raw side does not decode the queue's JSON config (it uses the
//! defaults it created the queue with) nor validate inputs: that work,
//! `spawn_blocking`, the boxed trait futures, tracing spans and the
//! `Bytes`/`String` conversions are what the ratio charges to the adapter.
//! Both sides read the system clock for "now" the same number of times.
//!
//! A third column runs the raw statements with each call hopped through
//! `tokio::task::spawn_blocking` (what the adapter does so SQLite never
//! blocks a runtime worker): adapter ÷ that isolates the adapter's own
//! code from the cost of the thread hop. All three are fed the same key
//! sequence and rotate in three rounds.
//!
//! # Scale
//!
//! Adapter only: the latency of one 100-key scan page from a random start
//! key, and of one `receive` (the ack and the send of a replacement that
//! follow are not timed, so the queue keeps its size), in a
//! store holding 1k rows and one holding 1M rows (KV entries in one
//! namespace; messages in one queue). The large stores are seeded with raw
//! batched `INSERT`s straight into `storage_kv` / `storage_messages` in one
//! transaction (with `storage_meta.version_counter` and
//! `storage_queues.next_sequence` advanced to match) — seeding through the
//! API would take an fsync per call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::future::Future;
use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use storage_core::{
    AtomicKv, BatchOp, KvStore, MessageId, PutMode, PutOptions, QueueConfig, QueueStore,
    QueueStoreExt, ReceiveOptions, ScanRequest, SendMessage,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

const KEYS: u64 = 10_000;
const VALUE: usize = 100;
const NS: &str = "bench";
const QUEUE: &str = "bench-q";
const ROUNDS: u32 = 3;

fn key_of(i: u64) -> Bytes {
    Bytes::from(format!("key-{i:010}"))
}

/// Keys are built once, outside the timed loops.
fn keys() -> Vec<Bytes> {
    (0..KEYS).map(|i| key_of(i * 7919 % KEYS)).collect()
}

/// A cheap deterministic index sequence (LCG), identical for both sides.
#[derive(Clone)]
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------
// The raw side: the adapter's statements on a plain connection.
// ---------------------------------------------------------------------

const SQL_NEXT_VERSION: &str =
    "UPDATE storage_meta SET value = value + 1 WHERE key = 'version_counter' RETURNING value";
const SQL_GET: &str = "SELECT value FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
const SQL_GET_VERSIONED: &str = "SELECT value, version FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
const SQL_LIVE_VERSION: &str = "SELECT version FROM storage_kv \
     WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";
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

struct Raw {
    conn: Connection,
}

/// (seq, id, body, receive_count, first_received_at) of a page row.
type PageRow = (i64, String, Vec<u8>, i64, Option<i64>);

/// A message the raw receive delivered.
struct RawMsg {
    id: String,
    receive_count: i64,
    #[allow(dead_code)]
    body: Vec<u8>,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
            .unwrap();
        Raw { conn }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = now_ms();
        self.conn
            .prepare_cached(SQL_GET)
            .unwrap()
            .query_row(params![NS, key, now], |r| r.get(0))
            .optional()
            .unwrap()
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let version: i64 = tx
            .prepare_cached(SQL_NEXT_VERSION)
            .unwrap()
            .query_row([], |r| r.get(0))
            .unwrap();
        tx.prepare_cached(SQL_UPSERT)
            .unwrap()
            .execute(params![NS, key, value, version, None::<i64>])
            .unwrap();
        tx.prepare_cached(SQL_PURGE)
            .unwrap()
            .execute(params![now, PURGE_BUDGET])
            .unwrap();
        tx.commit().unwrap();
    }

    fn put_batch(&mut self, entries: &[(Bytes, Bytes)]) {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        for (k, v) in entries {
            let version: i64 = tx
                .prepare_cached(SQL_NEXT_VERSION)
                .unwrap()
                .query_row([], |r| r.get(0))
                .unwrap();
            tx.prepare_cached(SQL_UPSERT)
                .unwrap()
                .execute(params![NS, &k[..], &v[..], version, None::<i64>])
                .unwrap();
        }
        tx.prepare_cached(SQL_PURGE)
            .unwrap()
            .execute(params![now, PURGE_BUDGET])
            .unwrap();
        tx.commit().unwrap();
    }

    /// get_versioned + put_if(Update); `false` on a (never expected)
    /// conflict.
    fn cas_update(&mut self, key: &[u8], value: &[u8]) -> bool {
        let now = now_ms();
        let (_old, expected): (Vec<u8>, i64) = self
            .conn
            .prepare_cached(SQL_GET_VERSIONED)
            .unwrap()
            .query_row(params![NS, key, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let current: Option<i64> = tx
            .prepare_cached(SQL_LIVE_VERSION)
            .unwrap()
            .query_row(params![NS, key, now], |r| r.get(0))
            .optional()
            .unwrap();
        if current != Some(expected) {
            return false;
        }
        let version: i64 = tx
            .prepare_cached(SQL_NEXT_VERSION)
            .unwrap()
            .query_row([], |r| r.get(0))
            .unwrap();
        tx.prepare_cached(SQL_UPSERT)
            .unwrap()
            .execute(params![NS, key, value, version, None::<i64>])
            .unwrap();
        tx.prepare_cached(SQL_PURGE)
            .unwrap()
            .execute(params![now, PURGE_BUDGET])
            .unwrap();
        tx.commit().unwrap();
        true
    }

    /// The queue row and retention delete every queue write starts with.
    fn queue_prologue(conn: &Connection, now: i64) -> i64 {
        let (_config, next): (String, i64) = conn
            .prepare_cached(SQL_LOAD_QUEUE)
            .unwrap()
            .query_row([QUEUE], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        conn.prepare_cached(SQL_EXPIRE)
            .unwrap()
            .execute(params![QUEUE, now - RETENTION_MS])
            .unwrap();
        next
    }

    fn send_batch(&mut self, bodies: &[Bytes]) -> Vec<String> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        let mut next = Self::queue_prologue(&tx, now);
        let mut ids = Vec::with_capacity(bodies.len());
        for body in bodies {
            let id = MessageId::random();
            tx.prepare_cached(SQL_INSERT_MSG)
                .unwrap()
                .execute(params![
                    QUEUE,
                    next,
                    id.0,
                    &body[..],
                    "{}",
                    None::<String>,
                    None::<String>,
                    now,
                    now,
                    0i64,
                    None::<i64>,
                    None::<String>,
                ])
                .unwrap();
            next += 1;
            ids.push(id.0);
        }
        tx.prepare_cached(SQL_SET_NEXT)
            .unwrap()
            .execute(params![QUEUE, next])
            .unwrap();
        tx.commit().unwrap();
        ids
    }

    fn receive(&mut self, max: usize) -> Vec<RawMsg> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        Self::queue_prologue(&tx, now);
        let page: Vec<PageRow> = tx
            .prepare_cached(SQL_STANDARD_PAGE)
            .unwrap()
            .query_map(params![QUEUE, now, i64::MIN, 0i64, max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(8)?, r.get(9)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut out = Vec::with_capacity(page.len());
        for (seq, id, body, count, first) in page {
            let count = count + 1;
            tx.prepare_cached(SQL_PICK)
                .unwrap()
                .execute(params![
                    QUEUE,
                    seq,
                    now + VISIBILITY_MS,
                    count,
                    first.unwrap_or(now)
                ])
                .unwrap();
            out.push(RawMsg {
                id,
                receive_count: count,
                body,
            });
        }
        tx.commit().unwrap();
        out
    }

    fn ack(&mut self, id: &str, receive_count: i64) {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        Self::queue_prologue(&tx, now);
        let (seq, count, _grp): (i64, i64, Option<String>) = tx
            .prepare_cached(SQL_FIND_BY_ID)
            .unwrap()
            .query_row(params![QUEUE, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(count, receive_count, "stale receipt");
        tx.prepare_cached(SQL_DELETE_MSG)
            .unwrap()
            .execute(params![QUEUE, seq])
            .unwrap();
        tx.commit().unwrap();
    }
}

// ---------------------------------------------------------------------
// Measurement.
// ---------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Tally {
    ops: u64,
    secs: f64,
}

impl Tally {
    fn rate(self) -> f64 {
        self.ops as f64 / self.secs
    }
}

async fn run_async<F, Fut>(budget: Duration, op: &mut F, tally: &mut Tally)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        for _ in 0..10 {
            op().await;
            n += 1;
        }
    }
    tally.ops += n;
    tally.secs += start.elapsed().as_secs_f64();
}

fn run_sync<F: FnMut()>(budget: Duration, op: &mut F, tally: &mut Tally) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        for _ in 0..10 {
            op();
            n += 1;
        }
    }
    tally.ops += n;
    tally.secs += start.elapsed().as_secs_f64();
}

/// One raw operation: the statements, on a locked connection, for the
/// `i`-th value of the workload's index sequence.
type RawOp = Arc<dyn Fn(&mut Raw, u64) + Send + Sync>;

/// Warms every side up, then alternates them for [`ROUNDS`] rounds of
/// `budget / ROUNDS` each, all fed the same index sequence; returns ops/s
/// of (adapter, raw, raw through `spawn_blocking`).
///
/// `calls` is how many trait calls the adapter side makes per operation
/// (CAS: `get_versioned` + `put_if` = 2); the hand-off side makes as many
/// `spawn_blocking` hops — the statements in the last, empty hops before
/// it — since a hop costs the same whatever it carries.
async fn compare<A, Fut>(
    budget: Duration,
    seed: u64,
    raw: &Arc<Mutex<Raw>>,
    mut adapter: A,
    raw_op: RawOp,
    calls: usize,
) -> (f64, f64, f64)
where
    A: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mut ia, mut ir, mut ih) = (Lcg(seed), Lcg(seed), Lcg(seed));
    let mut direct = {
        let (raw, op) = (raw.clone(), raw_op.clone());
        move || op(&mut raw.lock().unwrap(), ir.next(u64::MAX))
    };
    let mut hop = {
        let raw = raw.clone();
        move || {
            let (raw, op, i) = (raw.clone(), raw_op.clone(), ih.next(u64::MAX));
            async move {
                for _ in 1..calls {
                    tokio::task::spawn_blocking(|| ()).await.unwrap();
                }
                tokio::task::spawn_blocking(move || op(&mut raw.lock().unwrap(), i))
                    .await
                    .unwrap();
            }
        }
    };
    let mut adapter = move || adapter(ia.next(u64::MAX));
    for _ in 0..20 {
        adapter().await;
        direct();
        hop().await;
    }
    let slice = budget / ROUNDS;
    let (mut a, mut r, mut h) = (Tally::default(), Tally::default(), Tally::default());
    for round in 0..ROUNDS {
        // Rotate who goes first, so no side always runs right after
        // another side's WAL checkpoint.
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => run_async(slice, &mut adapter, &mut a).await,
                1 => run_sync(slice, &mut direct, &mut r),
                _ => run_async(slice, &mut hop, &mut h).await,
            }
        }
    }
    (a.rate(), r.rate(), h.rate())
}

struct Row {
    workload: &'static str,
    adapter: f64,
    raw: f64,
    /// Raw statements, each call hopped through `spawn_blocking`.
    hop: f64,
}

impl Row {
    fn new(workload: &'static str, adapter: f64, raw: f64, hop: f64) -> Self {
        Row {
            workload,
            adapter,
            raw,
            hop,
        }
    }
}

/// Latency samples of one scale measurement, in microseconds.
struct Latency {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    samples: usize,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = samples.len();
    Latency {
        mean: samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64,
        p50: us(samples[n / 2]),
        p90: us(samples[n * 9 / 10]),
        p99: us(samples[(n * 99 / 100).min(n - 1)]),
        samples: n,
    }
}

// ---------------------------------------------------------------------
// Scale: seeding and the two adapter latencies.
// ---------------------------------------------------------------------

/// Seeds `rows` KV entries and `rows` messages straight into the storage
/// tables of a migrated file (one transaction each, `synchronous = OFF`
/// while seeding only).
fn seed(path: &Path, rows: u64) {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
        .unwrap();
    let value = [7u8; VALUE];
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO storage_kv (ns, key, value, version, expires_at) VALUES (?1, ?2, ?3, ?4, NULL)")
            .unwrap();
        for i in 0..rows {
            st.execute(params![NS, &key_of(i)[..], &value[..], (i + 1) as i64])
                .unwrap();
        }
    }
    tx.execute(
        "UPDATE storage_meta SET value = ?1 WHERE key = 'version_counter'",
        [rows as i64],
    )
    .unwrap();
    tx.commit().unwrap();

    // Messages sent a minute ago, all visible, none received.
    let sent = now_ms() - 60_000;
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx.prepare(SQL_INSERT_MSG).unwrap();
        for seq in 0..rows as i64 {
            st.execute(params![
                QUEUE,
                seq,
                MessageId::random().0,
                &value[..],
                "{}",
                None::<String>,
                None::<String>,
                sent,
                sent,
                0i64,
                None::<i64>,
                None::<String>,
            ])
            .unwrap();
        }
    }
    tx.execute(SQL_SET_NEXT, params![QUEUE, rows as i64])
        .unwrap();
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// How many timed operations each scale point runs.
#[derive(Clone, Copy)]
struct Samples {
    scan: usize,
    receive: usize,
}

async fn scale_point(dir: &Path, rows: u64, samples: Samples) -> (Latency, Latency, Duration) {
    let path = dir.join(format!("scale-{rows}.sqlite"));
    let started = Instant::now();
    {
        let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
        store
            .create_queue(QUEUE, QueueConfig::default())
            .await
            .unwrap();
    }
    seed(&path, rows);
    let seeded = started.elapsed();
    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let q: Arc<dyn QueueStore> = Arc::new(store);

    let mut rng = Lcg(42);
    let mut scan = Vec::new();
    for i in 0.. {
        let start = key_of(rng.next(rows.saturating_sub(100).max(1)));
        let req = ScanRequest {
            start: std::ops::Bound::Included(start),
            ..ScanRequest::all()
        }
        .with_limit(100);
        let t = Instant::now();
        let page = kv.scan(NS, req).await.unwrap();
        let d = t.elapsed();
        assert_eq!(page.entries.len(), 100);
        if i >= 50 {
            scan.push(d);
        }
        if scan.len() >= samples.scan {
            break;
        }
    }

    // Receive latency at a constant queue size: each timed receive is
    // followed by an untimed ack and an untimed send of a replacement, so
    // both sizes run the same number of cycles (and meet their WAL
    // checkpoints at the same rate per cycle).
    let mut recv = Vec::with_capacity(samples.receive);
    let body = Bytes::from(vec![7u8; VALUE]);
    for i in 0..samples.receive + 20 {
        let t = Instant::now();
        let got = q.receive(QUEUE, ReceiveOptions::default()).await.unwrap();
        let d = t.elapsed();
        assert_eq!(got.len(), 1);
        q.ack(QUEUE, &got[0].receipt).await.unwrap();
        q.send(QUEUE, SendMessage::new(body.clone())).await.unwrap();
        if i >= 20 {
            recv.push(d);
        }
    }
    (latency(scan), latency(recv), seeded)
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let secs = env_f64("BENCH_SECONDS").unwrap_or(if quick { 0.3 } else { 2.0 });
    let budget = Duration::from_secs_f64(secs);
    let big: u64 = env_f64("BENCH_SCALE_ROWS")
        .map(|v| v as u64)
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });

    // BENCH_ONLY=compare or BENCH_ONLY=scale runs one part.
    let only = std::env::var("BENCH_ONLY").ok();
    let dir = tempfile::tempdir().unwrap();
    let adapter_path = dir.path().join("adapter.sqlite");
    let raw_path = dir.path().join("raw.sqlite");
    let store = SqliteStore::open(SqliteConfig::file(&adapter_path))
        .await
        .unwrap();
    // The raw file gets the adapter's schema by being opened once.
    drop(
        SqliteStore::open(SqliteConfig::file(&raw_path))
            .await
            .unwrap(),
    );
    let raw = Arc::new(Mutex::new(Raw::open(&raw_path)));

    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let cas: Arc<dyn AtomicKv> = Arc::new(store.clone());
    let q: Arc<dyn QueueStore> = Arc::new(store.clone());
    q.create_queue(QUEUE, QueueConfig::default()).await.unwrap();
    {
        // The raw queue row, written by the adapter's own create.
        let s = SqliteStore::open(SqliteConfig::file(&raw_path))
            .await
            .unwrap();
        s.create_queue(QUEUE, QueueConfig::default()).await.unwrap();
    }

    let value = Bytes::from(vec![7u8; VALUE]);
    let keys = Arc::new(keys());
    for chunk in keys.chunks(100) {
        let ops = chunk
            .iter()
            .map(|k| BatchOp::Put {
                key: k.clone(),
                value: value.clone(),
                options: PutOptions::default(),
            })
            .collect();
        kv.write_batch(NS, ops).await.unwrap();
        let entries: Vec<(Bytes, Bytes)> =
            chunk.iter().map(|k| (k.clone(), value.clone())).collect();
        raw.lock().unwrap().put_batch(&entries);
    }
    // The i-th key of a sequence, and the 10 keys of a batch.
    let key = {
        let keys = keys.clone();
        move |i: u64| keys[(i % KEYS) as usize].clone()
    };
    let batch_keys = {
        let key = key.clone();
        move |i: u64| -> Vec<Bytes> {
            let mut g = Lcg(i);
            (0..10).map(|_| key(g.next(KEYS))).collect()
        }
    };

    if only.as_deref() != Some("scale") {
        let mut rows = Vec::new();
        eprintln!("measuring ({secs} s per side per workload) ...");

        let (a, r, h) = compare(
            budget,
            1,
            &raw,
            |i| {
                let (kv, k, v) = (kv.clone(), key(i), value.clone());
                async move { kv.put(NS, &k, v, PutOptions::default()).await.unwrap() }
            },
            Arc::new({
                let (key, value) = (key.clone(), value.clone());
                move |raw: &mut Raw, i| raw.put(&key(i), &value)
            }),
            1,
        )
        .await;
        rows.push(Row::new("kv put (100 B, overwrite, 10k keys)", a, r, h));

        let (a, r, h) = compare(
            budget,
            2,
            &raw,
            |i| {
                let (kv, k) = (kv.clone(), key(i));
                async move {
                    black_box(kv.get(NS, &k).await.unwrap().unwrap());
                }
            },
            Arc::new({
                let key = key.clone();
                move |raw: &mut Raw, i| {
                    black_box(raw.get(&key(i)).unwrap());
                }
            }),
            1,
        )
        .await;
        rows.push(Row::new("kv get (100 B, 10k keys)", a, r, h));

        let (a, r, h) = compare(
            budget,
            3,
            &raw,
            |i| {
                let ops: Vec<BatchOp> = batch_keys(i)
                    .into_iter()
                    .map(|k| BatchOp::Put {
                        key: k,
                        value: value.clone(),
                        options: PutOptions::default(),
                    })
                    .collect();
                let kv = kv.clone();
                async move { kv.write_batch(NS, ops).await.unwrap() }
            },
            Arc::new({
                let (batch_keys, value) = (batch_keys.clone(), value.clone());
                move |raw: &mut Raw, i| {
                    let entries: Vec<(Bytes, Bytes)> = batch_keys(i)
                        .into_iter()
                        .map(|k| (k, value.clone()))
                        .collect();
                    raw.put_batch(&entries);
                }
            }),
            1,
        )
        .await;
        rows.push(Row::new("kv write_batch (10 puts), batches/s", a, r, h));

        let (a, r, h) = compare(
            budget,
            4,
            &raw,
            |i| {
                let (cas, k, v) = (cas.clone(), key(i), value.clone());
                async move {
                    let cur = cas.get_versioned(NS, &k).await.unwrap().unwrap();
                    cas.put_if(
                        NS,
                        &k,
                        v,
                        PutMode::Update(cur.version),
                        PutOptions::default(),
                    )
                    .await
                    .unwrap();
                }
            },
            Arc::new({
                let (key, value) = (key.clone(), value.clone());
                move |raw: &mut Raw, i| assert!(raw.cas_update(&key(i), &value))
            }),
            2,
        )
        .await;
        rows.push(Row::new(
            "CAS update (get_versioned + put_if Update)",
            a,
            r,
            h,
        ));

        let (a, r, h) = compare(
            budget,
            5,
            &raw,
            |_| {
                let (q, v) = (q.clone(), value.clone());
                async move {
                    q.send(QUEUE, SendMessage::new(v)).await.unwrap();
                    let got = q.receive(QUEUE, ReceiveOptions::default()).await.unwrap();
                    assert_eq!(got.len(), 1);
                    q.ack(QUEUE, &got[0].receipt).await.unwrap();
                }
            },
            Arc::new({
                let value = value.clone();
                move |raw: &mut Raw, _| {
                    raw.send_batch(std::slice::from_ref(&value));
                    let got = raw.receive(1);
                    assert_eq!(got.len(), 1);
                    raw.ack(&got[0].id, got[0].receive_count);
                }
            }),
            3,
        )
        .await;
        rows.push(Row::new(
            "queue send → receive → ack (1 msg), cycles/s",
            a,
            r,
            h,
        ));

        let bodies: Vec<Bytes> = (0..10).map(|_| value.clone()).collect();
        let (a, r, h) = compare(
            budget,
            6,
            &raw,
            |_| {
                let q = q.clone();
                let msgs: Vec<SendMessage> = bodies.iter().cloned().map(SendMessage::new).collect();
                async move {
                    q.send_batch(QUEUE, msgs).await.unwrap();
                    let got = q.receive(QUEUE, ReceiveOptions::batch(10)).await.unwrap();
                    assert_eq!(got.len(), 10);
                    for m in &got {
                        q.ack(QUEUE, &m.receipt).await.unwrap();
                    }
                }
            },
            Arc::new({
                let bodies = bodies.clone();
                move |raw: &mut Raw, _| {
                    raw.send_batch(&bodies);
                    let got = raw.receive(10);
                    assert_eq!(got.len(), 10);
                    for m in &got {
                        raw.ack(&m.id, m.receive_count);
                    }
                }
            }),
            12,
        )
        .await;
        rows.push(Row::new(
            "queue send_batch 10 → receive 10 → 10 acks, cycles/s",
            a,
            r,
            h,
        ));
        drop((kv, cas, q, store));

        println!();
        println!(
            "### storage-sqlite vs raw rusqlite (file DB, WAL, synchronous=FULL, concurrency 1)"
        );
        println!();
        println!(
        "| workload | adapter ops/s | raw ops/s | ratio | target ≥ 0.9 | adapter µs/op over raw \
         | raw via spawn_blocking ops/s (one hop per adapter call) | adapter ÷ that |"
    );
        println!("|---|---:|---:|---:|---|---:|---:|---:|");
        for row in &rows {
            let ratio = row.adapter / row.raw;
            println!(
                "| {} | {:.0} | {:.0} | {:.2} | {} | {:+.0} | {:.0} | {:.2} |",
                row.workload,
                row.adapter,
                row.raw,
                ratio,
                if ratio >= 0.9 { "met" } else { "missed" },
                (1.0 / row.adapter - 1.0 / row.raw) * 1e6,
                row.hop,
                row.adapter / row.hop,
            );
        }
    }

    if only.as_deref() == Some("compare") {
        return;
    }
    eprintln!("scale: seeding 1k and {big} rows ...");
    let samples = if quick {
        Samples {
            scan: 1_000,
            receive: 300,
        }
    } else {
        Samples {
            scan: 10_000,
            receive: 2_000,
        }
    };
    let small = scale_point(dir.path(), 1_000, samples).await;
    let large = scale_point(dir.path(), big, samples).await;
    println!();
    println!(
        "### adapter latency at 1k vs {big} rows (seeding {big} KV rows + {big} messages took {:.1?})",
        large.2
    );
    println!();
    println!(
        "| operation | 1k mean µs | 1k p50 / p90 / p99 | {big} mean µs | {big} p50 / p90 / p99 | ratio (mean) | ratio (p50) | target ≤ 1.5 (mean) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (name, s, l) in [
        ("scan page (100 keys, random start)", &small.0, &large.0),
        (
            "receive (1 msg; ack + refill send untimed)",
            &small.1,
            &large.1,
        ),
    ] {
        let ratio = l.mean / s.mean;
        println!(
            "| {name} | {:.1} | {:.0} / {:.0} / {:.0} | {:.1} | {:.0} / {:.0} / {:.0} | {:.2} | {:.2} | {} |",
            s.mean,
            s.p50,
            s.p90,
            s.p99,
            l.mean,
            l.p50,
            l.p90,
            l.p99,
            ratio,
            l.p50 / s.p50,
            if ratio <= 1.5 { "met" } else { "missed" }
        );
    }
    println!();
    println!(
        "samples: scan {} / {}, receive {} / {}",
        small.0.samples, large.0.samples, small.1.samples, large.1.samples
    );
}
