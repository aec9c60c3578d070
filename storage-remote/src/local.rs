//! A local directory as an [`ObjectStore`] with real conditional writes.
//!
//! object_store's `LocalFileSystem` refuses `PutMode::Update`, and its
//! ETag (inode, mtime, size) can repeat when an inode is reused within
//! one mtime tick. [`LocalDirStore`] delegates listing to
//! `LocalFileSystem` and implements writes, reads and deletes itself:
//!
//! - **ETag** = the first 128 bits of the SHA-256 of the content, quoted
//!   (a content hash, like S3's MD5 ETags: identical bytes, identical
//!   ETag; stores over it declare `atomic_content_hash_versions`).
//! - **Every mutation** (put in any mode, delete, copy, multipart
//!   completion) runs under an exclusive `flock` (crate `fs4`) on one of
//!   64 lock files in `<dir>/.locks/`, picked by a hash of the object path.
//!   `flock` locks belong to an open file description, so they exclude
//!   other threads of this process (each call opens the lock file anew)
//!   as well as other processes; a crashed holder's lock is released by
//!   the kernel.
//! - Under the lock a conditional put reads the current file's hash,
//!   compares, writes the new content to a staging file
//!   (`<name>#<digits>`, which listings skip) and `rename`s it over the
//!   target: readers see the old or the new file, never a torn one.
//! - Reads take no lock: a read opens the file once, hashes it from that
//!   handle and serves the same handle, so the ETag always describes the
//!   bytes served even if a writer renames a new file over it meanwhile.
//!
//! With `fsync` on (the default) a write is flushed, and its directory
//! too, before the call returns.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use fs4::FileExt;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, Result, UpdateVersion, UploadPart,
};
use sha2::{Digest, Sha256};

use crate::error::io_err;

/// Lock files (stripes) per store.
const STRIPES: u64 = 64;

/// Directory of the lock files, inside the store directory.
const LOCK_DIR: &str = ".locks";

const STORE: &str = "LocalDirStore";

/// A local directory with conditional writes that are atomic across
/// threads and processes (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct LocalDirStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    fs: Arc<LocalFileSystem>,
    fsync: bool,
}

impl fmt::Debug for LocalDirStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDirStore")
            .field("root", &self.inner.root)
            .field("fsync", &self.inner.fsync)
            .finish()
    }
}

impl fmt::Display for LocalDirStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalDirStore({})", self.inner.root.display())
    }
}

fn generic(msg: impl Into<String>) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: msg.into().into(),
    }
}

/// The ETag of some content: quoted hex of the first 16 bytes of its
/// SHA-256.
fn etag_of(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn hash_file(file: &mut File, path: &std::path::Path) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_err("read", path, e))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok((etag_of(hasher), len))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| generic(format!("blocking task failed: {e}")))?
}

impl LocalDirStore {
    /// Opens (creating it if needed) the directory `dir`, with `fsync` on.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir.join(LOCK_DIR)).map_err(|e| io_err("create", dir, e))?;
        let root = dir.canonicalize().map_err(|e| io_err("open", dir, e))?;
        let fs = Arc::new(LocalFileSystem::new_with_prefix(&root)?);
        Ok(LocalDirStore {
            inner: Arc::new(Inner {
                root,
                fs,
                fsync: true,
            }),
        })
    }

    /// Turns `fsync` on or off (off: faster, an acknowledged write may be
    /// lost in a power failure; atomicity is unchanged).
    pub fn with_fsync(self, fsync: bool) -> Self {
        LocalDirStore {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                fs: self.inner.fs.clone(),
                fsync,
            }),
        }
    }

    /// The ETag of the empty object (a tombstone of the KV adapter): this
    /// store's hash of no bytes.
    pub(crate) fn empty_etag() -> String {
        etag_of(Sha256::new())
    }

    /// The directory.
    pub fn root(&self) -> &std::path::Path {
        &self.inner.root
    }

    fn file_of(&self, location: &Path) -> Result<PathBuf> {
        if location
            .parts()
            .next()
            .is_some_and(|p| p.as_ref() == LOCK_DIR)
        {
            return Err(generic(format!("{location} is reserved for lock files")));
        }
        self.inner.fs.path_to_filesystem(location)
    }

    /// Takes the exclusive lock guarding `location`; released when the
    /// returned file is dropped (closed).
    fn lock(&self, location: &Path) -> Result<File> {
        let digest = Sha256::digest(location.as_ref().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
        let stripe = u64::from_be_bytes(first) % STRIPES;
        let path = self
            .inner
            .root
            .join(LOCK_DIR)
            .join(format!("{stripe:02}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open lock", &path, e))?;
        // fs4's flock (std's `File::lock` is newer than this crate's MSRV).
        FileExt::lock(&file).map_err(|e| io_err("lock", &path, e))?;
        Ok(file)
    }

    /// Writes `data` to `path` via a staging file and a rename.
    fn write_atomic(&self, path: &std::path::Path, data: &PutPayload) -> Result<String> {
        let parent = path
            .parent()
            .ok_or_else(|| generic(format!("{} has no parent", path.display())))?;
        std::fs::create_dir_all(parent).map_err(|e| io_err("create", parent, e))?;
        let name = path
            .file_name()
            .ok_or_else(|| generic(format!("{} has no file name", path.display())))?;
        // `<name>#<digits>`: a name LocalFileSystem's listing skips.
        let mut staging_name = name.to_os_string();
        staging_name.push(format!(
            "#{}",
            uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000
        ));
        let staging = parent.join(staging_name);
        let result = (|| {
            let mut f = File::create(&staging).map_err(|e| io_err("create", &staging, e))?;
            let mut hasher = Sha256::new();
            for chunk in data.iter() {
                hasher.update(chunk);
                f.write_all(chunk)
                    .map_err(|e| io_err("write", &staging, e))?;
            }
            if self.inner.fsync {
                f.sync_all().map_err(|e| io_err("sync", &staging, e))?;
            }
            drop(f);
            std::fs::rename(&staging, path).map_err(|e| io_err("rename", path, e))?;
            if self.inner.fsync {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err("sync", parent, e))?;
            }
            Ok(etag_of(hasher))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&staging);
        }
        result
    }

    /// The ETag of the file at `path`, or `None` if there is none.
    fn current_etag(path: &std::path::Path) -> Result<Option<String>> {
        match File::open(path) {
            Ok(mut f) => {
                if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                    return Ok(None);
                }
                Ok(Some(hash_file(&mut f, path)?.0))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("open", path, e)),
        }
    }

    fn put_blocking(
        &self,
        location: &Path,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<PutResult> {
        let path = self.file_of(location)?;
        let _lock = self.lock(location)?;
        let current = Self::current_etag(&path)?;
        match (&mode, &current) {
            (PutMode::Overwrite, _) => {}
            (PutMode::Create, Some(_)) => {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "object exists".into(),
                })
            }
            (PutMode::Create, None) => {}
            (PutMode::Update(UpdateVersion { e_tag, .. }), cur) => {
                if e_tag.is_none() || cur.as_ref() != e_tag.as_ref() {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: format!("ETag {cur:?} does not match {e_tag:?}").into(),
                    });
                }
            }
        }
        let e_tag = self.write_atomic(&path, &payload)?;
        Ok(PutResult {
            e_tag: Some(e_tag),
            version: None,
            extensions: Default::default(),
        })
    }

    fn get_blocking(&self, location: Path, options: GetOptions) -> Result<GetResult> {
        let path = self.file_of(&location)?;
        let mut file = File::open(&path).map_err(|e| io_err("open", &path, e))?;
        let md = file.metadata().map_err(|e| io_err("stat", &path, e))?;
        if md.is_dir() {
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "is a directory".into(),
            });
        }
        let (e_tag, size) = hash_file(&mut file, &path)?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_err("seek", &path, e))?;
        let last_modified = md
            .modified()
            .map(chrono::DateTime::<chrono::Utc>::from)
            .unwrap_or_default();
        let meta = ObjectMeta {
            location,
            last_modified,
            size,
            e_tag: Some(e_tag),
            version: None,
        };
        options.check_preconditions(&meta)?;
        let range: Range<u64> = match &options.range {
            Some(r) => r
                .as_range(size)
                .map_err(|e| generic(format!("invalid range: {e}")))?,
            None => 0..size,
        };
        Ok(GetResult {
            payload: GetResultPayload::File(file, path),
            meta,
            range,
            attributes: Attributes::default(),
            extensions: Default::default(),
        })
    }

    fn delete_blocking(&self, location: &Path) -> Result<()> {
        let path = self.file_of(location)?;
        let _lock = self.lock(location)?;
        std::fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))
    }

    fn copy_blocking(&self, from: &Path, to: &Path, mode: CopyMode) -> Result<()> {
        let src = self.file_of(from)?;
        let dst = self.file_of(to)?;
        let data = std::fs::read(&src).map_err(|e| io_err("read", &src, e))?;
        let _lock = self.lock(to)?;
        if mode == CopyMode::Create && Self::current_etag(&dst)?.is_some() {
            return Err(object_store::Error::AlreadyExists {
                path: to.to_string(),
                source: "object exists".into(),
            });
        }
        self.write_atomic(&dst, &PutPayload::from(Bytes::from(data)))
            .map(|_| ())
    }

    /// A listing without the lock files, with this store's ETags left out
    /// (computing them would read every file; reads report them).
    fn visible(meta: ObjectMeta) -> Option<ObjectMeta> {
        if meta
            .location
            .parts()
            .next()
            .is_some_and(|p| p.as_ref() == LOCK_DIR)
        {
            return None;
        }
        Some(ObjectMeta {
            e_tag: None,
            version: None,
            ..meta
        })
    }
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if !opts.attributes.is_empty() {
            return Err(object_store::Error::NotImplemented {
                operation: "`put_opts` with attributes".into(),
                implementer: STORE.into(),
            });
        }
        let this = self.clone();
        let location = location.clone();
        blocking(move || this.put_blocking(&location, payload, opts.mode)).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.file_of(location)?;
        let inner = self.inner.fs.put_multipart_opts(location, opts).await?;
        Ok(Box::new(LockedUpload {
            inner,
            store: self.clone(),
            location: location.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let this = self.clone();
        let location = location.clone();
        blocking(move || this.get_blocking(location, options)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        locations
            .map(move |p| {
                let this = this.clone();
                async move {
                    let p = p?;
                    let q = p.clone();
                    blocking(move || this.delete_blocking(&q)).await?;
                    Ok(p)
                }
            })
            .buffered(8)
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner
            .fs
            .list(prefix)
            .try_filter_map(|m| futures::future::ready(Ok(Self::visible(m))))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner
            .fs
            .list_with_offset(prefix, offset)
            .try_filter_map(|m| futures::future::ready(Ok(Self::visible(m))))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut r = self.inner.fs.list_with_delimiter(prefix).await?;
        r.common_prefixes
            .retain(|p| p.parts().next().is_none_or(|s| s.as_ref() != LOCK_DIR));
        r.objects = r.objects.into_iter().filter_map(Self::visible).collect();
        Ok(r)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let this = self.clone();
        let (from, to) = (from.clone(), to.clone());
        blocking(move || this.copy_blocking(&from, &to, options.mode)).await
    }
}

/// A multipart upload whose completion (the rename into place) runs
/// under the object's lock and reports this store's content-hash ETag.
#[derive(Debug)]
struct LockedUpload {
    inner: Box<dyn MultipartUpload>,
    store: LocalDirStore,
    location: Path,
}

#[async_trait]
impl MultipartUpload for LockedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let (store, location) = (self.store.clone(), self.location.clone());
        let lock = blocking(move || store.lock(&location)).await?;
        self.inner.complete().await?;
        let path = self.store.file_of(&self.location)?;
        let e_tag = blocking(move || {
            let mut f = File::open(&path).map_err(|e| io_err("open", &path, e))?;
            Ok(hash_file(&mut f, &path)?.0)
        })
        .await?;
        drop(lock);
        Ok(PutResult {
            e_tag: Some(e_tag),
            version: None,
            extensions: Default::default(),
        })
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
