//! # storage-core
//!
//! The contracts of the storage crate family: object-safe async traits for
//! four tiers — ordered namespaced key-value ([`KvStore`]), compare-and-swap
//! with opaque version tokens and conditional transactions ([`AtomicKv`]),
//! SQS-style queues ([`QueueStore`]) and SQL ([`SqlEngine`]) — plus the one
//! [`Error`] enum, [`Capabilities`], the injectable [`Clock`], the portable
//! [`snapshot`] format and the order-preserving [`mod@tuple`] key encoding.
//!
//! This crate does no I/O. Backends live in their own crates
//! (`storage-memory`, ...) and are checked by the `conformance` suite.
//!
//! Implementers write the lean traits; users also get the blanket
//! [`KvStoreExt`], [`AtomicKvExt`] and [`QueueStoreExt`] helpers.

pub mod adapter;
pub mod atomic;
pub mod blocking;
pub mod capabilities;
pub mod clock;
pub mod error;
pub mod ext;
pub mod kv;
pub mod queue;
pub mod snapshot;
pub mod sql;
pub mod table;
pub mod tuple;
pub mod validate;
pub mod version;
pub mod version_block;
pub mod wake;

pub use atomic::{AtomicKv, Condition, PutMode, TxAction, TxOp, Versioned};
pub use capabilities::{Capabilities, SqlDialect, TransactionScope};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, Timestamp};
pub use error::{At, BoxError, Context, Error, Result};
pub use ext::{AtomicKvExt, KvStoreExt, ListPage, QueueStoreExt};
pub use kv::{
    BatchOp, Cursor, Direction, Entry, Expiry, KvStore, PutOptions, ScanPage, ScanRequest,
};
pub use queue::{
    DedupEntry, MessageId, MessageState, QueueConfig, QueueCounts, QueueState, QueueStore, Receipt,
    ReceiveOptions, ReceivedMessage, RedrivePolicy, SendMessage,
};
pub use sql::{SqlColumn, SqlEngine, SqlResult, SqlValue};
pub use version::Version;
pub use version_block::VersionBlock;
