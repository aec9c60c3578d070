//! Where a Redis store connects, and what it declares.

use storage_core::{Capabilities, TransactionScope};

/// Backend name used in errors and spans.
pub(crate) const BACKEND: &str = "redis";

/// What a store on a standalone server declares.
pub const CAPABILITIES: Capabilities = Capabilities {
    kv: true,
    kv_ttl: true,
    atomic: true,
    atomic_content_hash_versions: false,
    transaction_scope: TransactionScope::Any,
    max_transaction_ops: 100,
    queue: true,
    queue_fifo: true,
    queue_dead_letter: true,
    queue_long_poll_notify: true,
    sql: None,
    ..Capabilities::DEFAULT_LIMITS
};

/// On a Cluster every key of one script must hash to one slot, so
/// transactions stay within one namespace (one hash tag).
pub const CLUSTER_CAPABILITIES: Capabilities = Capabilities {
    transaction_scope: TransactionScope::Namespace,
    ..CAPABILITIES
};

/// Which server(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server: `redis://host:port/db`.
    Standalone(String),
    /// A Redis Cluster: seed node URLs.
    Cluster(Vec<String>),
}

/// Options of [`RedisStore::connect`](crate::RedisStore::connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Server or cluster.
    pub target: Target,
    /// Every key this store writes starts with `{<prefix>/`, so many
    /// stores share one server without seeing each other. Same rules as a
    /// namespace name (no braces, so it cannot break a hash tag), and no
    /// `/` (it separates the prefix from namespace names, so a prefix
    /// holding one could alias another store's namespaces).
    pub prefix: String,
}

impl RedisConfig {
    /// A standalone server with a key prefix.
    pub fn standalone(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        RedisConfig {
            target: Target::Standalone(url.into()),
            prefix: prefix.into(),
        }
    }

    /// A cluster with a key prefix.
    pub fn cluster(nodes: Vec<String>, prefix: impl Into<String>) -> Self {
        RedisConfig {
            target: Target::Cluster(nodes),
            prefix: prefix.into(),
        }
    }
}
