//! The store handle and its constructors.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::memory::InMemory;
use object_store::{ObjectStore, RetryConfig};
use storage_core::{Capabilities, Context, Error, Result, SharedClock, SystemClock};

use crate::config::{
    RemoteConfig, S3Config, BACKEND, CAPABILITIES, CONTENT_HASH_CAPABILITIES, MAX_PREFIX_LEN,
};
use crate::keys::Layout;
use crate::local::LocalDirStore;
use crate::token::Tagger;

/// KV and CAS on any [`ObjectStore`]: S3 (and S3-compatible servers),
/// GCS, Azure, a local directory ([`LocalDirStore`]) or memory.
///
/// Cheap to clone; clones share the object store. Two stores with the
/// same prefix on the same bucket share their data. `Debug` shows the
/// object store's display name and the prefix, never credentials.
#[derive(Clone)]
pub struct RemoteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) layout: Layout,
    pub(crate) prefix: String,
    pub(crate) clock: SharedClock,
    pub(crate) caps: Capabilities,
    /// The ETag of a tombstone (the empty object) on a content-hash store,
    /// once known: set by the constructors that know their store's hash
    /// ([`RemoteStore::s3`], [`RemoteStore::local_dir`]), else learned from
    /// the first tombstone this handle writes or reads. While unset,
    /// conditional writes keep their pre-read (see `atomic.rs`).
    pub(crate) tombstone_etag: OnceLock<String>,
    /// [`RemoteConfig::ordered_listing`].
    pub(crate) ordered_listing: bool,
    /// Tags this handle's tokens (`token.rs`) where the store is private
    /// to it ([`RemoteStore::in_memory`]): a tagged token lets `Update`
    /// and `delete_if` skip their read on a store whose ETags a caller
    /// could guess (see `atomic.rs`). `None` elsewhere: tokens stay the
    /// same string across handles and processes.
    pub(crate) tagger: Option<Tagger>,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The object store's `Display` (e.g. `AmazonS3(bucket)`), never its
        // `Debug`: that walks into client configuration.
        f.debug_struct("RemoteStore")
            .field("store", &self.inner.store.to_string())
            .field("prefix", &self.inner.prefix)
            .field(
                "content_hash_etags",
                &self.inner.caps.atomic_content_hash_versions,
            )
            .finish()
    }
}

/// Checks a store prefix: `/`-separated segments of name characters.
fn check_prefix(prefix: &str) -> Result<()> {
    let ctx = || Context::new("open", BACKEND);
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(Error::invalid(
            ctx(),
            format!(
                "prefix is {} bytes, the limit is {MAX_PREFIX_LEN}",
                prefix.len()
            ),
        ));
    }
    if prefix.is_empty() {
        return Ok(());
    }
    for seg in prefix.split('/') {
        let ok = !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c != '/' && storage_core::validate::is_name_char(c));
        if !ok {
            return Err(Error::invalid(
                ctx(),
                format!(
                    "prefix segment {seg:?} is not allowed: non-empty, not . or .., made of \
                     ASCII letters, digits and _ - . :"
                ),
            ));
        }
    }
    Ok(())
}

impl RemoteStore {
    /// A store over `store` on the system clock.
    pub fn new(store: Arc<dyn ObjectStore>, config: RemoteConfig) -> Result<Self> {
        RemoteStore::with_clock(store, config, Arc::new(SystemClock))
    }

    /// A store over `store`, reading time (TTL) from `clock`.
    pub fn with_clock(
        store: Arc<dyn ObjectStore>,
        config: RemoteConfig,
        clock: SharedClock,
    ) -> Result<Self> {
        check_prefix(&config.prefix)?;
        let caps = if config.content_hash_etags {
            CONTENT_HASH_CAPABILITIES
        } else {
            CAPABILITIES
        };
        Ok(RemoteStore {
            inner: Arc::new(Inner {
                store,
                layout: Layout::new(&config.prefix),
                prefix: config.prefix,
                clock,
                caps,
                tombstone_etag: OnceLock::new(),
                ordered_listing: config.ordered_listing,
                tagger: None,
            }),
        })
    }

    /// A private store in process memory (object_store's `InMemory`,
    /// whose ETags are unique per write).
    pub fn in_memory(clock: SharedClock) -> Self {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        RemoteStore {
            inner: Arc::new(Inner {
                store,
                layout: Layout::new(""),
                prefix: String::new(),
                clock,
                caps: CAPABILITIES,
                tombstone_etag: OnceLock::new(),
                // InMemory lists a BTreeMap range: in path order.
                ordered_listing: true,
                tagger: Some(Tagger::default()),
            }),
        }
    }

    /// A store in a local directory, with conditional writes that are
    /// atomic across threads and processes (see [`LocalDirStore`]).
    pub fn local_dir(dir: impl AsRef<std::path::Path>, clock: SharedClock) -> Result<Self> {
        let store = LocalDirStore::open(dir)
            .map_err(|e| crate::error::map_err(Context::new("open", BACKEND), e))?;
        let tombstone = LocalDirStore::empty_etag();
        let this = RemoteStore::with_clock(Arc::new(store), RemoteConfig::new(""), clock)?;
        this.learn_tombstone(&tombstone);
        Ok(this)
    }

    /// A store on an S3 bucket (conditional writes by `If-Match` /
    /// `If-None-Match`; ETags are content hashes). Builds the client only;
    /// the first call reaches the endpoint.
    pub fn s3(config: &S3Config, clock: SharedClock) -> Result<Self> {
        let store = build_s3(config)?;
        let this = RemoteStore::with_clock(
            store,
            // ListObjectsV2 returns keys in UTF-8 binary order from `start-after`.
            RemoteConfig::new(config.prefix.clone()).with_ordered_listing(true),
            clock,
        )?;
        this.learn_tombstone(S3_EMPTY_ETAG);
        Ok(this)
    }

    /// The object store underneath.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The prefix every object of this store lives under.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

/// The ETag S3 gives an object written by a single `PUT` of no bytes: the
/// quoted MD5 of the empty string. (Under SSE-KMS / SSE-C S3 ETags are no
/// MD5 and differ per write; tombstone ETags are then unguessable, and
/// this constant simply never matches.)
const S3_EMPTY_ETAG: &str = "\"d41d8cd98f00b204e9800998ecf8427e\"";

/// An S3 client for `config`: path-style requests (loopback servers have
/// no virtual hosts), `ETagMatch` conditional puts, and a short retry
/// budget so an unreachable endpoint fails in seconds, not minutes.
pub fn build_s3(config: &S3Config) -> Result<Arc<dyn ObjectStore>> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_allow_http(config.allow_http)
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        });
    if let Some(ep) = &config.endpoint {
        b = b.with_endpoint(ep);
    }
    if let Some(t) = &config.session_token {
        b = b.with_token(t);
    }
    // The builder's own error never contains the secret (it names the
    // failing setting); the builder itself is never printed.
    let s3 = b
        .build()
        .map_err(|e| Error::invalid(Context::new("open", BACKEND), e.to_string()))?;
    Ok(Arc::new(s3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        for good in ["", "a", "a/b", "emu-1/state:eu"] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in [
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "a b",
            "é",
            &"x".repeat(101),
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
