//! What the memory backend declares.

use storage_core::{Capabilities, TransactionScope};

/// The memory backend's capabilities: every tier but SQL.
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

/// Backend name used in errors.
pub(crate) const BACKEND: &str = "memory";
