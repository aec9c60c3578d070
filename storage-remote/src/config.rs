//! What a remote store declares, and how one is configured.

use std::fmt;

use storage_core::{Capabilities, TransactionScope};

/// Backend name used in errors and spans.
pub(crate) const BACKEND: &str = "remote";

/// Longest key, in bytes. Every key byte may escape to three characters
/// and long encodings are split into path segments of at most
/// [`crate::keys::SEGMENT_CHARS`] characters, so the worst case
/// (`240 × 3 + 6 = 726` characters) plus the worst namespace (`64 × 3`)
/// and the longest prefix ([`MAX_PREFIX_LEN`]) stays within S3's
/// 1024-byte object-key limit and every path segment within a local
/// file system's 255-byte file-name limit.
pub const MAX_KEY_SIZE: usize = 240;

/// Longest namespace name, in bytes (one path segment of at most 192
/// characters once escaped).
pub const MAX_NAMESPACE_SIZE: usize = 64;

/// Longest store prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 100;

/// What a store declares when its object store's ETags are unique per
/// write (object_store's `InMemory`, GCS generations, ...): KV and CAS with
/// TTL; no multi-key transactions (object stores have no multi-object
/// atomic write), no queues, no SQL.
pub const CAPABILITIES: Capabilities = Capabilities {
    kv: true,
    kv_ttl: true,
    atomic: true,
    atomic_content_hash_versions: false,
    transaction_scope: TransactionScope::None,
    max_transaction_ops: 0,
    queue: false,
    queue_fifo: false,
    queue_dead_letter: false,
    queue_long_poll_notify: false,
    sql: None,
    max_key_size: MAX_KEY_SIZE,
    max_namespace_size: MAX_NAMESPACE_SIZE,
    ..Capabilities::DEFAULT_LIMITS
};

/// What a store declares when its object store's ETag is a hash of the
/// content (S3's MD5 ETags, the [`LocalDirStore`](crate::LocalDirStore)
/// SHA-256 ETags): rewriting identical bytes returns the same token.
/// `Update` and `delete_if` then send their `If-Match` PUT without reading
/// the key first.
pub const CONTENT_HASH_CAPABILITIES: Capabilities = Capabilities {
    atomic_content_hash_versions: true,
    ..CAPABILITIES
};

/// Options of a [`RemoteStore`](crate::RemoteStore) over any object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Every object this store writes lives under `<prefix>/`, so many
    /// stores share one bucket without seeing each other. `/`-separated
    /// segments of ASCII letters, digits and `_ - . :` (no `.`/`..`
    /// segment), at most [`MAX_PREFIX_LEN`] bytes; empty means the bucket
    /// root.
    pub prefix: String,
    /// Whether the object store's ETags are content hashes (S3: yes;
    /// object_store's `InMemory`: no). Decides
    /// [`Capabilities::atomic_content_hash_versions`]; `false` promises a
    /// new token on every write. `true` also lets `Update` / `delete_if`
    /// skip their read of the key once the store's tombstone ETag is known
    /// (see the crate's `atomic.rs`), which assumes that no caller can
    /// guess a tombstone's ETag other than by hashing the empty object:
    /// declare `false` for ETags that count writes (`InMemory`).
    pub content_hash_etags: bool,
    /// Whether `list_with_offset` returns objects in path order (S3, GCS
    /// and Azure do, and start at the offset on the server; object_store's
    /// `InMemory` lists in order but copies every object under the prefix
    /// before filtering; a local directory lists unsorted).
    /// `true` lets a forward scan list from its start key and stop once
    /// its page is full; `false` (the safe default for an unknown store)
    /// lists the whole namespace and sorts it, for every page.
    pub ordered_listing: bool,
}

impl RemoteConfig {
    /// A prefix, assuming content-hash ETags (the honest default for an
    /// unknown store).
    pub fn new(prefix: impl Into<String>) -> Self {
        RemoteConfig {
            prefix: prefix.into(),
            content_hash_etags: true,
            ordered_listing: false,
        }
    }

    /// Sets whether the store lists in path order from an offset.
    pub fn with_ordered_listing(mut self, yes: bool) -> Self {
        self.ordered_listing = yes;
        self
    }

    /// Sets whether ETags are content hashes.
    pub fn with_content_hash_etags(mut self, yes: bool) -> Self {
        self.content_hash_etags = yes;
        self
    }
}

/// How to reach an S3-compatible endpoint. `Debug` never shows the
/// secret key or session token.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:5000` for moto); `None`: AWS.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` for moto).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed).
    pub secret_access_key: String,
    /// Session token (never printed).
    pub session_token: Option<String>,
    /// Allow plain HTTP (loopback test servers).
    pub allow_http: bool,
    /// Prefix of every object this store writes (see [`RemoteConfig::prefix`]).
    pub prefix: String,
}

impl S3Config {
    /// A bucket on a custom endpoint with static credentials, path-style
    /// requests and plain HTTP allowed (what a loopback moto needs).
    pub fn endpoint(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        S3Config {
            endpoint: Some(endpoint.into()),
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            allow_http: true,
            prefix: String::new(),
        }
    }

    /// Sets the object prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}
