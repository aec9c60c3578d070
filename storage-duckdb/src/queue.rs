//! DuckDB has no queue tier: the store declares `queue: false` and every
//! method answers `Error::Unsupported { operation, backend: "duckdb" }`,
//! which the conformance suite checks.
//!
//! Why not: SQS semantics are row-level read-modify-writes on a few hot
//! rows (receive, ack, change visibility), which a columnar engine serves
//! with a scan each and which would serialise behind analytical queries.
//! Keep queues in `storage-sqlite`, `storage-memory` or `storage-redis`
//! beside a DuckDB store.

use crate::backend::DuckDbStore;
use crate::config::{BACKEND, CAPABILITIES};

storage_core::unsupported_queue_store!(DuckDbStore, BACKEND, |_s| CAPABILITIES);
