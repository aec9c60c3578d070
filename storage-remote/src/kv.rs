//! The KV tier on an object store, and the reads the CAS tier shares.
//!
//! One object per key (layout in `keys.rs`, bytes in `record.rs`). A
//! read is one `GET`; the version token names that response's ETag (plus
//! the object version where the store has one) and the entry's expiry
//! instant (`token.rs`). A plain put is one
//! unconditional `PUT`. Scans list the namespace's directory (a forward
//! scan only the objects after its start key, which a directory skips by
//! name), order the decoded keys (the escaping preserves byte order, but
//! a local directory lists in no particular order, so the adapter sorts
//! anyway), drop tombstones by their size, then read candidates in
//! order, a few at a time, until the page is full and one more live
//! entry proves a next page exists.
//!
//! On a store that lists in path order from an offset
//! ([`RemoteConfig::ordered_listing`](crate::RemoteConfig): S3, InMemory),
//! a forward scan instead lists from its start key and stops when its
//! page is full, so a page costs one listing request, not a listing of
//! the whole namespace. Reverse scans list their whole range.
//!
//! A plain delete reads the key and, if it is live, removes the object.
//! `DELETE` is unconditional, so two concurrent deletes of one live key
//! may both report `true` (as S3's own `DeleteObject` would); conditional
//! deletes (`delete_if`) are exact, see `atomic.rs`.

use std::ops::Bound;

use bytes::Bytes;
use futures::{future, Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, ObjectMeta, ObjectStoreExt, PutPayload, UpdateVersion};
use storage_core::validate::Validator;
use storage_core::{
    At, BatchOp, Cursor, Direction, Entry, Error, Expiry, PutOptions, Result, ScanPage,
    ScanRequest, Timestamp, Version,
};

use crate::backend::RemoteStore;
use crate::config::BACKEND;
use crate::error::{is_absent, map_err};
use crate::record::Record;
use crate::token::EntryToken;

/// Reads in flight at once during scans and multi-gets.
const READ_CONCURRENCY: usize = 16;

/// Whether `key` lies past an upper scan bound.
fn beyond(upper: &Bound<Bytes>, key: &[u8]) -> bool {
    match upper {
        Bound::Included(u) => key > &u[..],
        Bound::Excluded(u) => key >= &u[..],
        Bound::Unbounded => false,
    }
}

/// Separates the ETag from the object version in a token.
const VERSION_SEP: &str = ";v=";

/// The token of a transport object (`transport.rs`): the ETag, plus
/// `;v=<version>` where the store versions objects. `None` when the store
/// reported neither. KV entries carry richer tokens (`token.rs`).
pub(crate) fn token(e_tag: Option<String>, version: Option<String>) -> Option<Version> {
    match (e_tag, version) {
        (Some(e), None) => Some(Version::new(e)),
        (e, Some(v)) => Some(Version::new(format!(
            "{}{VERSION_SEP}{v}",
            e.unwrap_or_default()
        ))),
        (None, None) => None,
    }
}

/// The condition a presented transport token stands for; `None` for a
/// token this store cannot have issued (no ETag), which matches nothing.
pub(crate) fn condition(v: &Version) -> Option<UpdateVersion> {
    let (e, ver) = match v.as_str().split_once(VERSION_SEP) {
        Some((e, ver)) => (e, Some(ver.to_owned())),
        None => (v.as_str(), None),
    };
    (!e.is_empty()).then(|| UpdateVersion {
        e_tag: Some(e.to_owned()),
        version: ver,
    })
}

/// A store that answered a write without an ETag cannot do CAS.
pub(crate) fn no_etag(ctx: At<'_>) -> Error {
    Error::Backend {
        ctx: ctx.into(),
        source: "the object store returned no ETag or version for a write".into(),
    }
}

/// One object as a read saw it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// Its token (`token.rs`: expiry, ETag [+ version]).
    pub(crate) version: Version,
    /// The value and expiry if the entry is live now; `None` for a
    /// tombstone or an expired entry (both count as absent).
    pub(crate) live: Option<(Bytes, Option<Timestamp>)>,
}

impl Current {
    /// The version if live.
    pub(crate) fn live_version(&self) -> Option<Version> {
        self.live.as_ref().map(|_| self.version.clone())
    }
}

impl RemoteStore {
    /// This store's input rules.
    pub(crate) fn check(&self) -> Validator {
        Validator::new(BACKEND, self.inner.caps)
    }

    /// "Now" by the store clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The expiry instant of a write made now.
    pub(crate) fn expiry(&self, op: &'static str, expiry: Expiry) -> Result<Option<Timestamp>> {
        if expiry != Expiry::Never && !self.inner.caps.kv_ttl {
            return Err(Error::unsupported(op, BACKEND));
        }
        Ok(expiry.resolve(self.now()))
    }

    /// The object at `path` as of now, or `None` if there is none.
    pub(crate) async fn read(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
    ) -> Result<Option<Current>> {
        let Some((e_tag, version, record)) = self.fetch(op, ns, path).await? else {
            return Ok(None);
        };
        let at = At::scoped(op, BACKEND, ns);
        let (expires_at, tombstone) = match &record {
            Record::Live { expires_at, .. } => (*expires_at, false),
            Record::Tombstone => (None, true),
        };
        let mut token = EntryToken::new(e_tag, version, expires_at).ok_or_else(|| no_etag(at))?;
        if tombstone {
            self.learn_tombstone(&token.e_tag);
        }
        let live = record.live_at(self.now());
        // Only a live entry's token leaves this handle, so only those are
        // tagged (a tag vouches for a live record, see `token.rs`).
        if let (Some(tagger), Some(_)) = (&self.inner.tagger, &live) {
            token = tagger.tagged(path, token);
        }
        Ok(Some(Current {
            version: token.encode(),
            live,
        }))
    }

    /// The value at `path` if it is live now: [`RemoteStore::read`]
    /// without the token, which a plain read hands to no one.
    pub(crate) async fn read_value(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
    ) -> Result<Option<Bytes>> {
        Ok(self
            .fetch(op, ns, path)
            .await?
            .and_then(|(_, _, record)| record.live_at(self.now()))
            .map(|(value, _)| value))
    }

    /// One `GET` of `path`: its ETag, object version and decoded record,
    /// or `None` if there is no object.
    async fn fetch(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
    ) -> Result<Option<(Option<String>, Option<String>, Record)>> {
        let at = At::scoped(op, BACKEND, ns);
        let mut got = match self.inner.store.get_opts(path, GetOptions::default()).await {
            Ok(g) => g,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(map_err(at, e)),
        };
        // Taken, not cloned: reading the body needs neither.
        let (e_tag, version) = (got.meta.e_tag.take(), got.meta.version.take());
        let raw = match got.bytes().await {
            Ok(b) => b,
            // Replaced and cleaned up between the response head and body.
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(map_err(at, e)),
        };
        let record = Record::decode(raw).ok_or_else(|| {
            Error::invalid(
                at,
                "an object under this store's prefix is not a storage record (written by \
                 something else?)",
            )
        })?;
        Ok(Some((e_tag, version, record)))
    }

    /// Writes a live record unconditionally; returns its token.
    pub(crate) async fn write(
        &self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
        mode: object_store::PutMode,
    ) -> std::result::Result<object_store::PutResult, object_store::Error> {
        let path = self.inner.layout.key(ns, key);
        let payload = PutPayload::from(Record::encode(value, expires_at));
        let opts = object_store::PutOptions {
            mode,
            ..Default::default()
        };
        self.inner.store.put_opts(&path, payload, opts).await
    }

    async fn kv_get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        const OP: &str = "get";
        self.check().ns_key(OP, ns, key)?;
        let path = self.inner.layout.key(ns, key);
        self.read_value(OP, ns, &path).await
    }

    async fn kv_put(&self, ns: &str, key: &[u8], value: Bytes, options: PutOptions) -> Result<()> {
        const OP: &str = "put";
        self.check().ns_key_value(OP, ns, key, &value)?;
        let expires_at = self.expiry(OP, options.expiry)?;
        self.write(
            ns,
            key,
            &value,
            expires_at,
            object_store::PutMode::Overwrite,
        )
        .await
        .map_err(|e| map_err(At::scoped(OP, BACKEND, ns), e))?;
        Ok(())
    }

    /// Removes the object if the key is live; see the module docs.
    pub(crate) async fn remove(&self, op: &'static str, ns: &str, key: &[u8]) -> Result<bool> {
        let path = self.inner.layout.key(ns, key);
        let live = self.read_value(op, ns, &path).await?.is_some();
        if !live {
            return Ok(false);
        }
        match self.inner.store.delete(&path).await {
            Ok(()) => Ok(true),
            Err(e) if is_absent(&e) => Ok(true),
            Err(e) => Err(map_err(At::scoped(op, BACKEND, ns), e)),
        }
    }

    async fn kv_delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        const OP: &str = "delete";
        self.check().ns_key(OP, ns, key)?;
        self.remove(OP, ns, key).await
    }

    async fn kv_get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        const OP: &str = "get_many";
        self.check().keys(OP, ns, keys)?;
        let paths: Vec<Path> = keys.iter().map(|k| self.inner.layout.key(ns, k)).collect();
        futures::stream::iter(
            paths
                .into_iter()
                .map(|path| async move { self.read_value(OP, ns, &path).await }),
        )
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
    }

    async fn kv_write_batch(&self, ns: &str, ops: Vec<BatchOp>) -> Result<()> {
        const OP: &str = "write_batch";
        self.check().batch(OP, ns, &ops)?;
        for op in &ops {
            if let BatchOp::Put { options, .. } = op {
                self.expiry(OP, options.expiry)?;
            }
        }
        // No multi-object atomicity on an object store: applied in order
        // (the KvStore contract for TransactionScope::None).
        for op in ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    options,
                } => {
                    let expires_at = self.expiry(OP, options.expiry)?;
                    self.write(
                        ns,
                        &key,
                        &value,
                        expires_at,
                        object_store::PutMode::Overwrite,
                    )
                    .await
                    .map_err(|e| map_err(At::scoped(OP, BACKEND, ns), e))?;
                }
                BatchOp::Delete { key } => {
                    self.remove(OP, ns, &key).await?;
                }
            }
        }
        Ok(())
    }

    /// Every object of a namespace (after `after`, if given: a listing
    /// offset, exclusive) with its decoded key, sorted by key; tombstones
    /// (empty objects) and foreign objects left out.
    pub(crate) async fn list_keys(
        &self,
        op: &'static str,
        ns: &str,
        after: Option<&Path>,
    ) -> Result<Vec<(Bytes, ObjectMeta)>> {
        let dir = self.inner.layout.namespace(ns);
        let listing = match after {
            Some(offset) => self.inner.store.list_with_offset(Some(&dir), offset),
            None => self.inner.store.list(Some(&dir)),
        };
        let metas: Vec<ObjectMeta> = listing
            .try_collect()
            .await
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))?;
        let mut out: Vec<(Bytes, ObjectMeta)> = metas
            .into_iter()
            .filter(|m| m.size > 0)
            .filter_map(|m| {
                let k = self.inner.layout.key_of(&dir, &m.location)?;
                Some((Bytes::from(k), m))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn kv_scan(&self, ns: &str, request: ScanRequest) -> Result<ScanPage> {
        const OP: &str = "scan";
        self.check().namespace(OP, ns)?;
        request.validate(At::scoped(OP, BACKEND, ns), &self.inner.caps)?;
        let Some((lower, upper)) = request.effective_range() else {
            return Ok(ScanPage::default());
        };
        if self.inner.ordered_listing && request.direction == Direction::Forward {
            // List from the start key and stop once the page is full: one
            // listing request per page on S3 however large the namespace.
            let layout = &self.inner.layout;
            let dir = layout.namespace(ns);
            let offset = layout.listing_offset(ns, &lower);
            let candidates = self
                .inner
                .store
                .list_with_offset(Some(&dir), &offset)
                .map_err(|e| map_err(At::scoped(OP, BACKEND, ns), e))
                .try_filter_map(|m| {
                    let key = (m.size > 0)
                        .then(|| layout.key_of(&dir, &m.location))
                        .flatten();
                    future::ready(Ok(key.map(|k| (Bytes::from(k), m))))
                })
                .try_take_while(|(k, _)| future::ready(Ok(!beyond(&upper, k))))
                .try_filter(|(k, _)| future::ready(request.contains(k)));
            return self.fill_page(OP, ns, candidates, request.limit).await;
        }
        // An unordered listing (a local directory) comes back whole and is
        // sorted here. A forward scan still lists only the objects after
        // its start: a directory skips the others by name, without a
        // `stat` each (object_store's `LocalFileSystem`), and the bounds
        // below filter what the offset lets through.
        let after = (request.direction == Direction::Forward)
            .then(|| self.inner.layout.listing_offset(ns, &lower));
        let mut candidates: Vec<(Bytes, ObjectMeta)> = self
            .list_keys(OP, ns, after.as_ref())
            .await?
            .into_iter()
            .filter(|(k, _)| request.contains(k))
            .collect();
        if request.direction == Direction::Reverse {
            candidates.reverse();
        }
        let candidates = futures::stream::iter(candidates.into_iter().map(Ok));
        self.fill_page(OP, ns, candidates, request.limit).await
    }

    /// Reads `candidates` (in scan order) a few at a time until `limit`
    /// live entries and one more, proving a next page, are found.
    async fn fill_page(
        &self,
        op: &'static str,
        ns: &str,
        candidates: impl Stream<Item = Result<(Bytes, ObjectMeta)>>,
        limit: usize,
    ) -> Result<ScanPage> {
        let want = limit.saturating_add(1);
        let mut entries: Vec<Entry> = Vec::new();
        let reads = candidates
            .map_ok(|(key, meta)| async move {
                let cur = self.read(op, ns, &meta.location).await?;
                Ok::<_, Error>((key, cur))
            })
            .try_buffered(READ_CONCURRENCY);
        futures::pin_mut!(reads);
        while let Some(r) = reads.next().await {
            let (key, cur) = r?;
            let Some(Current {
                version,
                live: Some((value, expires_at)),
            }) = cur
            else {
                continue;
            };
            entries.push(Entry {
                key,
                value,
                version: Some(version),
                expires_at,
            });
            if entries.len() >= want {
                break;
            }
        }
        let cursor = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| Cursor::after(e.key.clone()))
        } else {
            None
        };
        Ok(ScanPage { entries, cursor })
    }

    /// Whether a namespace holds at least one live entry: stops at the
    /// first, in whatever order the store lists.
    pub(crate) async fn has_live(&self, op: &'static str, ns: &str) -> Result<bool> {
        let dir = self.inner.layout.namespace(ns);
        let listing = self
            .inner
            .store
            .list(Some(&dir))
            .map_err(|e| map_err(At::scoped(op, BACKEND, ns), e))
            .try_filter(|m| {
                future::ready(m.size > 0 && self.inner.layout.key_of(&dir, &m.location).is_some())
            });
        futures::pin_mut!(listing);
        while let Some(meta) = listing.try_next().await? {
            if self
                .read(op, ns, &meta.location)
                .await?
                .is_some_and(|c| c.live.is_some())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn kv_list_namespaces(&self) -> Result<Vec<String>> {
        const OP: &str = "list_namespaces";
        let root = self.inner.layout.root();
        let listing = self
            .inner
            .store
            .list_with_delimiter(root.as_ref())
            .await
            .map_err(|e| map_err(At::new(OP, BACKEND), e))?;
        let mut out = Vec::new();
        for dir in listing.common_prefixes {
            let Some(ns) = self.inner.layout.namespace_of(&dir) else {
                continue;
            };
            if self.has_live(OP, &ns).await? {
                out.push(ns);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn kv_drop_namespace(&self, ns: &str) -> Result<bool> {
        const OP: &str = "drop_namespace";
        self.check().namespace(OP, ns)?;
        let had = self.has_live(OP, ns).await?;
        self.delete_all(OP, ns, &self.inner.layout.namespace(ns))
            .await?;
        Ok(had)
    }

    /// Deletes every object under `dir` (tombstones included).
    pub(crate) async fn delete_all(&self, op: &'static str, scope: &str, dir: &Path) -> Result<()> {
        let at = At::scoped(op, BACKEND, scope);
        let locations = self
            .inner
            .store
            .list(Some(dir))
            .map_ok(|m| m.location)
            .boxed();
        let mut deleted = self.inner.store.delete_stream(locations);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) => {}
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(map_err(at, e)),
            }
        }
        Ok(())
    }
}

storage_core::forward_kv_store!(RemoteStore, BACKEND, |s| s.inner.caps);
