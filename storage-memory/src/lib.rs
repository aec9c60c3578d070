//! # storage-memory
//!
//! The default backend of the storage family: every tier but SQL, in
//! process memory. KV with ordered scans and TTL by the injected clock,
//! CAS and transactions over any keys, and SQS-style queues with every
//! semantic of the queue contract (visibility, receipts, delay, retention,
//! DLQ redrive, FIFO groups, dedup window, notified long polls).
//!
//! Safe under concurrent use from many tasks; no lock is held across an
//! `.await`. Clones share one store.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), storage_core::Error> {
//! use std::sync::Arc;
//! use storage_core::{KvStore, ManualClock, PutOptions};
//! use storage_memory::MemoryStore;
//! let clock = ManualClock::default();
//! let store: Arc<dyn KvStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
//! store.put("ns", b"k", "v".into(), PutOptions::ttl(std::time::Duration::from_secs(5))).await?;
//! clock.advance(std::time::Duration::from_secs(5));
//! assert_eq!(store.get("ns", b"k").await?, None);
//! # Ok(())
//! # }
//! ```

mod atomic;
mod backend;
mod config;
mod kv;
mod queue;
mod sql;

pub use backend::MemoryStore;
pub use config::CAPABILITIES;
