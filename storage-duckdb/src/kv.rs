//! The KV tier on DuckDB tables, and the statements the CAS tier shares.
//!
//! # Design
//!
//! - **One row per entry** in `storage_kv` (see [`schema`](crate::schema)),
//!   one row per `(ns, key)` (kept by the KV tier, not by an index — see
//!   the schema docs for why). Keys are bound as BLOBs, and DuckDB compares
//!   BLOBs as unsigned bytes (`memcmp`, shorter prefix first), which is
//!   exactly the KV tier's key order: a scan is `WHERE ns = ? AND key > ?
//!   ... ORDER BY key LIMIT ?` (a top-N over the namespace's rows). A unit
//!   test below checks that order against DuckDB itself.
//! - **Cost**: DuckDB is a columnar engine and its planner answers these
//!   filters with a sequential scan pruned by zone maps, not an index
//!   lookup, so a point read or write costs a fraction of a millisecond
//!   to a few milliseconds depending on how many rows `storage_kv` holds
//!   (measured about 0.3–2 ms at 200 000 rows). That suits the metadata an
//!   emulator whose query engine is DuckDB wants to keep next to its
//!   tables; for large, hot key-value data pick `storage-sqlite`,
//!   `storage-redis` or `storage-memory`.
//! - **Every statement is prepared once and cached** per connection
//!   (`prepare_cached`), with namespaces, keys, values and times bound as
//!   parameters — never spliced into the SQL text. The scan statement has
//!   one text per (direction, lower bound kind, upper bound kind); all 18
//!   are built once.
//! - **Reads and writes** run on the store's KV connection, one operation
//!   at a time (see `backend.rs`), so a condition and the write it guards
//!   cannot be separated. A write on one key changes at most one row with
//!   one statement, which commits by itself ([`single_key_write`]); a
//!   batch, a transaction or a namespace drop is one DuckDB transaction,
//!   all or nothing.
//! - **Versions** come from the store-wide counter in `storage_meta`
//!   ([`schema`](crate::schema)), reserved in blocks of 1024 inside the
//!   write transaction that first needs one and handed out from memory
//!   after that: never reused, not even after delete and recreate or a
//!   reopen. Every write issues a new one, plain `put` included. So a
//!   plain put is one `UPDATE` (DuckDB statements cost 0.1–1 ms each here,
//!   the counter update was one of two), and a CAS update is one
//!   conditional `UPDATE` that reads the live version back only when it
//!   is refused.
//! - **Expiry**: `now` is read once per call from the store's clock and
//!   bound as a parameter; a row with `expires_at <= now` is absent to
//!   every read, scan, listing and condition. Every 64th write transaction
//!   also deletes the rows that have expired, so TTL'd data nobody touches
//!   again does not stay in the file forever.
//! - Instants are stored as signed 64-bit milliseconds; an expiry beyond
//!   `i64::MAX` ms (about 292 million years) is stored as `i64::MAX`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use duckdb::{params, Connection, OptionalExt, ToSql};
use storage_core::table::{self, sql as q, Decision, PageBuilder, TableTx};
use storage_core::validate::Validator;
use storage_core::{At, BatchOp, Context, PutOptions, Result, ScanPage, ScanRequest};

use crate::backend::{Db, DuckDbStore};
use crate::config::{BACKEND, CAPABILITIES};
use crate::error::map_err;
use crate::schema::VersionBlock;

/// Input rules shared with every other backend.
pub(crate) const CHECK: Validator = Validator::new(BACKEND, CAPABILITIES);

/// Every this-many KV write transactions, one also deletes expired rows.
pub(crate) const PURGE_EVERY: u64 = 64;

/// Replaces the row (live or expired) at a key, if there is one.
/// Parameters: value, version, expires_at, ns, key.
const SQL_UPDATE: &str = "UPDATE storage_kv SET value = ?, version = ?, expires_at = ? \
     WHERE ns = ? AND key = ?";

/// Adds the row of a key that has none.
const SQL_INSERT: &str =
    "INSERT INTO storage_kv (ns, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)";

/// Deletes every expired row.
const SQL_PURGE: &str = "DELETE FROM storage_kv WHERE expires_at IS NOT NULL AND expires_at <= ?";

/// `storage_kv` inside one open write transaction, for the decision
/// functions of [`storage_core::table`].
pub(crate) struct Rows<'c> {
    pub(crate) conn: &'c Connection,
    /// Where new versions come from.
    pub(crate) versions: &'c mut VersionBlock,
}

impl TableTx for Rows<'_> {
    type Error = duckdb::Error;

    fn live_version(&mut self, ns: &str, key: &[u8], now: i64) -> duckdb::Result<Option<i64>> {
        self.conn
            .prepare_cached(q::LIVE_VERSION)?
            .query_row(params![ns, key, now], |r| r.get(0))
            .optional()
    }

    /// From the block in memory; the counter is updated once a block.
    fn reserve_versions(&mut self, n: u64) -> duckdb::Result<i64> {
        self.versions.take(self.conn, n)
    }

    fn replace_at_version(
        &mut self,
        ns: &str,
        key: &[u8],
        expected: i64,
        now: i64,
        value: &[u8],
        version: i64,
        expires_at: Option<i64>,
    ) -> duckdb::Result<bool> {
        let changed = self
            .conn
            .prepare_cached(q::REPLACE_AT_VERSION)?
            .execute(params![value, version, expires_at, ns, key, expected, now])?;
        Ok(changed > 0)
    }

    /// Updated in place when the key has a row, inserted otherwise (the
    /// tables have no unique index, see [`schema`](crate::schema); the KV
    /// connection's serialised write transactions keep one row per key).
    fn upsert(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        version: i64,
        expires_at: Option<i64>,
    ) -> duckdb::Result<()> {
        let updated = self
            .conn
            .prepare_cached(SQL_UPDATE)?
            .execute(params![value, version, expires_at, ns, key])?;
        if updated == 0 {
            self.conn
                .prepare_cached(SQL_INSERT)?
                .execute(params![ns, key, value, version, expires_at])?;
        }
        Ok(())
    }

    fn remove(&mut self, ns: &str, key: &[u8], now: i64) -> duckdb::Result<bool> {
        let mut stmt = self.conn.prepare_cached(q::DELETE)?;
        let mut rows = stmt.query(params![ns, key])?;
        let mut live = false;
        while let Some(row) = rows.next()? {
            let expires_at: Option<i64> = row.get(0)?;
            live |= expires_at.is_none_or(|at| at > now);
        }
        Ok(live)
    }
}

/// Deletes every expired row on every [`PURGE_EVERY`]th KV write: inside
/// a write transaction before it commits, or after a single-key write.
fn purge_expired(db: &Db, conn: &Connection, now: i64) -> duckdb::Result<()> {
    if db.kv_writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
        conn.prepare_cached(SQL_PURGE)?.execute([now])?;
    }
    Ok(())
}

/// Runs `decide` in one DuckDB transaction on the KV connection, which
/// runs one operation at a time (see `backend.rs`), so its conditions and
/// writes are one step. Commits (after the periodic purge) on
/// [`Decision::Commit`]; a refusal rolls back.
pub(crate) fn in_write_tx<T>(
    db: &Db,
    conn: &mut Connection,
    now: i64,
    decide: impl FnOnce(&mut Rows<'_>) -> duckdb::Result<Decision<T>>,
) -> duckdb::Result<Decision<T>> {
    let mut versions = db.versions.lock();
    let run = |versions: &mut VersionBlock| {
        let tx = conn.transaction()?;
        let decision = decide(&mut Rows {
            conn: &tx,
            versions,
        })?;
        let commit = matches!(decision, Decision::Commit(_));
        if commit {
            purge_expired(db, &tx, now)?;
            tx.commit()?;
        }
        // Dropping an uncommitted transaction rolls it back.
        Ok((decision, commit))
    };
    match run(&mut versions) {
        Ok((decision, true)) => {
            versions.committed();
            Ok(decision)
        }
        other => {
            versions.rolled_back();
            other.map(|(decision, _)| decision)
        }
    }
}

/// Runs a write on one key without an explicit transaction. Its effect is
/// at most one statement (an `UPDATE`; the `INSERT` after an `UPDATE`
/// that matched no row; or one `DELETE`), which commits by itself, and
/// what it reads first cannot change in between: the KV connection runs
/// one operation at a time and is the only writer of `storage_kv` (see
/// `backend.rs`). A refusal has written nothing. A version block reserved
/// on the way was committed by its own statement. This saves the
/// `BEGIN` and `COMMIT` statements, each a parse and a plan in DuckDB.
pub(crate) fn single_key_write<T>(
    db: &Db,
    conn: &Connection,
    now: i64,
    decide: impl FnOnce(&mut Rows<'_>) -> duckdb::Result<Decision<T>>,
) -> duckdb::Result<Decision<T>> {
    let mut versions = db.versions.lock();
    let decision = decide(&mut Rows {
        conn,
        versions: &mut versions,
    });
    versions.committed();
    drop(versions);
    let decision = decision?;
    if matches!(decision, Decision::Commit(_)) {
        purge_expired(db, conn, now)?;
    }
    Ok(decision)
}

fn read_page(
    conn: &Connection,
    ns: &str,
    request: &ScanRequest,
    now: i64,
) -> duckdb::Result<ScanPage> {
    let Some(scan) = table::scan_sql(request) else {
        return Ok(ScanPage::default());
    };
    let (lower, upper) = (scan.lower.as_deref(), scan.upper.as_deref());
    let mut args: Vec<&dyn ToSql> = Vec::with_capacity(5);
    args.push(&ns);
    if let Some(k) = &lower {
        args.push(k);
    }
    if let Some(k) = &upper {
        args.push(k);
    }
    args.push(&now);
    args.push(&scan.fetch);
    let mut stmt = conn.prepare_cached(scan.sql)?;
    let mut rows = stmt.query(&args[..])?;
    let mut page = PageBuilder::new(request.limit);
    while let Some(row) = rows.next()? {
        if !page.push(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?) {
            break;
        }
    }
    Ok(page.finish())
}

impl DuckDbStore {
    /// The store clock's "now", as stored.
    pub(crate) fn now_millis(&self) -> i64 {
        table::millis(self.inner.clock.now())
    }

    async fn kv_get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        CHECK.ns_key("get", ns, key)?;
        let now = self.now_millis();
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("get", BACKEND, ns.clone());
        self.inner
            .db
            .kv(ctx, move |conn| {
                conn.prepare_cached(q::GET)
                    .and_then(|mut s| {
                        s.query_row(params![ns, key, now], |r| r.get::<_, Vec<u8>>(0))
                            .optional()
                    })
                    .map(|v| v.map(Bytes::from))
                    .map_err(|e| map_err(At::scoped("get", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_put(&self, ns: &str, key: &[u8], value: Bytes, options: PutOptions) -> Result<()> {
        CHECK.ns_key_value("put", ns, key, &value)?;
        let now = self.inner.clock.now();
        let expires_at = table::expiry_millis(options.expiry, now);
        let now = table::millis(now);
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("put", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                single_key_write(&db, conn, now, |rows| {
                    table::put(rows, &ns, &key, &value, expires_at).map(Decision::Commit)
                })
                .map(|_| ())
                .map_err(|e| map_err(At::scoped("put", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        CHECK.ns_key("delete", ns, key)?;
        let now = self.now_millis();
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("delete", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                single_key_write(&db, conn, now, |rows| {
                    rows.remove(&ns, &key, now).map(Decision::Commit)
                })
                .map(|d| matches!(d, Decision::Commit(true)))
                .map_err(|e| map_err(At::scoped("delete", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        CHECK.keys("get_many", ns, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_millis();
        let (ns, keys) = (ns.to_owned(), keys.to_vec());
        let ctx = Context::scoped("get_many", BACKEND, ns.clone());
        self.inner
            .db
            .kv(ctx, move |conn| {
                let mut run = || -> duckdb::Result<Vec<Option<Bytes>>> {
                    // One transaction: every key is read from one snapshot.
                    let tx = conn.transaction()?;
                    let mut out = Vec::with_capacity(keys.len());
                    {
                        let mut stmt = tx.prepare_cached(q::GET)?;
                        for key in &keys {
                            let value = stmt
                                .query_row(params![ns, &key[..], now], |r| r.get::<_, Vec<u8>>(0))
                                .optional()?;
                            out.push(value.map(Bytes::from));
                        }
                    }
                    tx.commit()?;
                    Ok(out)
                };
                run().map_err(|e| map_err(At::scoped("get_many", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_write_batch(&self, ns: &str, ops: Vec<BatchOp>) -> Result<()> {
        CHECK.batch("write_batch", ns, &ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let now = self.inner.clock.now();
        let ns = ns.to_owned();
        let ctx = Context::scoped("write_batch", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                in_write_tx(&db, conn, table::millis(now), |rows| {
                    table::write_batch(rows, &ns, &ops, now).map(Decision::Commit)
                })
                .map(|_| ())
                .map_err(|e| map_err(At::scoped("write_batch", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_scan(&self, ns: &str, request: ScanRequest) -> Result<ScanPage> {
        CHECK.namespace("scan", ns)?;
        request.validate(At::scoped("scan", BACKEND, ns), &CAPABILITIES)?;
        if request.effective_range().is_none() {
            return Ok(ScanPage::default());
        }
        let now = self.now_millis();
        let ns = ns.to_owned();
        let ctx = Context::scoped("scan", BACKEND, ns.clone());
        self.inner
            .db
            .kv(ctx, move |conn| {
                read_page(conn, &ns, &request, now)
                    .map_err(|e| map_err(At::scoped("scan", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_list_namespaces(&self) -> Result<Vec<String>> {
        let now = self.now_millis();
        self.inner
            .db
            .kv(Context::new("list_namespaces", BACKEND), move |conn| {
                let run = || -> duckdb::Result<Vec<String>> {
                    let mut stmt = conn.prepare_cached(q::LIST_NS)?;
                    let names = stmt.query_map([now], |r| r.get::<_, String>(0))?;
                    names.collect()
                };
                run().map_err(|e| map_err(At::new("list_namespaces", BACKEND), e))
            })
            .await
    }

    async fn kv_drop_namespace(&self, ns: &str) -> Result<bool> {
        CHECK.namespace("drop_namespace", ns)?;
        let now = self.now_millis();
        let ns = ns.to_owned();
        let ctx = Context::scoped("drop_namespace", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                in_write_tx(&db, conn, now, |rows| {
                    let held: bool = rows
                        .conn
                        .prepare_cached(q::NS_LIVE)?
                        .query_row(params![ns, now], |r| r.get(0))?;
                    rows.conn.prepare_cached(q::DROP_NS)?.execute([&ns])?;
                    Ok(Decision::Commit(held))
                })
                .map(|d| matches!(d, Decision::Commit(true)))
                .map_err(|e| map_err(At::scoped("drop_namespace", BACKEND, &ns), e))
            })
            .await
    }
}

storage_core::forward_kv_store!(DuckDbStore, BACKEND, |_s| CAPABILITIES);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn every_statement_prepares_against_the_schema() {
        let conn = conn();
        for sql in table::scan_statements().chain([
            q::GET,
            q::GET_VERSIONED,
            q::LIVE_VERSION,
            q::REPLACE_AT_VERSION,
            SQL_UPDATE,
            SQL_INSERT,
            q::DELETE,
            q::NS_LIVE,
            q::DROP_NS,
            q::LIST_NS,
            SQL_PURGE,
        ]) {
            conn.prepare(sql).unwrap();
        }
    }

    #[test]
    fn bytes_sort_unsigned_with_shorter_prefixes_first() {
        let conn = conn();
        let keys: [&[u8]; 6] = [b"\xff", b"\x80", b"\x7f", b"a", b"\x00\x00", b"\x00"];
        for (i, k) in keys.iter().enumerate() {
            let mut versions = VersionBlock::EMPTY;
            let mut rows = Rows {
                conn: &conn,
                versions: &mut versions,
            };
            rows.upsert("n", k, b"", i as i64, None).unwrap();
        }
        let page = read_page(&conn, "n", &ScanRequest::all(), 0).unwrap();
        let got: Vec<&[u8]> = page.entries.iter().map(|e| &e.key[..]).collect();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(got, want);
    }
}
