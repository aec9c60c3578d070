//! The CAS tier of the memory backend: versioned reads, conditional puts
//! and deletes, and all-or-nothing transactions over any keys.
//!
//! Conditions are checked and writes applied under the one KV write lock
//! (see the [`kv`](crate::kv) module), which is what makes each
//! conditional write a single atomic step. Tokens are the decimal form of
//! the store-wide write counter; a presented token is parsed back to that
//! counter, and a token this store could not have issued simply matches
//! nothing (a `Conflict`, never an input error or a panic).

use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{
    AtomicKv, Condition, Context, Error, PutMode, PutOptions, Result, TxAction, TxOp, Version,
    Versioned,
};

use crate::backend::MemoryStore;
use crate::config::BACKEND;
use crate::kv::{op_span, KeyArg, Now, Slot, CHECK};

fn conflict(op: &'static str, ns: &str, current: Option<u64>, index: Option<usize>) -> Error {
    Error::Conflict {
        ctx: Context::scoped(op, BACKEND, ns),
        current: current.map(Version::from_counter),
        index,
    }
}

impl MemoryStore {
    fn cas_get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        CHECK.ns_key("get_versioned", ns, key)?;
        let mut now = Now::new(&*self.inner.clock);
        let data = self.inner.kv.read();
        Ok(data.live_slot(ns, key, &mut now).map(|slot| Versioned {
            value: slot.value.clone(),
            version: slot.token(),
        }))
    }

    fn cas_put_if(
        &self,
        ns: &str,
        key: &[u8],
        value: Bytes,
        mode: &PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        CHECK.ns_key_value("put_if", ns, key, &value)?;
        let mut now = Now::new(&*self.inner.clock);
        // The version is drawn (and its token built) before locking.
        let slot = Slot::new(
            value,
            self.inner.kv.next_version(),
            now.resolve(options.expiry),
        );
        let new_token = slot.token.clone();
        let outcome = {
            let mut data = self.inner.kv.write();
            let outcome = data.insert_if(ns, key, slot, &mut now, |current| match mode {
                PutMode::Overwrite => true,
                PutMode::Create => current.is_none(),
                PutMode::Update(expected) => expected.matches_counter(current),
            });
            if outcome.is_ok() {
                data.purge_expired(&mut now);
            }
            outcome
        };
        match outcome {
            Ok(()) => Ok(new_token),
            Err(current) => Err(conflict("put_if", ns, current, None)),
        }
    }

    fn cas_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        CHECK.ns_key("delete_if", ns, key)?;
        let mut now = Now::new(&*self.inner.clock);
        let outcome = {
            let mut data = self.inner.kv.write();
            let current = data.live_version(ns, key, &mut now);
            if version.matches_counter(current) {
                data.remove(ns, key);
                data.purge_expired(&mut now);
                Ok(())
            } else {
                Err(current)
            }
        };
        outcome.map_err(|current| conflict("delete_if", ns, current, None))
    }

    fn cas_transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        CHECK.transaction(&ops)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut now = Now::new(&*self.inner.clock);
        // Each put's version and token, reserved and built before locking.
        let puts = ops
            .iter()
            .filter(|op| matches!(op.action, TxAction::Put { .. }))
            .count();
        let mut next = self.inner.kv.reserve_versions(puts as u64);
        let reserved: Vec<Option<(u64, Version)>> = ops
            .iter()
            .map(|op| match op.action {
                TxAction::Put { .. } => {
                    let version = next;
                    next = next.wrapping_add(1);
                    Some((version, Version::from_counter(version)))
                }
                TxAction::Delete | TxAction::Check => None,
            })
            .collect();
        {
            let mut data = self.inner.kv.write();
            // Check every condition before writing anything: a failure
            // leaves the store exactly as it was.
            for (i, op) in ops.iter().enumerate() {
                let Some(condition) = &op.condition else {
                    continue;
                };
                let current = data.live_version(&op.namespace, &op.key, &mut now);
                let holds = match condition {
                    Condition::Absent => current.is_none(),
                    Condition::Exists => current.is_some(),
                    Condition::Version(expected) => expected.matches_counter(current),
                };
                if !holds {
                    drop(data);
                    return Err(conflict("transact", &op.namespace, current, Some(i)));
                }
            }
            for (op, put) in ops.into_iter().zip(&reserved) {
                let TxOp {
                    namespace,
                    key,
                    action,
                    ..
                } = op;
                match (action, put) {
                    (TxAction::Put { value, options }, Some((version, tok))) => {
                        let slot = Slot {
                            value,
                            version: *version,
                            token: tok.clone(),
                            expires_at: now.resolve(options.expiry),
                        };
                        data.insert(&namespace, KeyArg::Owned(key), slot);
                    }
                    (TxAction::Delete, _) => {
                        data.remove(&namespace, &key);
                    }
                    // A check writes nothing (and every put has a token).
                    _ => {}
                }
            }
            data.purge_expired(&mut now);
        }
        Ok(reserved
            .into_iter()
            .map(|put| put.map(|(_, tok)| tok))
            .collect())
    }
}

#[async_trait]
impl AtomicKv for MemoryStore {
    async fn get_versioned(&self, namespace: &str, key: &[u8]) -> Result<Option<Versioned>> {
        op_span!("get_versioned", namespace).in_scope(|| self.cas_get_versioned(namespace, key))
    }

    async fn put_if(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        op_span!("put_if", namespace)
            .in_scope(|| self.cas_put_if(namespace, key, value, &mode, options))
    }

    async fn delete_if(&self, namespace: &str, key: &[u8], version: &Version) -> Result<()> {
        op_span!("delete_if", namespace).in_scope(|| self.cas_delete_if(namespace, key, version))
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        op_span!("transact").in_scope(|| self.cas_transact(ops))
    }
}
