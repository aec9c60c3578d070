//! The one documented schema, and its versioned migration on open.
//!
//! Inspect a store with the `sqlite3` CLI: `sqlite3 db.sqlite .schema`.
//! Every table the storage layer owns is prefixed `storage_`, so an
//! emulator's own SQL tables (through [`SqlEngine`](storage_core::SqlEngine))
//! can live in the same file. Namespaces, keys and queue names are column
//! values bound as parameters, never spliced into SQL. Times are
//! milliseconds since the Unix epoch by the store's injected clock.
//!
//! ```sql
//! -- schema_version, and the store-wide version counter (CAS tokens are
//! -- never reused, even across processes sharing the file)
//! CREATE TABLE storage_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
//!
//! -- KV: one row per entry; scans walk the primary key in (ns, key) byte order
//! CREATE TABLE storage_kv (
//!     ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
//!     version INTEGER NOT NULL, expires_at INTEGER,       -- NULL: never
//!     PRIMARY KEY (ns, key)) WITHOUT ROWID;
//! CREATE INDEX storage_kv_expiry ON storage_kv (expires_at) WHERE expires_at IS NOT NULL;
//!
//! -- Queues: config as JSON (serde of `QueueConfig`), next send sequence
//! CREATE TABLE storage_queues (
//!     name TEXT PRIMARY KEY, config TEXT NOT NULL, next_sequence INTEGER NOT NULL) WITHOUT ROWID;
//! -- One row per live message. `grp` is the FIFO ordering group: the group
//! -- id ('' for a message without one, possible only through import or a
//! -- dead-letter move from a standard queue) on FIFO queues, NULL on
//! -- standard queues (so standard messages stay out of the group indexes).
//! CREATE TABLE storage_messages (
//!     queue TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
//!     body BLOB NOT NULL, attributes TEXT NOT NULL,      -- JSON object
//!     group_id TEXT, dedup_id TEXT, grp TEXT,
//!     sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
//!     receive_count INTEGER NOT NULL, first_received_at INTEGER,
//!     PRIMARY KEY (queue, seq)) WITHOUT ROWID;
//! CREATE UNIQUE INDEX storage_messages_id ON storage_messages (queue, id);
//! -- standard receive: visible messages in (visible_at, seq) order
//! CREATE INDEX storage_messages_visible ON storage_messages (queue, visible_at, seq);
//! -- retention: messages sent at or before now - retention
//! CREATE INDEX storage_messages_retention ON storage_messages (queue, sent_at);
//! -- FIFO: a group's messages in send order (its head, its next message)
//! CREATE INDEX storage_messages_group ON storage_messages (queue, grp, seq)
//!     WHERE grp IS NOT NULL;
//! -- FIFO: the latest visible_at of a group's received messages
//! CREATE INDEX storage_messages_received ON storage_messages (queue, grp, visible_at)
//!     WHERE grp IS NOT NULL AND receive_count > 0;
//! -- FIFO: one row per non-empty group of a FIFO queue, derived from
//! -- storage_messages and kept in step by every queue write: its head
//! -- (earliest message) and the instant it becomes deliverable — the later
//! -- of the head's visible_at and the latest visible_at of its received
//! -- messages (the group is blocked while that is in the future).
//! CREATE TABLE storage_fifo_groups (
//!     queue TEXT NOT NULL, grp TEXT NOT NULL,
//!     head_seq INTEGER NOT NULL, ready_at INTEGER NOT NULL,
//!     PRIMARY KEY (queue, grp)) WITHOUT ROWID;
//! CREATE INDEX storage_fifo_groups_head ON storage_fifo_groups (queue, head_seq, ready_at);
//! -- FIFO dedup memory; an entry is free again once expires_at <= now
//! CREATE TABLE storage_dedup (
//!     queue TEXT NOT NULL, dedup_id TEXT NOT NULL, message_id TEXT NOT NULL,
//!     expires_at INTEGER NOT NULL, PRIMARY KEY (queue, dedup_id)) WITHOUT ROWID;
//! CREATE INDEX storage_dedup_expiry ON storage_dedup (queue, expires_at);
//! ```

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use storage_core::{Context, Error, Result};

use crate::config::BACKEND;
use crate::error::map_err;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Version 1: everything above. Later versions append steps to
/// [`MIGRATIONS`]; a step never changes once released.
const V1: &str = "
CREATE TABLE IF NOT EXISTS storage_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO storage_meta (key, value) VALUES ('version_counter', 0);
CREATE TABLE IF NOT EXISTS storage_kv (
    ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    version INTEGER NOT NULL, expires_at INTEGER,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_kv_expiry ON storage_kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS storage_queues (
    name TEXT PRIMARY KEY, config TEXT NOT NULL, next_sequence INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS storage_messages (
    queue TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    body BLOB NOT NULL, attributes TEXT NOT NULL,
    group_id TEXT, dedup_id TEXT, grp TEXT,
    sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL, first_received_at INTEGER,
    PRIMARY KEY (queue, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS storage_messages_id ON storage_messages (queue, id);
CREATE INDEX IF NOT EXISTS storage_messages_visible ON storage_messages (queue, visible_at, seq);
CREATE INDEX IF NOT EXISTS storage_messages_retention ON storage_messages (queue, sent_at);
CREATE INDEX IF NOT EXISTS storage_messages_group ON storage_messages (queue, grp, seq)
    WHERE grp IS NOT NULL;
CREATE INDEX IF NOT EXISTS storage_messages_received ON storage_messages (queue, grp, visible_at)
    WHERE grp IS NOT NULL AND receive_count > 0;
CREATE TABLE IF NOT EXISTS storage_fifo_groups (
    queue TEXT NOT NULL, grp TEXT NOT NULL,
    head_seq INTEGER NOT NULL, ready_at INTEGER NOT NULL,
    PRIMARY KEY (queue, grp)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_fifo_groups_head ON storage_fifo_groups (queue, head_seq, ready_at);
CREATE TABLE IF NOT EXISTS storage_dedup (
    queue TEXT NOT NULL, dedup_id TEXT NOT NULL, message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL, PRIMARY KEY (queue, dedup_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_dedup_expiry ON storage_dedup (queue, expires_at);
";

/// Migration steps: `MIGRATIONS[i]` takes the schema from version `i` to
/// `i + 1`.
const MIGRATIONS: &[&str] = &[V1];

fn ctx() -> Context {
    Context::new("open", BACKEND)
}

/// The schema version recorded in the file (0 for a fresh database).
fn recorded_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'storage_meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    Ok(conn
        .query_row(
            "SELECT value FROM storage_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`], in one immediate transaction
/// so processes opening the same file at once migrate it exactly once.
/// A file written by a newer build is refused, untouched.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err(ctx(), e))?;
    let found = recorded_version(&tx).map_err(|e| map_err(ctx(), e))?;
    if found > SCHEMA_VERSION {
        return Err(Error::invalid(
            ctx(),
            format!(
                "the database has storage schema version {found}, newer than this build's {SCHEMA_VERSION}; upgrade storage-sqlite"
            ),
        ));
    }
    for step in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(step).map_err(|e| map_err(ctx(), e))?;
    }
    tx.execute(
        "INSERT INTO storage_meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION],
    )
    .map_err(|e| map_err(ctx(), e))?;
    tx.commit().map_err(|e| map_err(ctx(), e))
}

/// Reserves `n` store-wide version numbers inside the caller's write
/// transaction and returns the last (the reserved numbers are
/// `last - n + 1 ..= last`): unique across every connection and process
/// on the file, never reused.
pub(crate) fn reserve_versions(conn: &Connection, n: u64) -> rusqlite::Result<i64> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE storage_meta SET value = value + ?1 WHERE key = 'version_counter' RETURNING value",
    )?
    .query_row([n], |r| r.get(0))
}
