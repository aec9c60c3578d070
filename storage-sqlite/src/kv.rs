//! The KV tier on SQLite, and the statements the CAS tier shares.
//!
//! # Design
//!
//! - **One row per entry** in `storage_kv` (see [`schema`](crate::schema)):
//!   `(ns, key)` is the primary key of a `WITHOUT ROWID` table, so the rows
//!   are stored in `(ns, key)` order. Keys are bound as BLOBs and SQLite
//!   compares BLOBs with `memcmp`, which is exactly unsigned byte order:
//!   a scan is one `SEARCH` of the primary key (`ns = ? AND key > ? ...
//!   ORDER BY key LIMIT ?`), and a page costs the same in a namespace of a
//!   hundred keys as in one of a hundred million.
//! - **Every statement is prepared once and cached** per connection
//!   (`prepare_cached`), with namespaces, keys, values and times bound as
//!   parameters — never spliced into the SQL text. The scan statement has
//!   one text per (direction, lower bound kind, upper bound kind); all are
//!   built once ([`scan_statements`]).
//! - **Reads** (get, get-many, scan, list) run on a reader connection (WAL
//!   lets them run beside the writer) and never modify anything. **Writes**
//!   run on the writer connection, each in one `BEGIN IMMEDIATE`
//!   transaction: the write lock is held from before the first read, so a
//!   condition and the write it guards cannot be separated by another
//!   connection or process.
//! - **Versions** come from the store-wide counter in `storage_meta`
//!   ([`schema::reserve_versions`](crate::schema)), reserved inside the write
//!   transaction: unique across every connection and process on the file,
//!   never reused (not even after delete and recreate). Every write issues
//!   a new one, plain `put` included.
//! - **Expiry**: `now` is read once per call from the store's clock and
//!   bound as a parameter; a row with `expires_at <= now` is absent to
//!   every read, scan, listing and condition. Write transactions also
//!   delete a bounded number ([`PURGE_BUDGET`]) of expired rows through the
//!   `storage_kv_expiry` index, so TTL'd data nobody touches again does not
//!   stay on disk forever. Read connections never delete.
//! - Instants are stored as signed 64-bit milliseconds; an expiry beyond
//!   `i64::MAX` ms (about 292 million years) is stored as `i64::MAX`.

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, ToSql, TransactionBehavior};
use storage_core::table::{self, sql as q, Decision, PageBuilder, TableTx};
use storage_core::validate::Validator;
use storage_core::{At, BatchOp, Context, PutOptions, Result, ScanPage, ScanRequest};

use crate::backend::SqliteStore;
use crate::config::{BACKEND, CAPABILITIES};
use crate::error::map_err;

/// Most expired rows one write transaction deletes, so a write after a
/// long idle period does not pay for the whole backlog at once.
pub(crate) const PURGE_BUDGET: i64 = 64;

/// Stores a row, replacing any row at its key (live or expired).
const SQL_UPSERT: &str = "INSERT INTO storage_kv (ns, key, value, version, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (ns, key) DO UPDATE SET \
     value = excluded.value, version = excluded.version, expires_at = excluded.expires_at";

/// Deletes up to `?2` expired rows, oldest expiry first, through the
/// `storage_kv_expiry` index.
const SQL_PURGE: &str = "DELETE FROM storage_kv WHERE (ns, key) IN \
     (SELECT ns, key FROM storage_kv \
      WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
      ORDER BY expires_at LIMIT ?2)";

/// The texts of every statement a scan may run (one per direction and
/// bound kinds), so tests and operators can `EXPLAIN QUERY PLAN` them.
/// Parameters, in order: namespace, the lower bound key (if the text has
/// one), the upper bound key (if it has one), now (ms), limit.
#[doc(hidden)]
pub fn scan_statements() -> Vec<&'static str> {
    table::scan_statements().collect()
}

/// This backend's input rules (shared with every adapter, in
/// `storage_core::validate`).
pub(crate) const CHECK: Validator = Validator::new(BACKEND, CAPABILITIES);

/// `storage_kv` inside one open write transaction, for the decision
/// functions of [`storage_core::table`].
pub(crate) struct Rows<'c>(pub(crate) &'c Connection);

impl TableTx for Rows<'_> {
    type Error = rusqlite::Error;

    fn live_version(&mut self, ns: &str, key: &[u8], now: i64) -> rusqlite::Result<Option<i64>> {
        self.0
            .prepare_cached(q::LIVE_VERSION)?
            .query_row(params![ns, key, now], |r| r.get(0))
            .optional()
    }

    fn reserve_versions(&mut self, n: u64) -> rusqlite::Result<i64> {
        crate::schema::reserve_versions(self.0, n)
    }

    fn upsert(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        version: i64,
        expires_at: Option<i64>,
    ) -> rusqlite::Result<()> {
        self.0
            .prepare_cached(SQL_UPSERT)?
            .execute(params![ns, key, value, version, expires_at])?;
        Ok(())
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
    ) -> rusqlite::Result<bool> {
        let changed = self
            .0
            .prepare_cached(q::REPLACE_AT_VERSION)?
            .execute(params![value, version, expires_at, ns, key, expected, now])?;
        Ok(changed > 0)
    }

    fn remove(&mut self, ns: &str, key: &[u8], now: i64) -> rusqlite::Result<bool> {
        let removed: Option<Option<i64>> = self
            .0
            .prepare_cached(q::DELETE)?
            .query_row(params![ns, key], |r| r.get(0))
            .optional()?;
        Ok(matches!(removed, Some(None)) || matches!(removed, Some(Some(at)) if at > now))
    }
}

/// Deletes up to [`PURGE_BUDGET`] expired rows. Only inside write
/// transactions.
pub(crate) fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(SQL_PURGE)?
        .execute(params![now, PURGE_BUDGET])?;
    Ok(())
}

/// Opens the `BEGIN IMMEDIATE` transaction every write runs in.
pub(crate) fn immediate(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Runs `decide` in one `BEGIN IMMEDIATE` transaction: the write lock is
/// held from before the first read, so its conditions and writes are one
/// step for every connection and process on the file. Commits (after a
/// bounded purge) on [`Decision::Commit`]; a refusal rolls back.
pub(crate) fn in_write_tx<T>(
    conn: &mut Connection,
    now: i64,
    decide: impl FnOnce(&mut Rows<'_>) -> rusqlite::Result<Decision<T>>,
) -> rusqlite::Result<Decision<T>> {
    let tx = immediate(conn)?;
    let decision = decide(&mut Rows(&tx))?;
    if matches!(decision, Decision::Commit(_)) {
        purge_expired(&tx, now)?;
        tx.commit()?;
    }
    // Dropping an uncommitted transaction rolls it back.
    Ok(decision)
}

fn read_page(
    conn: &Connection,
    ns: &str,
    request: &ScanRequest,
    now: i64,
) -> rusqlite::Result<ScanPage> {
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

impl SqliteStore {
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
            .read(ctx, move |conn| {
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
        self.inner
            .db
            .write(ctx, move |conn| {
                in_write_tx(conn, now, |rows| {
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
        self.inner
            .db
            .write(ctx, move |conn| {
                in_write_tx(conn, now, |rows| {
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
            .read(ctx, move |conn| {
                let run = || -> rusqlite::Result<Vec<Option<Bytes>>> {
                    // One read transaction: every key is read from the same
                    // snapshot.
                    let tx = conn.unchecked_transaction()?;
                    let mut stmt = tx.prepare_cached(q::GET)?;
                    let mut out = Vec::with_capacity(keys.len());
                    for key in &keys {
                        let value = stmt
                            .query_row(params![ns, &key[..], now], |r| r.get::<_, Vec<u8>>(0))
                            .optional()?;
                        out.push(value.map(Bytes::from));
                    }
                    drop(stmt);
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
        self.inner
            .db
            .write(ctx, move |conn| {
                in_write_tx(conn, table::millis(now), |rows| {
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
            .read(ctx, move |conn| {
                read_page(conn, &ns, &request, now)
                    .map_err(|e| map_err(At::scoped("scan", BACKEND, &ns), e))
            })
            .await
    }

    async fn kv_list_namespaces(&self) -> Result<Vec<String>> {
        let now = self.now_millis();
        self.inner
            .db
            .read(Context::new("list_namespaces", BACKEND), move |conn| {
                let run = || -> rusqlite::Result<Vec<String>> {
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
        self.inner
            .db
            .write(ctx, move |conn| {
                in_write_tx(conn, now, |rows| {
                    let held: bool = rows
                        .0
                        .prepare_cached(q::NS_LIVE)?
                        .query_row(params![ns, now], |r| r.get(0))?;
                    rows.0.prepare_cached(q::DROP_NS)?.execute([&ns])?;
                    Ok(Decision::Commit(held))
                })
                .map(|d| matches!(d, Decision::Commit(true)))
                .map_err(|e| map_err(At::scoped("drop_namespace", BACKEND, &ns), e))
            })
            .await
    }
}

storage_core::forward_kv_store!(SqliteStore, BACKEND, |_s| CAPABILITIES);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn plan(conn: &Connection, sql: &str, n_params: usize) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls: Vec<rusqlite::types::Null> = vec![rusqlite::types::Null; n_params];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(nulls.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
    }

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn every_scan_statement_searches_the_primary_key_in_order() {
        let conn = conn();
        assert_eq!(scan_statements().len(), 18);
        for sql in scan_statements() {
            let n = sql.matches('?').count();
            let p = plan(&conn, sql, n);
            assert!(
                p.contains("SEARCH storage_kv USING PRIMARY KEY"),
                "{sql}: {p}"
            );
            assert!(!p.contains("TEMP B-TREE"), "{sql} sorts: {p}");
        }
    }

    #[test]
    fn point_statements_search_the_primary_key_and_purge_uses_the_expiry_index() {
        let conn = conn();
        for (sql, n) in [
            (q::GET, 3),
            (q::GET_VERSIONED, 3),
            (q::LIVE_VERSION, 3),
            (q::REPLACE_AT_VERSION, 7),
            (q::DELETE, 2),
            (q::NS_LIVE, 2),
            (q::DROP_NS, 1),
        ] {
            let p = plan(&conn, sql, n);
            assert!(p.contains("USING PRIMARY KEY"), "{sql}: {p}");
        }
        let p = plan(&conn, SQL_PURGE, 2);
        assert!(p.contains("storage_kv_expiry"), "{p}");
        assert!(p.contains("USING PRIMARY KEY"), "{p}");
    }
}
