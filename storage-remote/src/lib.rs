//! # storage-remote
//!
//! The KV and CAS tiers of the storage family on any
//! [`object_store::ObjectStore`] — S3 and S3-compatible servers, GCS,
//! Azure, a local directory ([`LocalDirStore`], with real conditional
//! writes) or memory — and the [`transport`] of database snapshot files
//! (conditional upload, multipart, a fenced writer lease).
//!
//! - **Layout**: one object per key at `<prefix>/<namespace>/<key>`, both
//!   escaped by an order-preserving, prefix-safe escaping (`keys.rs`), so a
//!   bucket listing comes back in key order and no key leaves its
//!   namespace. Limits follow from S3's 1024-byte keys and local 255-byte
//!   file names: keys up to [`MAX_KEY_SIZE`] bytes, namespaces up to
//!   [`MAX_NAMESPACE_SIZE`], prefixes up to [`MAX_PREFIX_LEN`].
//! - **Objects** hold a one-byte header, an optional expiry and the value
//!   (`record.rs`); the empty object is a tombstone.
//! - **Versions** name the ETag (plus object version) the write itself
//!   returned and the entry's expiry (`token.rs`); conditional writes are
//!   `If-None-Match: *` / `If-Match` (`atomic.rs`), conditional deletes
//!   write a tombstone by `If-Match`. Stores whose ETags are content
//!   hashes (S3, [`LocalDirStore`]) declare [`CONTENT_HASH_CAPABILITIES`]
//!   and judge a presented token without reading the key first;
//!   object_store's `InMemory`, whose ETags count writes, declares
//!   [`CAPABILITIES`] and reads the key before every `If-Match`.
//! - **TTL** is supported: the expiry instant is stored in the object and
//!   judged by the store's [`Clock`](storage_core::Clock) on every read.
//! - **Not supported** (`Unsupported`): multi-key transactions, queues,
//!   SQL. Write batches apply in order, not atomically.
//! - **Errors**: one mapping (`error.rs`): 404 → `NotFound` (a missing
//!   bucket is never "absent"), failed conditions → `Conflict`, 5xx /
//!   429 / transport / S3's 409 `ConditionalRequestConflict` → retryable
//!   `Unavailable`. `Debug` of stores and configs never shows credentials.
//! - **Tests**: [`testing`] starts a throwaway moto S3 server that
//!   applies each request atomically (or uses `S3_ENDPOINT`).

mod admin;
mod atomic;
mod backend;
mod config;
mod error;
pub mod keys;
mod kv;
mod local;
mod queue;
mod record;
mod sql;
pub mod testing;
mod token;
pub mod transport;

pub use backend::{build_s3, RemoteStore};
pub use config::{
    RemoteConfig, S3Config, CAPABILITIES, CONTENT_HASH_CAPABILITIES, MAX_KEY_SIZE,
    MAX_NAMESPACE_SIZE, MAX_PREFIX_LEN,
};
pub use local::LocalDirStore;
