//! # storage-redis
//!
//! The KV, CAS, transaction, TTL and queue tiers of the storage family on
//! Redis (the `redis` crate, async on tokio), standalone or Redis Cluster.
//!
//! - **Atomicity**: every read-modify-write is one server-side Lua script
//!   run by `EVALSHA` (reloaded on `NOSCRIPT`); keys and values travel as
//!   script arguments, never in script text.
//! - **Clock**: scripts receive "now" from the store's [`Clock`](storage_core::Clock),
//!   never Redis `TIME`, so expiry follows a manual clock in tests. No Redis
//!   expirations are set: expired entries are purged by write scripts.
//! - **Cluster**: all keys of one namespace share the hash tag
//!   `{<prefix>/<namespace>}` (see [`keys`](crate) layout in `keys.rs`), so
//!   every script runs on one slot; on a cluster transactions stay within
//!   one namespace ([`CLUSTER_CAPABILITIES`]).
//! - **Connections**: one multiplexed, self-reconnecting connection per
//!   store; transport failures are retryable `Unavailable`.
//! - **Queues**: SQS semantics (visibility, receipts, delay, retention,
//!   dead-letter redrive, FIFO groups and dedup) by Lua scripts over
//!   sorted-set indexes; every queue key of a store shares the hash tag
//!   `{<prefix>}` so a dead-letter move is one script on a Cluster too.
//!   Long polls are woken by pub/sub, not by a sleep loop. See `queue/`.
//! - SQL is not a Redis tier (`Unsupported`).

mod admin;
mod atomic;
mod backend;
mod config;
mod error;
mod keys;
mod kv;
mod queue;
mod scripts;
mod sql;
pub mod testing;
mod versions;

pub use backend::RedisStore;
pub use config::{RedisConfig, Target, CAPABILITIES, CLUSTER_CAPABILITIES};
