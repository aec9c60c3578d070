//! The KV tier on Redis, and the helpers the CAS tier shares.
//!
//! Everything about one key — version, expiry, value — is one *record* in
//! the namespace's `d` hash (layout in `keys.rs`). Reads are a single
//! `HGET` / `HMGET` (one command is atomic by itself, so no script): the
//! client decodes the record and judges expiry against the store clock's
//! "now" (`expiry <= now` is absent, the rule the scripts use). Every
//! write is one Lua script ([`scripts`](crate::scripts)) on the
//! namespace's keys (one hash tag, so one Cluster slot) that stores the
//! record the client built (its version from a block reserved from the
//! namespace counter, see `versions.rs`) and purges a bounded number of
//! expired entries. On a standalone server the same script adds the
//! namespace to the store's registry set when it creates a key; on a
//! Cluster the registry lives in another slot, so a successful write is
//! followed by a separate `SADD`. Listing filters the registry by a
//! live-entry check per candidate. A scan page needs no script either:
//! `ZRANGEBYLEX` reads the next keys from the index and one `HMGET` their
//! records, skipping dead ones, until a live entry past the page shows up
//! or the range ends (see `kv_scan`).

use std::ops::Bound;

use bytes::Bytes;
use redis::{AsyncCommands, ScriptInvocation};
use storage_core::validate::Validator;
use storage_core::{
    At, BatchOp, Context, Cursor, Direction, Entry, Error, Expiry, PutMode, PutOptions, Result,
    ScanPage, ScanRequest, Timestamp, Version,
};

use crate::backend::{Conn, RedisStore};
use crate::config::BACKEND;
use crate::error::map_err;
use crate::keys::NsKeys;
use crate::scripts;

/// The shape of every script reply.
pub(crate) type Reply = Vec<Option<Vec<u8>>>;

/// What a (conditional) put did.
pub(crate) enum PutOutcome {
    /// Written at this version.
    Written(Version),
    /// The condition failed; the key's live version (`None`: absent).
    Refused(Option<Version>),
}

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

/// One decoded record (`<version>;<expiry>;<value>`, see `keys.rs`).
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) version: u64,
    /// Expiry instant in ms by the store clock; `None`: never.
    pub(crate) expires: Option<u64>,
    pub(crate) value: Bytes,
}

impl Record {
    /// Encodes a record as scripts store it: `version`, the expiry
    /// argument (`expiry_arg`: ms, or empty for never), the value.
    pub(crate) fn encode(version: u64, expiry: &str, value: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(20 + 2 + expiry.len() + value.len());
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{version};{expiry};");
        out.extend_from_slice(value);
        out
    }

    /// Decodes a record as stored; `None` if it is not one. The value is
    /// a slice of `raw`, not a copy.
    pub(crate) fn decode(raw: Vec<u8>) -> Option<Record> {
        let a = raw.iter().position(|&b| b == b';')?;
        let b = a + 1 + raw.get(a + 1..)?.iter().position(|&b| b == b';')?;
        let version = decimal(&raw[..a])?;
        let expires = if b == a + 1 {
            None
        } else {
            Some(decimal(&raw[a + 1..b])?)
        };
        let value = Bytes::from(raw).slice(b + 1..);
        Some(Record {
            version,
            expires,
            value,
        })
    }

    /// Whether the entry exists at `now_ms` (scripts' rule: an entry with
    /// `expiry <= now` is absent).
    pub(crate) fn live_at(&self, now_ms: u64) -> bool {
        self.expires.is_none_or(|e| e > now_ms)
    }
}

/// Most index keys one scan step reads (and records it fetches).
const MAX_SCAN_CHUNK: usize = 1000;

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

/// Adds the four keys of a namespace to an invocation.
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

    /// The registry key when write scripts maintain the registry
    /// themselves (a standalone server); `None` on a Cluster, where it
    /// lives in another slot and [`RedisStore::register`] adds names.
    pub(crate) fn script_registry(&self) -> Option<&str> {
        match self.inner.conn {
            Conn::Single(_) => Some(self.inner.keys.namespaces()),
            Conn::Cluster(_) => None,
        }
    }

    /// Records that `ns` was written (the registry `list_namespaces`
    /// reads), on a Cluster; on a standalone server the write script did.
    pub(crate) async fn register(&self, op: &'static str, ns: &str) -> Result<()> {
        if self.script_registry().is_some() {
            return Ok(());
        }
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

    /// The live record at `key`, by one `HGET`.
    pub(crate) async fn read_one(
        &self,
        op: &'static str,
        ns: &str,
        key: &[u8],
    ) -> Result<Option<Record>> {
        let now = self.now_ms();
        let raw: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(self.inner.keys.data(ns))
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))?;
        match raw {
            None => Ok(None),
            Some(raw) => {
                let rec =
                    Record::decode(raw).ok_or_else(|| malformed(At::scoped(op, BACKEND, ns)))?;
                Ok(rec.live_at(now).then_some(rec))
            }
        }
    }

    /// The live records at `keys`, by one `HMGET`.
    pub(crate) async fn read_many(
        &self,
        op: &'static str,
        ns: &str,
        keys: &[Bytes],
    ) -> Result<Vec<Option<Record>>> {
        let now = self.now_ms();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.inner.keys.data(ns));
        for k in keys {
            cmd.arg(&k[..]);
        }
        let raw: Reply = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))?;
        if raw.len() != keys.len() {
            return Err(malformed(At::scoped(op, BACKEND, ns)));
        }
        raw.into_iter()
            .map(|r| match r {
                None => Ok(None),
                Some(raw) => Record::decode(raw)
                    .map(|rec| rec.live_at(now).then_some(rec))
                    .ok_or_else(|| malformed(At::scoped(op, BACKEND, ns))),
            })
            .collect()
    }

    /// Runs the PUT script for `mode` and registers the namespace after a
    /// successful write on a Cluster.
    pub(crate) async fn put_record(
        &self,
        op: &'static str,
        ns: &str,
        key: &[u8],
        value: &[u8],
        expiry: Expiry,
        mode: &PutMode,
    ) -> Result<PutOutcome> {
        let (mode, want) = match mode {
            PutMode::Overwrite => ("o", String::new()),
            PutMode::Create => ("c", String::new()),
            PutMode::Update(v) => ("u", expected(v)),
        };
        let version = self.versions(op, ns, 1).await?;
        let now = self.inner.clock.now();
        let exp = expiry_arg(expiry, now);
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::PUT.prepare_invoke();
        with_keys(&mut inv, &nk);
        if let Some(registry) = self.script_registry() {
            inv.key(registry);
        }
        inv.arg(now.as_millis().to_string())
            .arg(key)
            .arg(Record::encode(version, &exp, value))
            .arg(&exp)
            .arg(mode)
            .arg(&want)
            .arg(ns);
        let reply = self.run(op, ns, &inv).await?;
        match reply.as_slice() {
            [Some(ok)] if ok == b"1" => {
                self.register(op, ns).await?;
                Ok(PutOutcome::Written(Version::from_counter(version)))
            }
            [Some(no), cur] if no == b"0" => Ok(PutOutcome::Refused(match cur {
                Some(b) => Some(token(b).ok_or_else(|| malformed(At::scoped(op, BACKEND, ns)))?),
                None => None,
            })),
            _ => Err(malformed(At::scoped(op, BACKEND, ns))),
        }
    }

    async fn kv_get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        self.check().ns_key("get", ns, key)?;
        Ok(self.read_one("get", ns, key).await?.map(|r| r.value))
    }

    async fn kv_get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.check().keys("get_many", ns, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.read_many("get_many", ns, keys).await?;
        Ok(found.into_iter().map(|f| f.map(|r| r.value)).collect())
    }

    async fn kv_put(&self, ns: &str, key: &[u8], value: Bytes, options: PutOptions) -> Result<()> {
        self.check().ns_key_value("put", ns, key, &value)?;
        self.check_ttl("put", options.expiry)?;
        match self
            .put_record("put", ns, key, &value, options.expiry, &PutMode::Overwrite)
            .await?
        {
            PutOutcome::Written(_) => Ok(()),
            // An overwrite has no condition to fail.
            PutOutcome::Refused(_) => Err(malformed(At::scoped("put", BACKEND, ns))),
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
        let puts = ops
            .iter()
            .filter(|op| matches!(op, BatchOp::Put { .. }))
            .count() as u64;
        let mut next = if puts > 0 {
            self.versions("write_batch", ns, puts).await? + 1 - puts
        } else {
            0
        };
        let now = self.inner.clock.now();
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::BATCH.prepare_invoke();
        with_keys(&mut inv, &nk);
        if let Some(registry) = self.script_registry() {
            inv.key(registry);
        }
        inv.arg(now.as_millis().to_string()).arg(ns);
        let mut wrote = false;
        for op in &ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    options,
                } => {
                    wrote = true;
                    let exp = expiry_arg(options.expiry, now);
                    inv.arg("p")
                        .arg(&key[..])
                        .arg(Record::encode(next, &exp, value))
                        .arg(exp);
                    next += 1;
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
        // Two commands a step, no script: the index's next keys, then
        // their records by one HMGET, judged live by the store clock. A
        // key deleted or expired between the two is skipped and one
        // rewritten between is read as rewritten: either way it did not
        // exist unchanged for the whole scan, so the scan contract holds
        // (pages are not snapshots of one instant). Values never pass
        // through Lua, which costs the server about 15 µs per 10 KB (1.9 ms
        // a 100-entry page of 10 KB values in the script this replaces,
        // against 0.1 ms for the two commands; Redis 7.0, `INFO
        // commandstats`). A run of dead keys (expired, not yet purged)
        // makes more steps, each reading twice as many keys, up to
        // MAX_SCAN_CHUNK.
        let reverse = request.direction == Direction::Reverse;
        let (mut lo, mut hi) = (lex_bound(&lo, b"-"), lex_bound(&hi, b"+"));
        let nk = self.inner.keys.ns(ns);
        let mut chunk = request.limit.saturating_add(1).min(MAX_SCAN_CHUNK);
        let mut entries: Vec<Entry> = Vec::with_capacity(request.limit.min(MAX_SCAN_CHUNK));
        loop {
            let (from, to, cmd) = if reverse {
                (&hi, &lo, "ZREVRANGEBYLEX")
            } else {
                (&lo, &hi, "ZRANGEBYLEX")
            };
            let keys: Vec<Vec<u8>> = redis::cmd(cmd)
                .arg(&nk.index)
                .arg(from)
                .arg(to)
                .arg("LIMIT")
                .arg(0)
                .arg(chunk)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| map_err(At::scoped("scan", BACKEND, ns), e))?;
            let Some(last) = keys.last() else { break };
            let next = [b"(".as_slice(), last].concat();
            let full = keys.len() == chunk;
            let keys: Vec<Bytes> = keys.into_iter().map(Bytes::from).collect();
            let records = self.read_many("scan", ns, &keys).await?;
            for (key, rec) in keys.into_iter().zip(records) {
                let Some(rec) = rec else { continue };
                if entries.len() == request.limit {
                    // A live entry past the page: there is more.
                    let cursor = entries.last().map(|e| Cursor::after(e.key.clone()));
                    return Ok(ScanPage { entries, cursor });
                }
                entries.push(Entry {
                    key,
                    value: rec.value,
                    version: Some(Version::from_counter(rec.version)),
                    expires_at: rec.expires.map(Timestamp::from_millis),
                });
            }
            if !full {
                break;
            }
            if reverse {
                hi = next;
            } else {
                lo = next;
            }
            chunk = chunk.saturating_mul(2).min(MAX_SCAN_CHUNK);
        }
        Ok(ScanPage {
            entries,
            cursor: None,
        })
    }

    /// Whether namespace `ns` holds a live entry.
    async fn ns_live(&self, at: At<'_>, ns: &str) -> Result<bool> {
        let nk = self.inner.keys.ns(ns);
        let reply: Reply = scripts::LIVE
            .key(&nk.index)
            .key(&nk.expiring)
            .arg(self.now_ms().to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| map_err(at, e))?;
        Ok(matches!(reply.first(), Some(Some(v)) if v == b"1"))
    }

    async fn kv_list_namespaces(&self) -> Result<Vec<String>> {
        let at = At::new("list_namespaces", BACKEND);
        let candidates: Vec<String> = self
            .conn()
            .smembers(self.inner.keys.namespaces())
            .await
            .map_err(|e| map_err(at, e))?;
        let mut live = Vec::new();
        for ns in candidates {
            match self.ns_live(at, &ns).await {
                Ok(true) => live.push(ns),
                Ok(false) => {}
                // Someone else's key sits where this namespace's index
                // should be: every call on that namespace reports it, but
                // it must not hide the store's other namespaces.
                Err(e @ storage_core::Error::InvalidInput { .. }) => {
                    tracing::warn!(namespace = %ns, error = %e, "namespace skipped: foreign keys under its name");
                }
                Err(e) => return Err(e),
            }
        }
        live.sort_unstable();
        Ok(live)
    }

    async fn kv_drop_namespace(&self, ns: &str) -> Result<bool> {
        self.check().namespace("drop_namespace", ns)?;
        let nk = self.inner.keys.ns(ns);
        let mut inv = scripts::DROP.prepare_invoke();
        inv.key(&nk.index).key(&nk.data).key(&nk.expiring);
        let registry = self.script_registry();
        if let Some(registry) = registry {
            inv.key(registry);
        }
        inv.arg(self.now_ms().to_string()).arg(ns);
        let reply = self.run("drop_namespace", ns, &inv).await?;
        let held = matches!(reply.first(), Some(Some(v)) if v == b"1");
        if registry.is_none() {
            // Cluster: the registry is in another slot, so it is updated
            // apart from the drop. A write that raced with the drop may
            // have registered the name before the SREM: if the namespace
            // is live again, re-register it.
            let at = At::scoped("drop_namespace", BACKEND, ns);
            let _: i64 = self
                .conn()
                .srem(self.inner.keys.namespaces(), ns)
                .await
                .map_err(|e| map_err(at, e))?;
            if self.ns_live(at, ns).await? {
                self.register("drop_namespace", ns).await?;
            }
        }
        Ok(held)
    }
}

storage_core::forward_kv_store!(RedisStore, BACKEND, |s| s.inner.caps);
