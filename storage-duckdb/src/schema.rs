//! The one documented schema of the KV and CAS tiers, and its versioned
//! migration on open.
//!
//! Inspect a store with the `duckdb` CLI: `duckdb db.duckdb -c "DESCRIBE
//! storage_kv"`. Every table the storage layer owns is prefixed
//! `storage_`, so an emulator's own SQL tables (through
//! [`SqlEngine`](storage_core::SqlEngine)) live beside them in the same
//! catalogue. Namespaces, keys and values are column values bound as
//! parameters, never spliced into SQL. Times are milliseconds since the
//! Unix epoch by the store's injected clock.
//!
//! ```sql
//! -- schema_version, and the store-wide version counter: the highest
//! -- version reserved so far, in blocks (CAS tokens are never reused, not
//! -- even after delete and recreate or close and reopen)
//! CREATE TABLE storage_meta (key VARCHAR NOT NULL, value BIGINT NOT NULL);
//!
//! -- KV: one row per (ns, key). DuckDB compares BLOBs bytewise as
//! -- unsigned bytes (memcmp), so ORDER BY key is exactly the KV tier's
//! -- key order.
//! CREATE TABLE storage_kv (
//!     ns VARCHAR NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
//!     version BIGINT NOT NULL, expires_at BIGINT);       -- NULL: never
//! ```
//!
//! # Why no PRIMARY KEY
//!
//! The tables deliberately carry no primary key or other index. DuckDB's
//! unique ART indexes report spurious conflicts while any other
//! transaction on the database is open (measured here: KV puts failed
//! with `Failed to commit: write-write conflict on key:
//! "version_counter"` whenever an SQL statement ran concurrently on
//! another connection; and in DuckDB 1.4.3, a key deleted and inserted
//! again while another transaction is open fails with `Duplicate key ...
//! violates primary key constraint`). A non-unique index avoids those,
//! but DuckDB 1.4 uses an ART index only for a filter that is exactly an
//! equality on its one column: measured on 1M rows, a composite
//! `(ns, key)` index is never used (8.4 ms a lookup, as without it), and
//! a one-column index answers `id = ?` in 0.4 ms but is dropped for a
//! scan as soon as the expiry or version condition every KV statement
//! carries is added. So these lookups are zone-map-pruned scans either
//! way, and the index would only cost its upkeep.
//! Uniqueness is kept by the KV tier instead: every KV write runs on the
//! store's one KV connection, inside a transaction, and updates the row
//! of its key in place or inserts it when there is none.
//!
//! DuckDB has no partial indexes either, so there is no expiry index:
//! expired rows are invisible to every read at once (each query filters
//! on `expires_at`), and every 64th KV write transaction deletes all rows
//! that have expired by then (one columnar scan of `expires_at`).

use duckdb::{Connection, OptionalExt};
use storage_core::{Context, Error, Result};

use crate::config::BACKEND;
use crate::error::map_err;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Version 1: everything above. Later versions append steps to
/// [`MIGRATIONS`]; a step never changes once released.
const V1: &str = "
CREATE TABLE IF NOT EXISTS storage_kv (
    ns VARCHAR NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    version BIGINT NOT NULL, expires_at BIGINT);
INSERT INTO storage_meta (key, value)
    SELECT 'version_counter', 0
    WHERE NOT EXISTS (SELECT 1 FROM storage_meta WHERE key = 'version_counter');
";

/// Migration steps: `MIGRATIONS[i]` takes the schema from version `i` to
/// `i + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// The table every version has, created first so the recorded version can
/// be read.
const META: &str =
    "CREATE TABLE IF NOT EXISTS storage_meta (key VARCHAR NOT NULL, value BIGINT NOT NULL)";

fn ctx() -> Context {
    Context::new("open", BACKEND)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. A database
/// written by a newer build is refused, untouched.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction().map_err(|e| map_err(ctx(), e))?;
    tx.execute_batch(META).map_err(|e| map_err(ctx(), e))?;
    let found: i64 = tx
        .query_row(
            "SELECT value FROM storage_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| map_err(ctx(), e))?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Error::invalid(
            ctx(),
            format!(
                "the database has storage schema version {found}, newer than this build's {SCHEMA_VERSION}; upgrade storage-duckdb"
            ),
        ));
    }
    for step in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(step).map_err(|e| map_err(ctx(), e))?;
    }
    let updated = tx
        .execute(
            "UPDATE storage_meta SET value = ? WHERE key = 'schema_version'",
            [SCHEMA_VERSION],
        )
        .map_err(|e| map_err(ctx(), e))?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO storage_meta (key, value) VALUES ('schema_version', ?)",
            [SCHEMA_VERSION],
        )
        .map_err(|e| map_err(ctx(), e))?;
    }
    tx.commit().map_err(|e| map_err(ctx(), e))
}

/// The store's versions in memory: a block reserved from the persisted
/// counter ([`storage_core::VersionBlock`], 1,024 at a time: one counter
/// update per block instead of one per write), handed out by the KV
/// connection's write transactions (which run one at a time, see
/// `backend.rs`). A reopen skips the rest of a block (gaps are harmless;
/// tokens are opaque).
///
/// The counter in `storage_meta` is a high-water mark: every version
/// handed out is at or below it, so none is issued twice, across reopens
/// and crashes included. A block is reserved inside the transaction that
/// first needs it; if that transaction does not commit, the reservation
/// did not happen and the block is forgotten, so a version is never taken
/// from a block the file does not know of.
#[derive(Debug)]
pub(crate) struct VersionBlock {
    block: storage_core::VersionBlock,
    /// The block was reserved by the transaction still open.
    uncommitted: bool,
}

impl VersionBlock {
    /// No block: the next write reserves one.
    pub(crate) const EMPTY: VersionBlock = VersionBlock {
        block: storage_core::VersionBlock::EMPTY,
        uncommitted: false,
    };

    /// Takes `n` (>= 1) consecutive versions and returns the last (they
    /// are `last - n + 1 ..= last`), reserving a new block inside the open
    /// transaction on `conn` when this one has fewer than `n` left.
    pub(crate) fn take(&mut self, conn: &Connection, n: u64) -> duckdb::Result<i64> {
        let last = match self.block.take(n) {
            Some(last) => last,
            None => {
                let size = storage_core::VersionBlock::reservation(n);
                let last = reserve_versions(conn, size)?;
                self.block.refill(u64::try_from(last).unwrap_or(0), size);
                self.uncommitted = true;
                // Fewer than `n` only if the counter was below zero,
                // which no build writes: reported as the value it is.
                self.block
                    .take(n)
                    .ok_or(duckdb::Error::IntegralValueOutOfRange(0, i128::from(last)))?
            }
        };
        Ok(i64::try_from(last).unwrap_or(i64::MAX))
    }

    /// The open transaction committed: its reservation is on file.
    pub(crate) fn committed(&mut self) {
        self.uncommitted = false;
    }

    /// The open transaction rolled back (refused or failed): a block it
    /// reserved is not on file, so forget it.
    pub(crate) fn rolled_back(&mut self) {
        if self.uncommitted {
            *self = VersionBlock::EMPTY;
        }
    }

    /// The counter was replaced (an import): forget the block.
    pub(crate) fn forget(&mut self) {
        *self = VersionBlock::EMPTY;
    }
}

/// Reserves `n` (>= 1) consecutive store-wide version numbers inside the
/// caller's write transaction and returns the last; the reserved numbers
/// are `last - n + 1 ..= last`. Never reused: the counter only grows and
/// is committed with the writes that use it.
fn reserve_versions(conn: &Connection, n: u64) -> duckdb::Result<i64> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE storage_meta SET value = value + ? WHERE key = 'version_counter' RETURNING value",
    )?
    .query_row([n], |r| r.get(0))
}
