//! The KV tier on Redis, and the helpers the CAS tier shares.
//!
//! Every operation is one Lua script ([`scripts`](crate::scripts)) on the
//! namespace's keys (one hash tag, so one Cluster slot): reads judge
//! expiry by the store clock's "now" passed as an argument, writes issue
//! versions from the namespace counter and purge a bounded number of
//! expired entries. A successful write then adds the namespace to the
//! store's registry set (a separate command: another slot); listing
//! filters the registry by a live-entry check per candidate.

use std::ops::Bound;

use async_trait::async_trait;
use bytes::Bytes;
use redis::{AsyncCommands, Script, ScriptInvocation};
use storage_core::validate::Validator;
use storage_core::{
    At, BatchOp, Capabilities, Context, Cursor, Direction, Entry, Error, Expiry, KvStore,
    PutOptions, Result, ScanPage, ScanRequest, Timestamp, Version,
};
use tracing::Instrument;

use crate::backend::RedisStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::keys::NsKeys;
use crate::scripts;

/// The shape of every script reply.
pub(crate) type Reply = Vec<Option<Vec<u8>>>;

/// A debug span for one operation: backend, operation and namespace,
/// never keys or values.
macro_rules! op_span {
    ($op:literal, $ns:expr) => {
        tracing::debug_span!(
            "kv",
            backend = $crate::config::BACKEND,
            op = $op,
            namespace = $ns
        )
    };
    ($op:literal) => {
        tracing::debug_span!("kv", backend = $crate::config::BACKEND, op = $op)
    };
}
pub(crate) use op_span;

/// A reply that does not have the shape its script returns.
pub(crate) fn malformed(ctx: impl Into<Context>) -> Error {
    Error::Backend {
        ctx: ctx.into(),
        source: "unexpected reply shape from a storage script".into(),
    }
}

/// A stored decimal (version or instant) back as a number.
pub(crate) fn decimal(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A stored version back as a token.
pub(crate) fn token(bytes: &[u8]) -> Option<Version> {
    decimal(bytes).map(Version::from_counter)
}

/// The string a script compares a presented token with: the canonical
/// counter, or "" (which no stored version equals) for a token this store
/// could not have issued.
pub(crate) fn expected(version: &Version) -> String {
    version
        .to_counter()
        .map_or_else(String::new, |n| n.to_string())
}

/// The expiry argument of a write made at `now`: ms, or "" for never.
pub(crate) fn expiry_arg(expiry: Expiry, now: Timestamp) -> String {
    expiry
        .resolve(now)
        .map_or_else(String::new, |t| t.as_millis().to_string())
}

/// Adds the six keys of a namespace to an invocation.
pub(crate) fn with_keys<'a>(inv: &mut ScriptInvocation<'a>, keys: &NsKeys) {
    for k in keys.all() {
        inv.key(k);
    }
}

fn lex_bound(b: &Bound<Bytes>, unbounded: &'static [u8]) -> Vec<u8> {
    match b {
        Bound::Included(k) => [b"[".as_slice(), k].concat(),
        Bound::Excluded(k) => [b"(".as_slice(), k].concat(),
        Bound::Unbounded => unbounded.to_vec(),
    }
}

impl RedisStore {
    /// This store's input rules (its capabilities depend on the target).
    pub(crate) fn check(&self) -> Validator {
        Validator::new(BACKEND, self.inner.caps)
    }

    /// Refuses an expiry on a store without `kv_ttl`.
    pub(crate) fn check_ttl(&self, op: &'static str, expiry: Expiry) -> Result<()> {
        if expiry != Expiry::Never && !self.inner.caps.kv_ttl {
            return Err(Error::unsupported(op, BACKEND));
        }
        Ok(())
    }

    /// Records that `ns` was written (the registry `list_namespaces` reads).
    pub(crate) async fn register(&self, op: &'static str, ns: &str) -> Result<()> {
        let mut conn = self.conn();
        let _: i64 = conn
            .sadd(self.inner.keys.namespaces(), ns)
            .await
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))?;
        Ok(())
    }

    /// Runs a script invocation, mapping errors for `op` on `ns`.
    pub(crate) async fn run(
        &self,
        op: &'static str,
        ns: &str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<Reply> {
        inv.invoke_async(&mut self.conn())
            .await
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))
    }

    /// Values and versions at `keys` (live only), by one script.
    pub(crate) async fn read(
        &self,
        op: &'static str,
        ns: &str,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<(Bytes, Version)>>> {
        let nk = self.inner.keys.ns(ns);
        let script: &Script = &scripts::READ;
        let mut inv = script.prepare_invoke();
        inv.key(&nk.data).key(&nk.versions).key(&nk.expiry);
        inv.arg(self.now_ms().to_string());
        for k in keys {
            inv.arg(*k);
        }
        let reply = self.run(op, ns, &inv).await?;
        if reply.len() != keys.len() * 2 {
            return Err(malformed(At::scoped(op, BACKEND, ns)));
        }
        reply
            .chunks_exact(2)
            .map(|pair| match pair {
                [Some(value), Some(version)] => token(version)
                    .map(|v| Some((Bytes::copy_from_slice(value), v)))
                    .ok_or_else(|| malformed(At::scoped(op, BACKEND, ns))),
                _ => Ok(None),
            })
            .collect()
    }

    async fn kv_get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        self.check().ns_key("get", ns, key)?;
        let mut found = self.read("get", ns, &[key]).await?;
        Ok(found.pop().flatten().map(|(value, _)| value))
    }

    async fn kv_get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.check().keys("get_many", ns, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let found = self.read("get_many", ns, &refs).await?;
        Ok(found
            .into_iter()
            .map(|f| f.map(|(value, _)| value))
            .collect())
    }

    async fn kv_put(&self, ns: &str, key: &[u8], value: Bytes, options: PutOptions) -> Result<()> {
        self.check().ns_key_value("put", ns, key, &value)?;
        self.check_ttl("put", options.expiry)?;
        let now = self.inner.clock.now();
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::PUT.prepare_invoke();
        with_keys(&mut inv, &nk);
        inv.arg(now.as_millis().to_string())
            .arg(key)
            .arg(&value[..])
            .arg(expiry_arg(options.expiry, now))
            .arg("o")
            .arg("");
        let reply = self.run("put", ns, &inv).await?;
        match reply.first() {
            Some(Some(ok)) if ok == b"1" => self.register("put", ns).await,
            _ => Err(malformed(At::scoped("put", BACKEND, ns))),
        }
    }

    async fn kv_delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        self.check().ns_key("delete", ns, key)?;
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::DELETE.prepare_invoke();
        with_keys(&mut inv, &nk);
        inv.arg(self.now_ms().to_string()).arg(key).arg("a").arg("");
        let reply = self.run("delete", ns, &inv).await?;
        match reply.as_slice() {
            [Some(ok), was] if ok == b"1" => Ok(was.is_some()),
            _ => Err(malformed(At::scoped("delete", BACKEND, ns))),
        }
    }

    async fn kv_write_batch(&self, ns: &str, ops: Vec<BatchOp>) -> Result<()> {
        self.check().batch("write_batch", ns, &ops)?;
        for op in &ops {
            if let BatchOp::Put { options, .. } = op {
                self.check_ttl("write_batch", options.expiry)?;
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let now = self.inner.clock.now();
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::BATCH.prepare_invoke();
        with_keys(&mut inv, &nk);
        inv.arg(now.as_millis().to_string());
        let mut wrote = false;
        for op in &ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    options,
                } => {
                    wrote = true;
                    inv.arg("p")
                        .arg(&key[..])
                        .arg(&value[..])
                        .arg(expiry_arg(options.expiry, now));
                }
                BatchOp::Delete { key } => {
                    inv.arg("d").arg(&key[..]).arg("").arg("");
                }
            }
        }
        self.run("write_batch", ns, &inv).await?;
        if wrote {
            self.register("write_batch", ns).await?;
        }
        Ok(())
    }

    async fn kv_scan(&self, ns: &str, request: ScanRequest) -> Result<ScanPage> {
        self.check().namespace("scan", ns)?;
        request.validate(At::scoped("scan", BACKEND, ns), &self.inner.caps)?;
        let Some((lo, hi)) = request.effective_range() else {
            return Ok(ScanPage::default());
        };
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::SCAN.prepare_invoke();
        inv.key(&nk.index)
            .key(&nk.data)
            .key(&nk.versions)
            .key(&nk.expiry);
        inv.arg(self.now_ms().to_string())
            .arg(lex_bound(&lo, b"-"))
            .arg(lex_bound(&hi, b"+"))
            .arg(request.limit.to_string())
            .arg(if request.direction == Direction::Reverse {
                "1"
            } else {
                "0"
            });
        let reply = self.run("scan", ns, &inv).await?;
        let bad = || malformed(At::scoped("scan", BACKEND, ns));
        let (more, rest) = reply.split_first().ok_or_else(bad)?;
        let more = matches!(more, Some(m) if m == b"1");
        if rest.len() % 4 != 0 {
            return Err(bad());
        }
        let mut entries = Vec::with_capacity(rest.len() / 4);
        for e in rest.chunks_exact(4) {
            let [Some(key), Some(value), Some(version), expires] = e else {
                return Err(bad());
            };
            let expires_at = match expires {
                Some(ms) => Some(Timestamp::from_millis(decimal(ms).ok_or_else(bad)?)),
                None => None,
            };
            entries.push(Entry {
                key: Bytes::copy_from_slice(key),
                value: Bytes::copy_from_slice(value),
                version: Some(token(version).ok_or_else(bad)?),
                expires_at,
            });
        }
        let cursor = if more {
            entries.last().map(|e| Cursor::after(e.key.clone()))
        } else {
            None
        };
        Ok(ScanPage { entries, cursor })
    }

    async fn kv_list_namespaces(&self) -> Result<Vec<String>> {
        let at = At::new("list_namespaces", BACKEND);
        let mut conn = self.conn();
        let candidates: Vec<String> = conn
            .smembers(self.inner.keys.namespaces())
            .await
            .map_err(|e| map_err(at, e))?;
        let now = self.now_ms().to_string();
        let mut live = Vec::new();
        for ns in candidates {
            let nk = self.inner.keys.ns(&ns);
            let reply: Reply = scripts::LIVE
                .key(&nk.index)
                .key(&nk.expiring)
                .arg(&now)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| map_err(at, e))?;
            if matches!(reply.first(), Some(Some(v)) if v == b"1") {
                live.push(ns);
            }
        }
        live.sort_unstable();
        Ok(live)
    }

    async fn kv_drop_namespace(&self, ns: &str) -> Result<bool> {
        self.check().namespace("drop_namespace", ns)?;
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::DROP.prepare_invoke();
        for k in nk.all().iter().take(5) {
            inv.key(*k);
        }
        inv.arg(self.now_ms().to_string());
        let reply = self.run("drop_namespace", ns, &inv).await?;
        let held = matches!(reply.first(), Some(Some(v)) if v == b"1");
        let at = At::scoped("drop_namespace", BACKEND, ns);
        let mut conn = self.conn();
        let _: i64 = conn
            .srem(self.inner.keys.namespaces(), ns)
            .await
            .map_err(|e| map_err(at, e))?;
        // A write that raced with the drop may have registered the name
        // before the SREM: if the namespace is live again, re-register it.
        let live: Reply = scripts::LIVE
            .key(&nk.index)
            .key(&nk.expiring)
            .arg(self.now_ms().to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(at, e))?;
        if matches!(live.first(), Some(Some(v)) if v == b"1") {
            self.register("drop_namespace", ns).await?;
        }
        Ok(held)
    }
}

#[async_trait]
impl KvStore for RedisStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        self.kv_get(namespace, key)
            .instrument(op_span!("get", namespace))
            .await
    }

    async fn put(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<()> {
        self.kv_put(namespace, key, value, options)
            .instrument(op_span!("put", namespace))
            .await
    }

    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.kv_delete(namespace, key)
            .instrument(op_span!("delete", namespace))
            .await
    }

    async fn get_many(&self, namespace: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.kv_get_many(namespace, keys)
            .instrument(op_span!("get_many", namespace))
            .await
    }

    async fn write_batch(&self, namespace: &str, ops: Vec<BatchOp>) -> Result<()> {
        self.kv_write_batch(namespace, ops)
            .instrument(op_span!("write_batch", namespace))
            .await
    }

    async fn scan(&self, namespace: &str, request: ScanRequest) -> Result<ScanPage> {
        self.kv_scan(namespace, request)
            .instrument(op_span!("scan", namespace))
            .await
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.kv_list_namespaces()
            .instrument(op_span!("list_namespaces"))
            .await
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool> {
        self.kv_drop_namespace(namespace)
            .instrument(op_span!("drop_namespace", namespace))
            .await
    }
}
