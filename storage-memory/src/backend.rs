//! The store handle and its shared state.

use std::sync::Arc;

use storage_core::{Clock, SharedClock, SystemClock};

use crate::kv::KvState;
use crate::queue::QueueState;

/// An in-memory store implementing [`KvStore`](storage_core::KvStore),
/// [`AtomicKv`](storage_core::AtomicKv), [`QueueStore`](storage_core::QueueStore)
/// and (as `Unsupported`) [`SqlEngine`](storage_core::SqlEngine).
///
/// Cheap to clone; clones share the same data.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) clock: SharedClock,
    pub(crate) kv: KvState,
    pub(crate) queues: QueueState,
}

impl MemoryStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        MemoryStore::with_clock(Arc::new(SystemClock))
    }

    /// A store reading time from `clock` (e.g. a
    /// [`ManualClock`](storage_core::ManualClock) in tests).
    pub fn with_clock(clock: SharedClock) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                clock,
                kv: KvState::default(),
                queues: QueueState::default(),
            }),
        }
    }

    /// The store's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}
