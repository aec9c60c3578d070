//! The CAS tier on DuckDB tables: versioned reads, conditional puts and
//! deletes, and all-or-nothing transactions over any keys.
//!
//! Every conditional write is one DuckDB transaction on the store's KV
//! connection, which runs one operation at a time (see `backend.rs`): the
//! condition is read and the write applied inside that transaction, so the
//! check and the write are one atomic step, and the new token is returned
//! from that step. Tokens are the decimal form of the store-wide counter in
//! `storage_meta` ([`Version::from_counter`]); a presented token is parsed
//! back to that counter with [`Version::matches_counter`], and a token this
//! store could not have issued simply matches nothing (a `Conflict`, never
//! an input error or a panic). Because the counter lives in the database,
//! tokens of a file store stay valid across close and reopen.

use bytes::Bytes;
use duckdb::{params, OptionalExt};
use storage_core::table::{self, sql as q};
use storage_core::{At, Context, PutMode, PutOptions, Result, TxOp, Version, Versioned};

use crate::backend::DuckDbStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::kv::{in_write_tx, single_key_write, CHECK};

impl DuckDbStore {
    async fn cas_get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        CHECK.ns_key("get_versioned", ns, key)?;
        let now = self.now_millis();
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("get_versioned", BACKEND, ns.clone());
        self.inner
            .db
            .kv(ctx, move |conn| {
                conn.prepare_cached(q::GET_VERSIONED)
                    .and_then(|mut stmt| {
                        stmt.query_row(params![ns, key, now], |r| {
                            Ok(Versioned {
                                value: Bytes::from(r.get::<_, Vec<u8>>(0)?),
                                version: table::token(r.get(1)?),
                            })
                        })
                        .optional()
                    })
                    .map_err(|e| map_err(At::scoped("get_versioned", BACKEND, &ns), e))
            })
            .await
    }

    async fn cas_put_if(
        &self,
        ns: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        CHECK.ns_key_value("put_if", ns, key, &value)?;
        let now = self.inner.clock.now();
        let expires_at = table::expiry_millis(options.expiry, now);
        let now = table::millis(now);
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("put_if", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                single_key_write(&db, conn, now, |rows| {
                    table::put_if(rows, &ns, &key, &value, &mode, expires_at, now)
                })
                .map_err(|e| map_err(At::scoped("put_if", BACKEND, &ns), e))?
                .or_conflict("put_if", BACKEND, &ns)
                .map(table::token)
            })
            .await
    }

    async fn cas_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        CHECK.ns_key("delete_if", ns, key)?;
        let now = self.now_millis();
        let (ns, key, version) = (ns.to_owned(), key.to_vec(), version.clone());
        let ctx = Context::scoped("delete_if", BACKEND, ns.clone());
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(ctx, move |conn| {
                single_key_write(&db, conn, now, |rows| {
                    table::delete_if(rows, &ns, &key, &version, now)
                })
                .map_err(|e| map_err(At::scoped("delete_if", BACKEND, &ns), e))?
                .or_conflict("delete_if", BACKEND, &ns)
            })
            .await
    }

    async fn cas_transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        CHECK.transaction(&ops)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.inner.clock.now();
        let db = self.inner.db.clone();
        self.inner
            .db
            .kv(Context::new("transact", BACKEND), move |conn| {
                let decision = in_write_tx(&db, conn, table::millis(now), |rows| {
                    table::transact(rows, &ops, now)
                })
                .map_err(|e| map_err(At::new("transact", BACKEND), e))?;
                let ns = match &decision {
                    table::Decision::Refuse { index, .. } => table::failed_namespace(&ops, *index),
                    table::Decision::Commit(_) => "",
                };
                let versions = decision.or_conflict("transact", BACKEND, ns)?;
                Ok(versions.into_iter().map(|v| v.map(table::token)).collect())
            })
            .await
    }
}

storage_core::forward_atomic_kv!(DuckDbStore, BACKEND);
