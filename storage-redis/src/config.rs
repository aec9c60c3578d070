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

/// Which server(s). `Debug` shows URLs with any password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Standalone(url) => f.debug_tuple("Standalone").field(&redact(url)).finish(),
            Target::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact(n)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// `url` with the password of its userinfo (`redis://user:PASSWORD@host`)
/// replaced by `***`, for `Debug` output and messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}***{}", &url[..start + colon + 1], &url[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_passwords() {
        let t = Target::Standalone("redis://user:hunter2@host:6379/0".to_owned());
        assert_eq!(
            format!("{t:?}"),
            "Standalone(\"redis://user:***@host:6379/0\")"
        );
        let t = Target::Cluster(vec!["redis://:pw@a:1".to_owned(), "redis://b:2".to_owned()]);
        let shown = format!("{t:?}");
        assert!(!shown.contains("pw@"), "{shown}");
        assert!(shown.contains("redis://:***@a:1") && shown.contains("redis://b:2"));
        assert_eq!(redact("redis://host/0?x=a@b"), "redis://host/0?x=a@b");
    }
}
