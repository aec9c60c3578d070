//! What a backend can do, declared as one struct literal per adapter.
//!
//! Naming grammar: `<tier>` says the tier is implemented, `<tier>_<feature>`
//! says a feature of it is, `max_<thing>` is a limit. Each trait method's
//! documentation names the capability it needs; a method whose capability
//! is not declared returns [`Error::Unsupported`](crate::Error::Unsupported).
//! The conformance suite checks both directions.

use serde::{Deserialize, Serialize};

/// Which keys one conditional transaction may span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TransactionScope {
    /// No multi-key transactions.
    #[default]
    None,
    /// All operations must be in one namespace (e.g. Redis Cluster).
    Namespace,
    /// Any keys in any namespaces.
    Any,
}

/// The SQL dialect an [`SqlEngine`](crate::SqlEngine) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlDialect {
    /// SQLite.
    Sqlite,
    /// DuckDB.
    DuckDb,
}

/// A backend's declared features and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// [`KvStore`](crate::KvStore) is implemented.
    pub kv: bool,
    /// Puts accept an expiry ([`Expiry`](crate::Expiry)), judged by the
    /// store's clock.
    pub kv_ttl: bool,
    /// [`AtomicKv`](crate::AtomicKv) conditional reads/writes are implemented.
    pub atomic: bool,
    /// Version tokens are content hashes: rewriting identical bytes may
    /// return the same token (S3 ETags).
    pub atomic_content_hash_versions: bool,
    /// Scope of [`AtomicKv::transact`](crate::AtomicKv::transact).
    pub transaction_scope: TransactionScope,
    /// Most operations one transaction may hold.
    pub max_transaction_ops: usize,
    /// [`QueueStore`](crate::QueueStore) is implemented.
    pub queue: bool,
    /// FIFO queues (group ordering, dedup window).
    pub queue_fifo: bool,
    /// Dead-letter redrive.
    pub queue_dead_letter: bool,
    /// Long polls are woken by a notification, not a sleep loop.
    pub queue_long_poll_notify: bool,
    /// [`SqlEngine`](crate::SqlEngine) is implemented, in this dialect.
    pub sql: Option<SqlDialect>,
    /// Longest key, in bytes.
    pub max_key_size: usize,
    /// Longest value, in bytes.
    pub max_value_size: usize,
    /// Longest namespace or queue name, in bytes.
    pub max_namespace_size: usize,
    /// Most entries one scan page may return.
    pub max_scan_limit: usize,
}

impl Capabilities {
    /// Limits every backend in this workspace honours; adapters start from
    /// these and widen or narrow them.
    pub const DEFAULT_LIMITS: Capabilities = Capabilities {
        kv: false,
        kv_ttl: false,
        atomic: false,
        atomic_content_hash_versions: false,
        transaction_scope: TransactionScope::None,
        max_transaction_ops: 0,
        queue: false,
        queue_fifo: false,
        queue_dead_letter: false,
        queue_long_poll_notify: false,
        sql: None,
        max_key_size: 1024,
        max_value_size: 4 * 1024 * 1024,
        max_namespace_size: 255,
        max_scan_limit: 10_000,
    };
}
