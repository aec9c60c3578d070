//! How a SQLite store is opened, and what it declares.

use std::path::PathBuf;
use std::time::Duration;

use storage_core::{Capabilities, SqlDialect, TransactionScope};

/// Backend name used in errors and spans.
pub(crate) const BACKEND: &str = "sqlite";

/// Every tier, transactions over any keys, SQL in the SQLite dialect.
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
    // Within one process a send wakes waiting receivers at once; a send
    // from another process is seen at the next poll (`cross_process_poll`).
    queue_long_poll_notify: true,
    sql: Some(SqlDialect::Sqlite),
    ..Capabilities::DEFAULT_LIMITS
};

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file, created if absent. Several stores (and processes) may open
    /// the same file.
    File(PathBuf),
    /// A private in-memory database, gone when the last clone is dropped.
    Memory,
}

/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: an acknowledged write survives a process
    /// crash *and* a power loss / OS crash. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL` (WAL): an acknowledged write survives a
    /// process crash; the last transactions may roll back on power loss.
    /// Faster commits.
    Normal,
}

/// Options of [`SqliteStore::open`](crate::SqliteStore::open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// File or memory.
    pub location: Location,
    /// Commit durability (file databases).
    pub durability: Durability,
    /// How long a write waits for another connection's (or process's)
    /// write lock before failing with a retryable `Unavailable`.
    pub busy_timeout: Duration,
    /// Read-only connections for parallel reads (file databases; WAL lets
    /// them run beside the writer). 0 = reads share the writer connection.
    pub readers: usize,
    /// How often a long poll re-checks the database for messages sent by
    /// *other* processes (sends in this process wake it at once).
    pub cross_process_poll: Duration,
}

impl SqliteConfig {
    /// A file database with the defaults.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            location: Location::File(path.into()),
            ..SqliteConfig::memory()
        }
    }

    /// An in-memory database with the defaults.
    pub fn memory() -> Self {
        SqliteConfig {
            location: Location::Memory,
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            cross_process_poll: Duration::from_millis(100),
        }
    }
}
