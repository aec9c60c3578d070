//! Object storage has no queue tier: the store declares `queue: false`
//! and every method answers `Error::Unsupported`, which the conformance
//! suite checks. SQS semantics need atomic multi-message read-modify-write
//! (receive, visibility, receipts) that one-object conditional writes
//! serve poorly; keep queues in another backend beside a remote store.

use crate::backend::RemoteStore;
use crate::config::BACKEND;

storage_core::unsupported_queue_store!(RemoteStore, BACKEND, |s| s.inner.caps);
