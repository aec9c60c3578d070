//! How a DuckDB store is opened, and what it declares.
//!
//! The declaration is one [`Capabilities`] literal: KV, TTL, CAS and
//! transactions over any keys on tables of the database, SQL in the DuckDB
//! dialect, and no queue tier (every queue method answers `Unsupported`,
//! which the conformance suite checks).

use std::path::PathBuf;

use storage_core::{Capabilities, SqlDialect, TransactionScope};

/// Backend name used in errors and spans.
pub(crate) const BACKEND: &str = "duckdb";

/// KV, TTL, CAS, transactions over any keys and SQL in the DuckDB dialect;
/// no queues.
pub const CAPABILITIES: Capabilities = Capabilities {
    kv: true,
    kv_ttl: true,
    atomic: true,
    atomic_content_hash_versions: false,
    transaction_scope: TransactionScope::Any,
    max_transaction_ops: 100,
    queue: false,
    queue_fifo: false,
    queue_dead_letter: false,
    queue_long_poll_notify: false,
    sql: Some(SqlDialect::DuckDb),
    ..Capabilities::DEFAULT_LIMITS
};

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A database file, created if absent; its catalogue (tables, views,
    /// types, sequences) and data survive close and reopen. DuckDB lets one
    /// process at a time open a file for writing: share a store between
    /// services by cloning it, not by opening the file twice.
    File(PathBuf),
    /// A private in-memory database (DuckDB's `:memory:`), gone when the
    /// last clone of the store is dropped.
    Memory,
}

/// Options of [`DuckDbStore::open`](crate::DuckDbStore::open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDbConfig {
    /// File or memory.
    pub location: Location,
    /// Worker threads DuckDB may use for one query (`None`: DuckDB's
    /// default, the number of cores).
    pub threads: Option<usize>,
}

impl DuckDbConfig {
    /// A file database with the defaults. The path `":memory:"` means an
    /// in-memory database, as it does for DuckDB itself.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path: PathBuf = path.into();
        let location = if path.as_os_str() == ":memory:" {
            Location::Memory
        } else {
            Location::File(path)
        };
        DuckDbConfig {
            location,
            threads: None,
        }
    }

    /// An in-memory database with the defaults.
    pub fn memory() -> Self {
        DuckDbConfig {
            location: Location::Memory,
            threads: None,
        }
    }

    /// Sets the number of worker threads DuckDB may use.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_path_means_an_in_memory_database() {
        assert_eq!(DuckDbConfig::file(":memory:").location, Location::Memory);
        assert_eq!(
            DuckDbConfig::file("x.duckdb").location,
            Location::File("x.duckdb".into())
        );
    }
}
