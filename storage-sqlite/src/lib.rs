//! # storage-sqlite
//!
//! Every tier of the storage family on SQLite (`rusqlite`): ordered KV
//! with TTL by the injected clock, CAS with version tokens, conditional
//! transactions over any keys, SQS-style queues, and SQL in the SQLite
//! dialect — in one file that survives restarts and that several stores
//! and processes can share, or in memory.
//!
//! - **Opening**: [`SqliteStore::open`] with [`SqliteConfig::file`]
//!   (created if absent, schema migrated on open — see [`schema`]) or
//!   [`SqliteConfig::memory`]. File databases use WAL.
//! - **Durability**: [`Durability::Full`] by default — an acknowledged
//!   write survives a process crash and a power loss.
//! - **Concurrency**: SQLite work runs on tokio's blocking pool, never on
//!   a runtime worker; one writer connection, a pool of WAL readers; every
//!   read-modify-write is one `BEGIN IMMEDIATE` transaction (see
//!   `backend.rs`). Busy beyond the timeout is a retryable `Unavailable`.
//! - **Backup**: [`SqliteStore::backup_to`] copies the whole database
//!   (KV, queues, SQL tables) online, as one consistent snapshot, with
//!   SQLite's backup API.
//! - **Features**: `bundled` (default) compiles SQLite in; `system` links
//!   the system `libsqlite3` (>= 3.35): `--no-default-features --features system`.

mod atomic;
mod backend;
mod backup;
mod config;
mod error;
mod kv;
mod queue;
pub mod schema;
mod sql;

pub use backend::SqliteStore;
pub use config::{Durability, Location, SqliteConfig, CAPABILITIES};
#[doc(hidden)]
pub use kv::scan_statements;
