//! The CAS tier on Redis: versioned reads, conditional puts and deletes,
//! and all-or-nothing transactions.
//!
//! Each conditional write is one Lua script that checks the condition and
//! writes (Redis runs a script without interleaving any other command);
//! the new token is the version the client put in the record it sent, so
//! it comes from that step. Tokens are decimal numbers from blocks
//! reserved from the namespace counter (`INCRBY {..}:c 1024`, see
//! `versions.rs`; never deleted, so never reused).
//! A presented token is parsed back to its canonical counter client-side;
//! a token this store could not have issued is sent as "" and matches
//! nothing (a `Conflict`, never an input error).
//!
//! A versioned read is one `HGET` of the key's record (version, expiry and
//! value in one hash field), judged against the store clock client-side,
//! like `get`.
//!
//! A transaction is one script over four keys per distinct namespace (plus
//! the namespace registry on a standalone server): it checks every
//! condition first and writes only if all hold.

use std::collections::HashMap;

use bytes::Bytes;
use storage_core::{
    At, Condition, Context, Error, PutMode, PutOptions, Result, TxAction, TxOp, Version, Versioned,
};

use crate::backend::RedisStore;
use crate::config::BACKEND;
use crate::kv::{expected, expiry_arg, malformed, token, with_keys, PutOutcome, Record};
use crate::scripts;

fn conflict(op: &'static str, ns: &str, current: Option<Version>, index: Option<usize>) -> Error {
    Error::Conflict {
        ctx: Context::scoped(op, BACKEND, ns),
        current,
        index,
    }
}

/// The current version in a refusal reply (nil: absent).
fn current(v: &Option<Vec<u8>>, op: &'static str, ns: &str) -> Result<Option<Version>> {
    match v {
        Some(b) => token(b)
            .map(Some)
            .ok_or_else(|| malformed(At::scoped(op, BACKEND, ns))),
        None => Ok(None),
    }
}

impl RedisStore {
    async fn cas_get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        self.check().ns_key("get_versioned", ns, key)?;
        Ok(self
            .read_one("get_versioned", ns, key)
            .await?
            .map(|r| Versioned {
                value: r.value,
                version: Version::from_counter(r.version),
            }))
    }

    async fn cas_put_if(
        &self,
        ns: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        const OP: &str = "put_if";
        self.check().ns_key_value(OP, ns, key, &value)?;
        self.check_ttl(OP, options.expiry)?;
        match self
            .put_record(OP, ns, key, &value, options.expiry, &mode)
            .await?
        {
            PutOutcome::Written(version) => Ok(version),
            PutOutcome::Refused(cur) => Err(conflict(OP, ns, cur, None)),
        }
    }

    async fn cas_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        const OP: &str = "delete_if";
        self.check().ns_key(OP, ns, key)?;
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::DELETE.prepare_invoke();
        with_keys(&mut inv, &nk);
        inv.arg(self.now_ms().to_string())
            .arg(key)
            .arg("u")
            .arg(expected(version));
        let reply = self.run(OP, ns, &inv).await?;
        match reply.as_slice() {
            [Some(ok), _] if ok == b"1" => Ok(()),
            [Some(ok), cur] if ok == b"0" => Err(conflict(OP, ns, current(cur, OP, ns)?, None)),
            _ => Err(malformed(At::scoped(OP, BACKEND, ns))),
        }
    }

    async fn cas_transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        const OP: &str = "transact";
        self.check().transaction(&ops)?;
        for op in &ops {
            if let TxAction::Put { options, .. } = &op.action {
                self.check_ttl(OP, options.expiry)?;
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.inner.clock.now();
        // Distinct namespaces in order of first appearance.
        let mut order: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for op in &ops {
            let ns = op.namespace.as_str();
            if !index.contains_key(ns) {
                index.insert(ns, order.len());
                order.push(ns);
            }
        }
        // Each put's version, from its namespace's block, in op order.
        let mut versions: Vec<Option<u64>> = vec![None; ops.len()];
        for ns in &order {
            let puts: Vec<usize> = ops
                .iter()
                .enumerate()
                .filter(|(_, o)| o.namespace == *ns && matches!(o.action, TxAction::Put { .. }))
                .map(|(i, _)| i)
                .collect();
            if puts.is_empty() {
                continue;
            }
            let n = puts.len() as u64;
            let first = self.versions(OP, ns, n).await? + 1 - n;
            for (i, v) in puts.into_iter().zip(first..) {
                versions[i] = Some(v);
            }
        }
        let mut inv = scripts::TRANSACT.prepare_invoke();
        for ns in &order {
            with_keys(&mut inv, &self.inner.keys.ns(ns));
        }
        if let Some(registry) = self.script_registry() {
            inv.key(registry);
        }
        inv.arg(now.as_millis().to_string())
            .arg(order.len().to_string());
        for ns in &order {
            inv.arg(*ns);
        }
        for (op, version) in ops.iter().zip(&versions) {
            let ns_index = index.get(op.namespace.as_str()).copied().unwrap_or(0);
            inv.arg(ns_index.to_string());
            match &op.action {
                TxAction::Put { value, options } => {
                    let exp = expiry_arg(options.expiry, now);
                    let record = Record::encode(version.unwrap_or(0), &exp, value);
                    inv.arg("p").arg(&op.key[..]).arg(record).arg(exp);
                }
                TxAction::Delete => {
                    inv.arg("d").arg(&op.key[..]).arg("").arg("");
                }
                TxAction::Check => {
                    inv.arg("c").arg(&op.key[..]).arg("").arg("");
                }
            }
            match &op.condition {
                None => inv.arg("").arg(""),
                Some(Condition::Absent) => inv.arg("a").arg(""),
                Some(Condition::Exists) => inv.arg("e").arg(""),
                Some(Condition::Version(v)) => inv.arg("v").arg(expected(v)),
            };
        }
        let first_ns = order.first().copied().unwrap_or("");
        let reply = self.run(OP, first_ns, &inv).await?;
        let bad = || malformed(At::new(OP, BACKEND));
        let (status, rest) = reply.split_first().ok_or_else(bad)?;
        match status.as_deref() {
            Some(b"1") if rest.is_empty() => {
                for ns in &order {
                    let wrote = ops
                        .iter()
                        .any(|o| o.namespace == *ns && matches!(o.action, TxAction::Put { .. }));
                    if wrote {
                        self.register(OP, ns).await?;
                    }
                }
                Ok(versions
                    .into_iter()
                    .map(|v| v.map(Version::from_counter))
                    .collect())
            }
            Some(b"0") => {
                let [Some(i), cur] = rest else {
                    return Err(bad());
                };
                let i = std::str::from_utf8(i)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(bad)?;
                let ns = ops.get(i).map_or("", |o| o.namespace.as_str());
                Err(conflict(OP, ns, current(cur, OP, ns)?, Some(i)))
            }
            _ => Err(bad()),
        }
    }
}

storage_core::forward_atomic_kv!(RedisStore, BACKEND);
