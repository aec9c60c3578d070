//! The portable snapshot format: KV and queue state of any backend, in one
//! versioned, checksummed byte stream that any other backend can import.
//!
//! [`export`] reads through the tier traits ([`KvStore::list_namespaces`] and
//! paged [`KvStore::scan`]; [`QueueStore::list_queues`] and
//! [`QueueStore::export_queue`]), so every backend that implements the
//! tiers can be snapshotted; [`import`] writes through them
//! ([`KvStore::write_batch`], [`QueueStore::import_queue`]), so a snapshot
//! taken from one backend restores into any other. [`decode`] and
//! [`encode`] convert between bytes and the in-memory [`Snapshot`].
//!
//! # Byte layout (format version 1)
//!
//! All fixed-width integers are little-endian. "postcard" means the
//! [postcard](https://docs.rs/postcard/1) encoding of the named serde type
//! (varint integers, length-prefixed strings and byte strings, enum variant
//! tags as varints, `Option` as a 0/1 tag, `Duration` as `{secs, nanos}`).
//!
//! | offset        | size   | field                                                        |
//! |---------------|--------|--------------------------------------------------------------|
//! | 0             | 8      | magic, the ASCII bytes `STORSNAP`                            |
//! | 8             | 4      | format version, `u32` LE (= [`FORMAT_VERSION`], 1)           |
//! | 12            | 4      | header length `H`, `u32` LE                                  |
//! | 16            | `H`    | header, postcard of `Header` (below)                         |
//! | 16 + `H`      | 4 + n  | record #1: length `n`, `u32` LE, then `n` bytes of postcard `Record` |
//! | ...           | 4 + n  | records #2 .. #N, framed the same way                        |
//! | ...           | 4 + n  | the `End` record, framed the same way, last                  |
//! | `len` − 32    | 32     | SHA-256 over every byte before it (offsets 0 .. `len` − 32)  |
//!
//! `Header` (fields in this order):
//!
//! | field         | type        | meaning                                                  |
//! |---------------|-------------|----------------------------------------------------------|
//! | `exported_at` | `Timestamp` (varint ms) | the exporting clock's "now"; an importer may carry its clock over |
//! | `backend`     | string      | the exporting backend's name (informational)             |
//! | `namespaces`  | varint u64  | number of KV namespaces (each holds at least one entry)  |
//! | `entries`     | varint u64  | number of `KvEntry` records                              |
//! | `queues`      | varint u64  | number of `Queue` records                                |
//! | `messages`    | varint u64  | number of `Message` records                              |
//!
//! `Record` (a postcard enum; the variant tag is the first varint):
//!
//! | tag | variant    | fields, in order                                                                 |
//! |-----|------------|----------------------------------------------------------------------------------|
//! | 0   | `KvEntry`  | `namespace: String, key: bytes, value: bytes, version: Option<String>, expires_at: Option<Timestamp>` |
//! | 1   | `Queue`    | `name: String, config: QueueConfig, next_sequence: u64, dedup: Vec<DedupEntry>`  |
//! | 2   | `Message`  | `queue: String, message: MessageState`                                           |
//! | 3   | `End`      | `records: u64` — the number of records before it (header not counted)             |
//!
//! Record order is canonical and checked: every `KvEntry` comes first, in
//! strictly increasing (namespace, key) order (unsigned byte order of both);
//! then every `Queue` in strictly increasing name order, each immediately
//! followed by its `Message` records (whose `queue` names it) in strictly
//! increasing `sequence`, every one below the queue's `next_sequence`; then
//! `End`, then the checksum and nothing else. The header counts must match
//! the records. Records are numbered from 1 in error messages.
//!
//! Version tokens are written in string form for information only: tokens
//! are store-specific, and the importing store assigns fresh ones. Queue
//! messages keep their ids and receive counts, so a receipt issued by the
//! exporting store is still valid in the importing one.
//!
//! A future format gets a new version number; variant tags are never
//! reused or reordered.
//!
//! # Verifying before writing
//!
//! [`decode`] checks the magic, the version, the checksum, the framing, the
//! record order and the header counts before it returns anything.
//! [`import`] decodes first, then checks that the targets can hold the
//! snapshot (tiers and features declared in their
//! [`Capabilities`](crate::Capabilities), names, key and value limits,
//! queue configurations), and only then writes. Every problem found up to
//! that point is an [`Error::InvalidInput`](crate::Error::InvalidInput) in
//! context `import_snapshot` and leaves the targets untouched. A backend
//! failure *during* the writes can still leave a partial import behind
//! (KV batches are atomic per batch only on transactional stores).
//!
//! # Consistency of an export
//!
//! [`export`] reads namespace by namespace and queue by queue; it is a
//! point-in-time copy only if nothing writes to the stores meanwhile.
//! Entries are gathered in memory before encoding, because the header's
//! counts precede the records.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), storage_core::Error> {
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use storage_core::snapshot::{self, ImportMode};
//! use storage_core::{Clock, KvStore, ManualClock, PutOptions, QueueConfig, QueueStore, QueueStoreExt, SendMessage};
//! use storage_memory::MemoryStore;
//!
//! let clock = ManualClock::default();
//! let source = MemoryStore::with_clock(Arc::new(clock.clone()));
//! source.put("users", b"alice", Bytes::from_static(b"1"), PutOptions::default()).await?;
//! source.create_queue("jobs", QueueConfig::default()).await?;
//! source.send("jobs", SendMessage::new("hello")).await?;
//!
//! let mut bytes = Vec::new();
//! let exported = snapshot::export(Some(&source), Some(&source), clock.now(), &mut bytes).await?;
//! assert_eq!((exported.entries, exported.messages), (1, 1));
//!
//! // Carry the clock over, then restore into a fresh store.
//! let decoded = snapshot::decode(&bytes)?;
//! let target = MemoryStore::with_clock(Arc::new(ManualClock::new(decoded.exported_at)));
//! let imported = snapshot::import(&bytes, Some(&target), Some(&target), ImportMode::Replace).await?;
//! assert_eq!(imported, exported);
//! assert_eq!(target.get("users", b"alice").await?, Some(Bytes::from_static(b"1")));
//! assert_eq!(target.counts("jobs").await?.visible, 1);
//! # Ok(())
//! # }
//! ```

mod export;
mod format;
mod import;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::queue::QueueState;

pub use export::{export, export_with_progress};
pub use format::{decode, encode, CHECKSUM_LEN, FORMAT_VERSION, MAGIC};
pub use import::{import, import_with_progress, ImportMode};

#[cfg(doc)]
use crate::{KvStore, QueueStore};

/// One KV entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// Key.
    pub key: Bytes,
    /// Value.
    pub value: Bytes,
    /// The exporting store's version token in string form, if it had one.
    /// Informational: importing assigns a fresh token.
    pub version: Option<String>,
    /// When the entry expires, by the exporting store's clock.
    pub expires_at: Option<Timestamp>,
}

/// A decoded snapshot: everything a snapshot file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The exporting clock's time when the export was taken.
    pub exported_at: Timestamp,
    /// Name of the exporting backend (informational).
    pub backend: String,
    /// KV entries by namespace, each list in strictly increasing key order.
    /// [`encode`] skips namespaces with no entries.
    pub namespaces: BTreeMap<String, Vec<KvEntry>>,
    /// Queue states by name; messages in strictly increasing sequence.
    pub queues: BTreeMap<String, QueueState>,
}

impl Snapshot {
    /// What this snapshot holds; `bytes` is 0 (it is a property of an
    /// encoding, not of the content).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for entries in self.namespaces.values() {
            if !entries.is_empty() {
                s.namespaces = s.namespaces.saturating_add(1);
                s.entries = s.entries.saturating_add(len_u64(entries.len()));
            }
        }
        s.queues = len_u64(self.queues.len());
        s.messages = self
            .queues
            .values()
            .fold(0u64, |n, q| n.saturating_add(len_u64(q.messages.len())));
        s
    }

    /// The same state as if it had been exported at `now`: every instant
    /// (entry expiries, message send / visibility / first-delivery times,
    /// dedup expiries, `exported_at`) moves by `now - exported_at`, so
    /// remaining TTLs, delays, visibility timeouts, retention and dedup
    /// windows are what they were at the export. For fixtures that are
    /// loaded long after they were taken (saturates at the ends of the
    /// timestamp range).
    pub fn rebased(mut self, now: Timestamp) -> Snapshot {
        let from = self.exported_at.as_millis();
        let to = now.as_millis();
        let shift = |t: Timestamp| {
            let ms = t.as_millis();
            Timestamp::from_millis(if to >= from {
                ms.saturating_add(to - from)
            } else {
                ms.saturating_sub(from - to)
            })
        };
        self.exported_at = now;
        for entries in self.namespaces.values_mut() {
            for e in entries {
                e.expires_at = e.expires_at.map(shift);
            }
        }
        for q in self.queues.values_mut() {
            for m in &mut q.messages {
                m.sent_at = shift(m.sent_at);
                m.visible_at = shift(m.visible_at);
                m.first_received_at = m.first_received_at.map(shift);
            }
            for d in &mut q.dedup {
                d.expires_at = shift(d.expires_at);
            }
        }
        self
    }
}

/// What an export or import moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Non-empty KV namespaces.
    pub namespaces: u64,
    /// KV entries.
    pub entries: u64,
    /// Queues.
    pub queues: u64,
    /// Queue messages.
    pub messages: u64,
    /// Size of the snapshot in bytes, trailer included.
    pub bytes: u64,
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
