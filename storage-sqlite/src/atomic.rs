//! The CAS tier on SQLite: versioned reads, conditional puts and deletes,
//! and all-or-nothing transactions over any keys.
//!
//! Every conditional write is one `BEGIN IMMEDIATE` transaction on the
//! writer connection: the write lock is taken before the condition is
//! read, so the check and the write are one atomic step across every
//! connection and process on the file, and the new token is returned from
//! that step. Tokens are the decimal form of the store-wide counter in
//! `storage_meta`; a presented token is parsed back to that counter, and a
//! token this store could not have issued simply matches nothing (a
//! `Conflict`, never an input error or a panic). Because the counter lives
//! in the file, tokens stay valid across close and reopen.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, OptionalExtension};
use storage_core::{
    At, AtomicKv, Condition, Context, Error, PutMode, PutOptions, Result, TxAction, TxOp, Version,
    Versioned,
};
use tracing::Instrument;

use crate::backend::SqliteStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::kv::{
    expiry_millis, immediate, live_version, millis, op_span, purge_expired, remove, token, upsert,
    CHECK, SQL_GET_VERSIONED,
};
use crate::schema::next_version;

/// Whether the current version (`None` = absent or expired) matches a
/// presented token (SQLite stores the counter as a non-negative i64).
fn matches_token(current: Option<i64>, expected: &Version) -> bool {
    expected.matches_counter(current.and_then(|c| u64::try_from(c).ok()))
}

fn conflict(op: &'static str, ns: &str, current: Option<i64>, index: Option<usize>) -> Error {
    Error::Conflict {
        ctx: Context::scoped(op, BACKEND, ns),
        current: current.map(token),
        index,
    }
}

/// What a write transaction decided: committed with a result, or refused
/// (rolled back) because a condition failed.
enum Outcome<T> {
    Done(T),
    /// The index of the failed operation (transactions) and the key's
    /// current version.
    Refused(Option<usize>, Option<i64>),
}

impl SqliteStore {
    async fn cas_get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        CHECK.ns_key("get_versioned", ns, key)?;
        let now = self.now_millis();
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("get_versioned", BACKEND, ns.clone());
        self.inner
            .db
            .read(ctx, move |conn| {
                let run = || -> rusqlite::Result<Option<Versioned>> {
                    let row = conn
                        .prepare_cached(SQL_GET_VERSIONED)?
                        .query_row(params![ns, key, now], |r| {
                            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                        })
                        .optional()?;
                    Ok(row.map(|(value, version)| Versioned {
                        value: value.into(),
                        version: token(version),
                    }))
                };
                run().map_err(|e| map_err(At::scoped("get_versioned", BACKEND, &ns), e))
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
        let expires_at = expiry_millis(options.expiry, now);
        let now = millis(now);
        let (ns, key) = (ns.to_owned(), key.to_vec());
        let ctx = Context::scoped("put_if", BACKEND, ns.clone());
        self.inner
            .db
            .write(ctx, move |conn| {
                let mut run = || -> rusqlite::Result<Outcome<i64>> {
                    let tx = immediate(conn)?;
                    let current = live_version(&tx, &ns, &key, now)?;
                    let allowed = match &mode {
                        PutMode::Overwrite => true,
                        PutMode::Create => current.is_none(),
                        PutMode::Update(expected) => matches_token(current, expected),
                    };
                    if !allowed {
                        // Dropping the transaction rolls it back.
                        return Ok(Outcome::Refused(None, current));
                    }
                    let version = next_version(&tx)?;
                    upsert(&tx, &ns, &key, &value, version, expires_at)?;
                    purge_expired(&tx, now)?;
                    tx.commit()?;
                    Ok(Outcome::Done(version))
                };
                match run() {
                    Ok(Outcome::Done(version)) => Ok(token(version)),
                    Ok(Outcome::Refused(_, current)) => Err(conflict("put_if", &ns, current, None)),
                    Err(e) => Err(map_err(At::scoped("put_if", BACKEND, &ns), e)),
                }
            })
            .await
    }

    async fn cas_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        CHECK.ns_key("delete_if", ns, key)?;
        let now = self.now_millis();
        let (ns, key, version) = (ns.to_owned(), key.to_vec(), version.clone());
        let ctx = Context::scoped("delete_if", BACKEND, ns.clone());
        self.inner
            .db
            .write(ctx, move |conn| {
                let mut run = || -> rusqlite::Result<Outcome<()>> {
                    let tx = immediate(conn)?;
                    let current = live_version(&tx, &ns, &key, now)?;
                    if !matches_token(current, &version) {
                        return Ok(Outcome::Refused(None, current));
                    }
                    remove(&tx, &ns, &key, now)?;
                    purge_expired(&tx, now)?;
                    tx.commit()?;
                    Ok(Outcome::Done(()))
                };
                match run() {
                    Ok(Outcome::Done(())) => Ok(()),
                    Ok(Outcome::Refused(_, current)) => {
                        Err(conflict("delete_if", &ns, current, None))
                    }
                    Err(e) => Err(map_err(At::scoped("delete_if", BACKEND, &ns), e)),
                }
            })
            .await
    }

    async fn cas_transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        CHECK.transaction(&ops)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.inner.clock.now();
        self.inner
            .db
            .write(Context::new("transact", BACKEND), move |conn| {
                let now_ms = millis(now);
                let mut run = || -> rusqlite::Result<Outcome<Vec<Option<i64>>>> {
                    let tx = immediate(conn)?;
                    // Check every condition before writing anything: a
                    // failure rolls back a transaction that wrote nothing.
                    for (i, op) in ops.iter().enumerate() {
                        let Some(condition) = &op.condition else {
                            continue;
                        };
                        let current = live_version(&tx, &op.namespace, &op.key, now_ms)?;
                        let holds = match condition {
                            Condition::Absent => current.is_none(),
                            Condition::Exists => current.is_some(),
                            Condition::Version(expected) => matches_token(current, expected),
                        };
                        if !holds {
                            return Ok(Outcome::Refused(Some(i), current));
                        }
                    }
                    let mut versions = Vec::with_capacity(ops.len());
                    for op in &ops {
                        match &op.action {
                            TxAction::Put { value, options } => {
                                let version = next_version(&tx)?;
                                let expires_at = expiry_millis(options.expiry, now);
                                upsert(&tx, &op.namespace, &op.key, value, version, expires_at)?;
                                versions.push(Some(version));
                            }
                            TxAction::Delete => {
                                remove(&tx, &op.namespace, &op.key, now_ms)?;
                                versions.push(None);
                            }
                            TxAction::Check => versions.push(None),
                        }
                    }
                    purge_expired(&tx, now_ms)?;
                    tx.commit()?;
                    Ok(Outcome::Done(versions))
                };
                match run() {
                    Ok(Outcome::Done(versions)) => {
                        Ok(versions.into_iter().map(|v| v.map(token)).collect())
                    }
                    Ok(Outcome::Refused(index, current)) => {
                        let ns = index
                            .and_then(|i| ops.get(i))
                            .map_or("", |op| op.namespace.as_str());
                        Err(conflict("transact", ns, current, index))
                    }
                    Err(e) => Err(map_err(At::new("transact", BACKEND), e)),
                }
            })
            .await
    }
}

#[async_trait]
impl AtomicKv for SqliteStore {
    async fn get_versioned(&self, namespace: &str, key: &[u8]) -> Result<Option<Versioned>> {
        self.cas_get_versioned(namespace, key)
            .instrument(op_span!("get_versioned", namespace))
            .await
    }

    async fn put_if(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        self.cas_put_if(namespace, key, value, mode, options)
            .instrument(op_span!("put_if", namespace))
            .await
    }

    async fn delete_if(&self, namespace: &str, key: &[u8], version: &Version) -> Result<()> {
        self.cas_delete_if(namespace, key, version)
            .instrument(op_span!("delete_if", namespace))
            .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        self.cas_transact(ops)
            .instrument(op_span!("transact"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_counters_match_their_tokens_only() {
        assert!(!matches_token(None, &Version::new("1")));
        assert!(!matches_token(Some(-1), &Version::new("1")));
        assert!(matches_token(Some(5), &Version::new("5")));
        assert!(!matches_token(Some(5), &Version::new("05")));
    }
}
