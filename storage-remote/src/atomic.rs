//! The CAS tier on an object store: versioned reads, conditional puts and
//! deletes. Multi-key transactions are `Unsupported` (object stores have
//! no multi-object atomic write, and emulating one would need a lock
//! object that every plain write also honours).
//!
//! # Tokens
//!
//! A version token (`token.rs`) names the ETag the store returned from
//! the write itself (`PutResult::e_tag`, plus the object version where
//! the store versions objects), never one from a `HEAD` after it: a read
//! after the write could see a later writer's object. It also carries
//! the entry's expiry instant, the one written in the object's header
//! (`record.rs`), so a token says whether the entry it names is expired.
//! Reads and scans hand out the same form, built from the response's
//! ETag and the header they decoded. A string that does not parse as a
//! token is one this store cannot have issued: `Conflict`, never
//! `InvalidInput`.
//!
//! # Conditional writes
//!
//! - `Create` is `PUT If-None-Match: *`. If an object is there but counts
//!   as absent (a tombstone, or an expired entry), the write becomes
//!   `PUT If-Match: <that object's ETag>`; losing either race re-reads and
//!   tries again, so two creators never both win.
//! - `Update(v)` and `delete_if(v)` are `PUT If-Match: v`; the store checks
//!   the condition and writes in one step. The token must not name a
//!   dead object (an expired entry, or a tombstone), which `If-Match`
//!   alone would accept. How that is ruled out depends on the ETags:
//!
//!   - **Content-hash ETags** (S3, [`LocalDirStore`](crate::LocalDirStore);
//!     [`CONTENT_HASH_CAPABILITIES`](crate::CONTENT_HASH_CAPABILITIES)):
//!     no read first. The token is refused on the client if its expiry
//!     is at or before now (store clock), or if its ETag is the
//!     tombstone's, which on such a store is one constant: S3's quoted
//!     MD5 of no bytes, `LocalDirStore`'s SHA-256 prefix of no bytes, or
//!     (over any other store declared content-hash) the ETag of the
//!     first tombstone this handle wrote or read; until then the read
//!     path below is used. Otherwise the `If-Match` PUT goes out
//!     directly: two requests per read-modify-write, as with raw
//!     object_store.
//!
//!     This is exact for every token the adapter issued: `If-Match`
//!     succeeds only on an object with that ETag, and on a content-hash
//!     store that is an object with the same bytes as the one the token
//!     was issued for (on a store with per-write ETags, that very
//!     object), so its header holds the expiry the token carries, and it
//!     is live now exactly when the token says so. Issued tokens always
//!     name live records, never the empty object. The expiry is judged
//!     just before the PUT, as the read path judges it just before its
//!     PUT.
//!
//!     A **forged** token is another matter: whoever knows an object's
//!     bytes knows its content-hash ETag (already declared by
//!     `atomic_content_hash_versions`), so they can build a token with
//!     the right ETag and any expiry or object version (`If-Match`
//!     checks only the ETag). With a wrong expiry still in the future, or
//!     a wrong object version, it matches the live object as the issued
//!     token would; with expiry `-` (never) it can overwrite or delete an
//!     entry that has expired but whose object is still there, which the
//!     read path would refuse.
//!     A forged tombstone ETag is refused, in any spelling `If-Match`
//!     might equate (quotes, `W/`, case), so a deleted key cannot be
//!     brought back by `Update`. Tokens are not credentials; anyone
//!     able to forge one can also plainly `put` the key.
//!   - **Per-write ETags that a caller could guess** (object_store's
//!     `InMemory` counts writes;
//!     [`CAPABILITIES`](crate::CAPABILITIES)): the adapter reads the key
//!     first and sends the `If-Match` PUT only if the object is live and
//!     names the same state as `v` (tags aside). A tombstone's or an
//!     expired entry's ETag, however guessed, never matches. Three
//!     requests instead of two.
//!
//!     Except for a token **this handle tagged** (`token.rs`; only
//!     [`RemoteStore::in_memory`](crate::RemoteStore::in_memory), whose
//!     store no other handle writes through the adapter) for this very
//!     path: it was issued for a live record this handle wrote or read
//!     there, never for a tombstone or an expired entry, and on a store
//!     with per-write ETags `If-Match` succeeds only on that very object.
//!     So, as on a content-hash store, it is refused on the client if its
//!     expiry is at or before now and otherwise sent as the `If-Match`
//!     PUT directly: two requests, as with raw object_store. A tag that
//!     does not check out (forged, or another handle's) takes the read
//!     above.
//!
//!   On refusal (on the client, or a 412 / 404 from the store) the key is
//!   read to report its current live version in the `Conflict`.
//!
//! # Conditional delete (object_store has none)
//!
//! `delete_if(v)` writes a **tombstone** (an empty object) with
//! `If-Match: v`. That write is the atomic step: it succeeds exactly when
//! the key still has version `v`, and a concurrent writer either lands
//! before it (the delete then fails with `Conflict`) or after it (on top
//! of the tombstone, by `If-Match` on the tombstone's ETag). Every read,
//! scan and listing treats a tombstone as absent, and plain puts and
//! deletes replace or remove it.
//!
//! Tombstones are **not** removed right after the delete: the only
//! removal object_store offers is an unconditional `DELETE`, which could
//! remove a value a concurrent `Create` has just written over the
//! tombstone (a lost write). They go with the next plain put or delete of
//! the key, with `drop_namespace`, or with
//! [`RemoteStore::purge_tombstones`](crate::RemoteStore::purge_tombstones)
//! run while no conditional writer is active. They are empty objects, so
//! scans skip them from the listing without reading them.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutMode as OsPutMode, PutPayload, PutResult};
use storage_core::{
    At, Context, Error, PutMode, PutOptions, Result, Timestamp, TxOp, Version, Versioned,
};

use crate::backend::RemoteStore;
use crate::config::BACKEND;
use crate::error::{is_absent, map_err};
use crate::kv::no_etag;
use crate::token::{loose_etag, EntryToken};

/// How often a `Create` retries after losing a race against a writer
/// that then vanished (deleted, or turned into a tombstone).
const MAX_ATTEMPTS: usize = 64;

fn conflict(op: &'static str, ns: &str, current: Option<Version>) -> Error {
    Error::Conflict {
        ctx: Context::scoped(op, BACKEND, ns),
        current,
        index: None,
    }
}

/// What a conditional write attempt came to.
enum Attempt {
    Written(PutResult),
    /// The condition did not hold (412, or 404 for `If-Match` on S3).
    Lost,
}

fn attempt(
    op: &'static str,
    ns: &str,
    r: std::result::Result<PutResult, object_store::Error>,
) -> Result<Attempt> {
    match r {
        Ok(p) => Ok(Attempt::Written(p)),
        Err(
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
        ) => Ok(Attempt::Lost),
        Err(e) if is_absent(&e) => Ok(Attempt::Lost),
        Err(e) => Err(map_err(At::scoped(op, BACKEND, ns), e)),
    }
}

impl RemoteStore {
    /// The token of a live record this handle has just written at `path`.
    fn issued(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
        r: PutResult,
        expires_at: Option<Timestamp>,
    ) -> Result<Version> {
        EntryToken::new(r.e_tag, r.version, expires_at)
            .map(|t| match &self.inner.tagger {
                Some(tagger) => tagger.tagged(path, t),
                None => t,
            })
            .map(|t| t.encode())
            .ok_or_else(|| no_etag(At::scoped(op, BACKEND, ns)))
    }

    /// Records the ETag of a tombstone on a content-hash store (the first
    /// one seen; on such a store every tombstone has it). A no-op on stores
    /// with per-write ETags, which never take the fast path.
    pub(crate) fn learn_tombstone(&self, e_tag: &str) {
        if self.inner.caps.atomic_content_hash_versions && !e_tag.is_empty() {
            // Already known: nothing to do.
            let _ = self.inner.tombstone_etag.set(e_tag.to_owned());
        }
    }

    /// The tombstone ETag, when `Update` / `delete_if` may skip their
    /// pre-read (see the module docs).
    fn fast_path(&self) -> Option<&str> {
        if !self.inner.caps.atomic_content_hash_versions {
            return None;
        }
        self.inner.tombstone_etag.get().map(String::as_str)
    }

    /// The live version now (for a `Conflict` report).
    async fn current(&self, op: &'static str, ns: &str, path: &Path) -> Result<Option<Version>> {
        Ok(self
            .read(op, ns, path)
            .await?
            .and_then(|c| c.live_version()))
    }

    async fn put_raw(
        &self,
        path: &Path,
        payload: Bytes,
        mode: OsPutMode,
    ) -> std::result::Result<PutResult, object_store::Error> {
        let opts = object_store::PutOptions {
            mode,
            ..Default::default()
        };
        self.inner
            .store
            .put_opts(path, PutPayload::from(payload), opts)
            .await
    }

    /// Writes `payload` at `path` only if its live version is `expected`.
    async fn replace_if(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
        payload: Bytes,
        expected: &Version,
    ) -> Result<PutResult> {
        let vouched = self
            .inner
            .tagger
            .as_ref()
            .and_then(|t| t.vouched(path, expected));
        let cond = match (vouched, self.fast_path()) {
            // Issued by this handle for a live record at this path: judge
            // it by its expiry (module docs: why this is exact); read only
            // to report a refusal.
            (Some(token), _) => (!token.expired_at(self.now()))
                .then(|| token.condition())
                .flatten(),
            // Judge the token by what it says (module docs: why this is
            // exact); read only to report a refusal.
            (None, Some(tombstone)) => {
                let now = self.now();
                EntryToken::parse(expected)
                    .filter(|t| !t.expired_at(now) && loose_etag(&t.e_tag) != loose_etag(tombstone))
                    .and_then(|t| t.condition())
            }
            // Per-write ETags a caller could guess: rule out dead objects
            // by reading first.
            (None, None) => {
                let current = self.read(op, ns, path).await?;
                // The same state, whichever handle tagged either token.
                let presented = EntryToken::parse(expected);
                let matches = current.as_ref().is_some_and(|c| {
                    c.live.is_some()
                        && EntryToken::parse(&c.version)
                            .zip(presented.as_ref())
                            .is_some_and(|(cur, p)| cur.same_state(p))
                });
                match EntryToken::parse(expected).and_then(|t| t.condition()) {
                    Some(c) if matches => Some(c),
                    _ => return Err(conflict(op, ns, current.and_then(|c| c.live_version()))),
                }
            }
        };
        let Some(cond) = cond else {
            return Err(conflict(op, ns, self.current(op, ns, path).await?));
        };
        match attempt(
            op,
            ns,
            self.put_raw(path, payload, OsPutMode::Update(cond)).await,
        )? {
            Attempt::Written(r) => Ok(r),
            Attempt::Lost => Err(conflict(op, ns, self.current(op, ns, path).await?)),
        }
    }

    /// Writes `payload` at `path` only if the key is absent (no object, a
    /// tombstone or an expired entry).
    async fn create(
        &self,
        op: &'static str,
        ns: &str,
        path: &Path,
        payload: Bytes,
        expires_at: Option<Timestamp>,
    ) -> Result<Version> {
        for _ in 0..MAX_ATTEMPTS {
            let first = self.put_raw(path, payload.clone(), OsPutMode::Create).await;
            if let Attempt::Written(r) = attempt(op, ns, first)? {
                return self.issued(op, ns, path, r, expires_at);
            }
            let Some(cur) = self.read(op, ns, path).await? else {
                // Gone again since the refusal: try the plain create again.
                continue;
            };
            if cur.live.is_some() {
                return Err(conflict(op, ns, Some(cur.version)));
            }
            // A tombstone or an expired entry: replace exactly that object.
            let Some(cond) = EntryToken::parse(&cur.version).and_then(|t| t.condition()) else {
                return Err(no_etag(At::scoped(op, BACKEND, ns)));
            };
            let over = self
                .put_raw(path, payload.clone(), OsPutMode::Update(cond))
                .await;
            if let Attempt::Written(r) = attempt(op, ns, over)? {
                return self.issued(op, ns, path, r, expires_at);
            }
        }
        Err(Error::Unavailable {
            ctx: Context::scoped(op, BACKEND, ns),
            source: format!(
                "create-if-absent lost {MAX_ATTEMPTS} races in a row against concurrent writers"
            )
            .into(),
        })
    }

    async fn cas_get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        const OP: &str = "get_versioned";
        self.check().ns_key(OP, ns, key)?;
        let path = self.inner.layout.key(ns, key);
        Ok(self.read(OP, ns, &path).await?.and_then(|c| {
            c.live.map(|(value, _)| Versioned {
                value,
                version: c.version,
            })
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
        let expires_at = self.expiry(OP, options.expiry)?;
        let path = self.inner.layout.key(ns, key);
        let payload = crate::record::Record::encode(&value, expires_at);
        match mode {
            PutMode::Overwrite => {
                let r = self
                    .put_raw(&path, payload, OsPutMode::Overwrite)
                    .await
                    .map_err(|e| map_err(At::scoped(OP, BACKEND, ns), e))?;
                self.issued(OP, ns, &path, r, expires_at)
            }
            PutMode::Create => self.create(OP, ns, &path, payload, expires_at).await,
            PutMode::Update(v) => {
                let r = self.replace_if(OP, ns, &path, payload, &v).await?;
                self.issued(OP, ns, &path, r, expires_at)
            }
        }
    }

    /// Always [`Error::Unsupported`]: [`Capabilities::transaction_scope`](storage_core::Capabilities::transaction_scope)
    /// is `None` (see the module docs).
    async fn cas_transact(&self, _ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        Err(Error::unsupported("transact", BACKEND))
    }

    async fn cas_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        const OP: &str = "delete_if";
        self.check().ns_key(OP, ns, key)?;
        let path = self.inner.layout.key(ns, key);
        // The tombstone is the empty object (see `record.rs`).
        let r = self
            .replace_if(OP, ns, &path, Bytes::new(), version)
            .await?;
        if let Some(e) = &r.e_tag {
            self.learn_tombstone(e);
        }
        Ok(())
    }
}

storage_core::forward_atomic_kv!(RemoteStore, BACKEND);
