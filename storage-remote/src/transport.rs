//! Snapshot transport: database files (SQLite, DuckDB, exported
//! snapshots) moved to and from any object store, with conditional
//! upload and a fenced writer lease.
//!
//! # Layout (under the transport's prefix)
//!
//! - `snapshots/<name>`: the **manifest**, a small JSON object naming the
//!   current blob, its size and SHA-256, the highest fencing token that
//!   wrote it and when. The manifest's ETag is the snapshot's
//!   [`Version`].
//! - `blobs/<name>/<uuid>`: the file's bytes, written once, never
//!   overwritten. Large files go up by multipart upload.
//! - `leases/<name>`: the writer lease (holder, fencing token, expiry).
//!
//! # Why a manifest
//!
//! object_store's multipart uploads take no write condition, so a large
//! file cannot be uploaded "if absent / if version" directly. Instead the
//! bytes go to a fresh blob first and the upload *commits* by one
//! conditional write of the manifest (`If-None-Match: *` or `If-Match`):
//! that write is the atomic step, and its response's ETag is the new
//! version (no read after the write). A loser's commit fails with
//! `Conflict` and its blob is deleted: its bytes never appear under the
//! name. A superseded blob is deleted after the commit; a download that
//! was reading it re-reads the manifest and fetches the new one. Every
//! download is checked against the manifest's SHA-256.
//!
//! A manifest whose blob is `null` means "absent" (a deleted snapshot, or
//! only a fence): reads treat it as missing, and an upload "if absent"
//! replaces it by `If-Match` on its ETag.
//!
//! # Lease and fencing
//!
//! [`SnapshotTransport::acquire`] takes the lease by a conditional write
//! of the lease object; each new holder gets the previous token + 1 (the
//! lease object is never deleted, so tokens only grow). Expiry is read
//! from the injected [`Clock`](storage_core::Clock). After taking the
//! lease, `acquire` also raises the manifest's fencing token to its own
//! (by `If-Match`), so from the moment `acquire` returns, every commit of
//! an older holder fails: an upload with a [`Lease`] checks the manifest's
//! token is not above its own and commits by `If-Match` on the manifest it
//! checked. An upload also refuses to start when the lease object no
//! longer names it (taken over or released).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode as OsPutMode, PutPayload, PutResult,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storage_core::{Context, Error, Result, SharedClock, Timestamp, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{is_absent, map_err};
use crate::keys::escape;
use crate::kv::{condition, token};

/// Backend name of transport errors.
const BACKEND: &str = "remote-transport";

/// How often a commit retries after losing a race that leaves its
/// condition still true (an unconditional upload, or a fence-only
/// manifest appearing).
const MAX_ATTEMPTS: usize = 32;

fn ctx(op: &'static str, name: &str) -> Context {
    Context::scoped(op, BACKEND, name)
}

fn conflict(op: &'static str, name: &str, current: Option<Version>) -> Error {
    Error::Conflict {
        ctx: ctx(op, name),
        current,
        index: None,
    }
}

fn io(op: &'static str, name: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return Error::not_found(ctx(op, name), format!("local file: {e}"));
    }
    Error::Backend {
        ctx: ctx(op, name),
        source: Box::new(e),
    }
}

/// Options of a [`SnapshotTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Objects live under `<prefix>/` (same rules as
    /// [`RemoteConfig::prefix`](crate::RemoteConfig::prefix)).
    pub prefix: String,
    /// Files of at least this many bytes go up by multipart upload.
    pub multipart_threshold: u64,
    /// Size of each multipart part (S3 needs ≥ 5 MiB except the last).
    pub part_size: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            prefix: String::new(),
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
        }
    }
}

/// When an upload may commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UploadCondition {
    /// Always (replaces whatever is there).
    #[default]
    Always,
    /// Only if no snapshot of that name exists.
    IfAbsent,
    /// Only if the snapshot's current version is this one.
    IfVersion(Version),
}

/// A committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: String,
    /// Its version (the manifest's ETag, from the commit itself).
    pub version: Version,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The fencing token of the writer that committed it (0: none).
    pub fence: u64,
    /// When it was committed, by the transport's clock.
    pub uploaded_at: Timestamp,
}

/// A held writer lease: present it to [`SnapshotTransport::upload`] to
/// have stale holders fenced out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The snapshot name it guards.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// The fencing token: larger than every earlier holder's.
    pub token: u64,
    /// When it lapses unless renewed, by the transport's clock.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    blob: Option<String>,
    size: u64,
    sha256: String,
    fence: u64,
    uploaded_at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    holder: Option<String>,
    token: u64,
    expires_at_ms: u64,
}

/// Uploads, downloads, lists and deletes snapshot files on an object
/// store (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct SnapshotTransport {
    store: Arc<dyn ObjectStore>,
    root: String,
    clock: SharedClock,
    config: TransportConfig,
}

impl std::fmt::Debug for SnapshotTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotTransport")
            .field("store", &self.store.to_string())
            .field("config", &self.config)
            .finish()
    }
}

/// What a read of a JSON object found: its parsed body and ETag token.
struct Found<T> {
    body: T,
    version: Version,
}

impl SnapshotTransport {
    /// A transport over `store`, reading time (lease expiry) from `clock`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: TransportConfig,
        clock: SharedClock,
    ) -> Result<Self> {
        let check = crate::RemoteStore::with_clock(
            store.clone(),
            crate::RemoteConfig::new(config.prefix.clone()),
            clock.clone(),
        )?;
        drop(check);
        if config.part_size == 0 {
            return Err(Error::invalid(
                ctx("open", ""),
                "part_size must be positive",
            ));
        }
        Ok(SnapshotTransport {
            store,
            root: config.prefix.trim_matches('/').to_owned(),
            clock,
            config,
        })
    }

    fn check_name(op: &'static str, name: &str) -> Result<()> {
        storage_core::validate::namespace(
            storage_core::At::scoped(op, BACKEND, name),
            &crate::CAPABILITIES,
            name,
        )
    }

    fn path(&self, kind: &str, rest: &str) -> Path {
        let s = if self.root.is_empty() {
            format!("{kind}/{rest}")
        } else {
            format!("{}/{kind}/{rest}", self.root)
        };
        Path::parse(&s).unwrap_or_else(|_| Path::from(s))
    }

    fn manifest_path(&self, name: &str) -> Path {
        self.path("snapshots", &escape(name.as_bytes()))
    }

    fn lease_path(&self, name: &str) -> Path {
        self.path("leases", &escape(name.as_bytes()))
    }

    fn blob_path(&self, name: &str, id: &str) -> Path {
        self.path("blobs", &format!("{}/{id}", escape(name.as_bytes())))
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        name: &str,
        path: &Path,
    ) -> Result<Option<Found<T>>> {
        let got = match self.store.get_opts(path, GetOptions::default()).await {
            Ok(g) => g,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(map_err(ctx(op, name), e)),
        };
        let meta = got.meta.clone();
        let raw = match got.bytes().await {
            Ok(b) => b,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(map_err(ctx(op, name), e)),
        };
        let body = serde_json::from_slice(&raw).map_err(|e| Error::Backend {
            ctx: ctx(op, name),
            source: format!("malformed transport object {path}: {e}").into(),
        })?;
        let version = token(meta.e_tag, meta.version).ok_or_else(|| Error::Backend {
            ctx: ctx(op, name),
            source: "the object store returned no ETag".into(),
        })?;
        Ok(Some(Found { body, version }))
    }

    /// Writes JSON at `path`: created if `expected` is `None`, else only
    /// over that version. `Ok(None)`: the condition did not hold.
    async fn write_json<T: Serialize>(
        &self,
        op: &'static str,
        name: &str,
        path: &Path,
        body: &T,
        expected: Option<&Version>,
    ) -> Result<Option<Version>> {
        let raw = serde_json::to_vec(body).map_err(|e| Error::Backend {
            ctx: ctx(op, name),
            source: Box::new(e),
        })?;
        let mode = match expected {
            None => OsPutMode::Create,
            Some(v) => match condition(v) {
                Some(c) => OsPutMode::Update(c),
                None => return Ok(None),
            },
        };
        let opts = object_store::PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(Bytes::from(raw)), opts)
            .await
        {
            Ok(PutResult { e_tag, version, .. }) => {
                Ok(Some(token(e_tag, version).ok_or_else(|| {
                    Error::Backend {
                        ctx: ctx(op, name),
                        source: "the object store returned no ETag".into(),
                    }
                })?))
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(map_err(ctx(op, name), e)),
        }
    }

    fn info(name: &str, m: &Manifest, version: Version) -> SnapshotInfo {
        SnapshotInfo {
            name: name.to_owned(),
            version,
            size: m.size,
            sha256: m.sha256.clone(),
            fence: m.fence,
            uploaded_at: Timestamp::from_millis(m.uploaded_at_ms),
        }
    }

    /// Uploads the file at `local` as snapshot `name` if `condition`
    /// holds, fenced by `lease` when given; returns the committed version
    /// (from the commit's own response).
    ///
    /// # Errors
    ///
    /// `Conflict` when the condition does not hold, or when `lease` is no
    /// longer the current lease (another writer took over: the upload is
    /// fenced out). Nothing of a refused upload remains visible.
    pub async fn upload(
        &self,
        local: impl AsRef<FsPath>,
        name: &str,
        condition: UploadCondition,
        lease: Option<&Lease>,
    ) -> Result<SnapshotInfo> {
        const OP: &str = "upload";
        Self::check_name(OP, name)?;
        if let Some(l) = lease {
            if l.name != name {
                return Err(Error::invalid(
                    ctx(OP, name),
                    "the lease guards another snapshot",
                ));
            }
            self.check_lease_current(OP, l).await?;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let blob = self.blob_path(name, &id);
        let (size, sha256) = self.put_blob(OP, name, local.as_ref(), &blob).await?;
        let committed = self
            .commit(OP, name, &condition, lease, Some(id), size, sha256)
            .await;
        match committed {
            Ok((info, old_blob)) => {
                if let Some(old) = old_blob {
                    let _ = self.store.delete(&self.blob_path(name, &old)).await;
                }
                Ok(info)
            }
            Err(e) => {
                // The loser's bytes never become visible: drop the blob.
                let _ = self.store.delete(&blob).await;
                Err(e)
            }
        }
    }

    /// Refuses when the lease object no longer names this lease.
    async fn check_lease_current(&self, op: &'static str, l: &Lease) -> Result<()> {
        let now = self.clock.now();
        let cur = self
            .read_json::<LeaseRecord>(op, &l.name, &self.lease_path(&l.name))
            .await?;
        let ok = cur.is_some_and(|c| {
            c.body.token == l.token
                && c.body.holder.as_deref() == Some(l.holder.as_str())
                && Timestamp::from_millis(c.body.expires_at_ms) > now
        });
        if ok {
            Ok(())
        } else {
            Err(conflict(op, &l.name, None))
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        op: &'static str,
        name: &str,
        condition: &UploadCondition,
        lease: Option<&Lease>,
        blob: Option<String>,
        size: u64,
        sha256: String,
    ) -> Result<(SnapshotInfo, Option<String>)> {
        let path = self.manifest_path(name);
        for _ in 0..MAX_ATTEMPTS {
            let cur = self.read_json::<Manifest>(op, name, &path).await?;
            let live = cur
                .as_ref()
                .filter(|c| c.body.blob.is_some())
                .map(|c| c.version.clone());
            let holds = match condition {
                UploadCondition::Always => true,
                UploadCondition::IfAbsent => live.is_none(),
                UploadCondition::IfVersion(v) => live.as_ref() == Some(v),
            };
            if !holds {
                return Err(conflict(op, name, live));
            }
            let old_fence = cur.as_ref().map_or(0, |c| c.body.fence);
            let fence = match lease {
                Some(l) if old_fence > l.token => return Err(conflict(op, name, live)),
                Some(l) => l.token,
                None => old_fence,
            };
            let manifest = Manifest {
                blob: blob.clone(),
                size,
                sha256: sha256.clone(),
                fence,
                uploaded_at_ms: self.clock.now().as_millis(),
            };
            let expected = cur.as_ref().map(|c| &c.version);
            if let Some(version) = self
                .write_json(op, name, &path, &manifest, expected)
                .await?
            {
                let old = cur.and_then(|c| c.body.blob);
                return Ok((Self::info(name, &manifest, version), old));
            }
        }
        Err(Error::Unavailable {
            ctx: ctx(op, name),
            source: format!("commit lost {MAX_ATTEMPTS} races in a row").into(),
        })
    }

    /// Streams the local file into a blob; returns its size and SHA-256.
    async fn put_blob(
        &self,
        op: &'static str,
        name: &str,
        local: &FsPath,
        blob: &Path,
    ) -> Result<(u64, String)> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| io(op, name, e))?;
        let len = file.metadata().await.map_err(|e| io(op, name, e))?.len();
        let mut hasher = Sha256::new();
        if len < self.config.multipart_threshold {
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut buf)
                .await
                .map_err(|e| io(op, name, e))?;
            hasher.update(&buf);
            let size = buf.len() as u64;
            self.store
                .put(blob, PutPayload::from(Bytes::from(buf)))
                .await
                .map_err(|e| map_err(ctx(op, name), e))?;
            return Ok((size, hex::encode(hasher.finalize())));
        }
        let mut upload = self
            .store
            .put_multipart(blob)
            .await
            .map_err(|e| map_err(ctx(op, name), e))?;
        let mut size = 0u64;
        let result: Result<()> = async {
            loop {
                let mut part = vec![0u8; self.config.part_size];
                let mut filled = 0;
                while filled < part.len() {
                    let n = file
                        .read(part.get_mut(filled..).unwrap_or_default())
                        .await
                        .map_err(|e| io(op, name, e))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                part.truncate(filled);
                hasher.update(&part);
                size += filled as u64;
                upload
                    .put_part(PutPayload::from(Bytes::from(part)))
                    .await
                    .map_err(|e| map_err(ctx(op, name), e))?;
                if filled < self.config.part_size {
                    break;
                }
            }
            upload
                .complete()
                .await
                .map_err(|e| map_err(ctx(op, name), e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = upload.abort().await;
            return Err(e);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// The current version of snapshot `name`, or `None`.
    pub async fn head(&self, name: &str) -> Result<Option<SnapshotInfo>> {
        const OP: &str = "head";
        Self::check_name(OP, name)?;
        let cur = self
            .read_json::<Manifest>(OP, name, &self.manifest_path(name))
            .await?;
        Ok(cur
            .filter(|c| c.body.blob.is_some())
            .map(|c| Self::info(name, &c.body, c.version)))
    }

    /// Downloads snapshot `name` to `local` (written to a temporary file
    /// beside it, checked against the manifest's SHA-256, then renamed
    /// into place). `NotFound` if there is no such snapshot.
    pub async fn download(&self, name: &str, local: impl AsRef<FsPath>) -> Result<SnapshotInfo> {
        const OP: &str = "download";
        Self::check_name(OP, name)?;
        let local = local.as_ref();
        for _ in 0..MAX_ATTEMPTS {
            let Some(cur) = self
                .read_json::<Manifest>(OP, name, &self.manifest_path(name))
                .await?
            else {
                break;
            };
            let Some(id) = cur.body.blob.clone() else {
                break;
            };
            let got = match self.store.get(&self.blob_path(name, &id)).await {
                Ok(g) => g,
                // Superseded and cleaned up since the manifest was read.
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(map_err(ctx(OP, name), e)),
            };
            let tmp = temp_beside(local);
            let written = async {
                let mut out = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(|e| io(OP, name, e))?;
                let mut hasher = Sha256::new();
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| map_err(ctx(OP, name), e))?;
                    hasher.update(&chunk);
                    out.write_all(&chunk).await.map_err(|e| io(OP, name, e))?;
                }
                out.sync_all().await.map_err(|e| io(OP, name, e))?;
                Ok::<_, Error>(hex::encode(hasher.finalize()))
            }
            .await;
            let sha = match written {
                Ok(s) => s,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e);
                }
            };
            if sha != cur.body.sha256 {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(Error::Backend {
                    ctx: ctx(OP, name),
                    source: format!(
                        "downloaded bytes hash to {sha}, the manifest says {}",
                        cur.body.sha256
                    )
                    .into(),
                });
            }
            tokio::fs::rename(&tmp, local)
                .await
                .map_err(|e| io(OP, name, e))?;
            return Ok(Self::info(name, &cur.body, cur.version));
        }
        Err(Error::not_found(ctx(OP, name), "no such snapshot"))
    }

    /// Snapshots whose names start with `prefix`, sorted by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<SnapshotInfo>> {
        const OP: &str = "list";
        let dir = if self.root.is_empty() {
            Path::from("snapshots")
        } else {
            let s = format!("{}/snapshots", self.root);
            Path::parse(&s).unwrap_or_else(|_| Path::from(s))
        };
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| map_err(ctx(OP, prefix), e))?;
        let mut out = Vec::new();
        for m in metas {
            let Some(seg) = m.location.filename() else {
                continue;
            };
            let Some(name) = crate::keys::unescape(seg).and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            if !name.starts_with(prefix) {
                continue;
            }
            if let Some(info) = self.head(&name).await? {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes snapshot `name` (only at version `expected` when given);
    /// `true` if one existed. The manifest stays as an "absent" marker
    /// carrying the fencing token.
    pub async fn delete(&self, name: &str, expected: Option<&Version>) -> Result<bool> {
        const OP: &str = "delete";
        Self::check_name(OP, name)?;
        let path = self.manifest_path(name);
        for _ in 0..MAX_ATTEMPTS {
            let Some(cur) = self.read_json::<Manifest>(OP, name, &path).await? else {
                return match expected {
                    Some(_) => Err(conflict(OP, name, None)),
                    None => Ok(false),
                };
            };
            let live = cur.body.blob.is_some().then(|| cur.version.clone());
            if let Some(v) = expected {
                if live.as_ref() != Some(v) {
                    return Err(conflict(OP, name, live));
                }
            }
            let Some(old) = cur.body.blob.clone() else {
                return Ok(false);
            };
            let marker = Manifest {
                blob: None,
                size: 0,
                sha256: String::new(),
                fence: cur.body.fence,
                uploaded_at_ms: self.clock.now().as_millis(),
            };
            if self
                .write_json(OP, name, &path, &marker, Some(&cur.version))
                .await?
                .is_some()
            {
                let _ = self.store.delete(&self.blob_path(name, &old)).await;
                return Ok(true);
            }
        }
        Err(Error::Unavailable {
            ctx: ctx(OP, name),
            source: format!("delete lost {MAX_ATTEMPTS} races in a row").into(),
        })
    }

    /// Takes the writer lease of `name` for `ttl`, unless another holder
    /// has it unexpired (then `AlreadyExists`). Returns with the manifest
    /// already fenced: no earlier holder can commit after this returns.
    pub async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease> {
        const OP: &str = "acquire";
        Self::check_name(OP, name)?;
        let path = self.lease_path(name);
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let cur = self.read_json::<LeaseRecord>(OP, name, &path).await?;
            if let Some(c) = &cur {
                let held = c.body.holder.as_deref().is_some_and(|h| h != holder)
                    && Timestamp::from_millis(c.body.expires_at_ms) > now;
                if held {
                    return Err(Error::AlreadyExists {
                        ctx: ctx(OP, name),
                        what: format!(
                            "lease held by {:?} until {}ms",
                            c.body.holder.as_deref().unwrap_or(""),
                            c.body.expires_at_ms
                        ),
                    });
                }
            }
            let token = cur.as_ref().map_or(0, |c| c.body.token).saturating_add(1);
            let expires_at = now.saturating_add(ttl);
            let rec = LeaseRecord {
                holder: Some(holder.to_owned()),
                token,
                expires_at_ms: expires_at.as_millis(),
            };
            let expected = cur.as_ref().map(|c| &c.version);
            if self
                .write_json(OP, name, &path, &rec, expected)
                .await?
                .is_some()
            {
                self.fence(name, token).await?;
                return Ok(Lease {
                    name: name.to_owned(),
                    holder: holder.to_owned(),
                    token,
                    expires_at,
                });
            }
        }
        Err(Error::Unavailable {
            ctx: ctx(OP, name),
            source: format!("acquire lost {MAX_ATTEMPTS} races in a row").into(),
        })
    }

    /// Raises the manifest's fencing token to `token` (creating an
    /// "absent" manifest if there is none).
    async fn fence(&self, name: &str, token: u64) -> Result<()> {
        const OP: &str = "acquire";
        let path = self.manifest_path(name);
        for _ in 0..MAX_ATTEMPTS {
            let cur = self.read_json::<Manifest>(OP, name, &path).await?;
            let mut m = match &cur {
                Some(c) if c.body.fence >= token => return Ok(()),
                Some(c) => c.body.clone(),
                None => Manifest {
                    blob: None,
                    size: 0,
                    sha256: String::new(),
                    fence: 0,
                    uploaded_at_ms: self.clock.now().as_millis(),
                },
            };
            m.fence = token;
            let expected = cur.as_ref().map(|c| &c.version);
            if self
                .write_json(OP, name, &path, &m, expected)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(Error::Unavailable {
            ctx: ctx(OP, name),
            source: format!("fencing lost {MAX_ATTEMPTS} races in a row").into(),
        })
    }

    /// Extends a held lease by `ttl` from now. `Conflict` if it was taken
    /// over or released meanwhile.
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.rewrite_lease("renew", lease, Some(ttl)).await
    }

    /// Gives a held lease up (its token stays, so the next holder's is
    /// larger). `Conflict` if it was taken over meanwhile.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        self.rewrite_lease("release", lease, None).await.map(|_| ())
    }

    async fn rewrite_lease(
        &self,
        op: &'static str,
        lease: &Lease,
        ttl: Option<Duration>,
    ) -> Result<Lease> {
        let name = lease.name.as_str();
        Self::check_name(op, name)?;
        let path = self.lease_path(name);
        let cur = self.read_json::<LeaseRecord>(op, name, &path).await?;
        let Some(cur) = cur.filter(|c| {
            c.body.token == lease.token && c.body.holder.as_deref() == Some(lease.holder.as_str())
        }) else {
            return Err(conflict(op, name, None));
        };
        let now = self.clock.now();
        let (holder, expires_at) = match ttl {
            Some(t) => (Some(lease.holder.clone()), now.saturating_add(t)),
            None => (None, Timestamp::ZERO),
        };
        let rec = LeaseRecord {
            holder,
            token: lease.token,
            expires_at_ms: expires_at.as_millis(),
        };
        match self
            .write_json(op, name, &path, &rec, Some(&cur.version))
            .await?
        {
            Some(_) => Ok(Lease {
                expires_at,
                ..lease.clone()
            }),
            None => Err(conflict(op, name, None)),
        }
    }
}

/// A temporary file name beside `path`.
fn temp_beside(path: &FsPath) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".part-{}", uuid::Uuid::new_v4().simple()));
    path.with_file_name(name)
}
