//! Versions for writes, from blocks reserved from each namespace's
//! counter.
//!
//! A write's version is the record's first field (`keys.rs`). The client
//! takes it from a [`VersionBlock`] of the namespace: one `INCRBY <counter>
//! 1024` reserves the next 1,024 numbers, so the write scripts never touch
//! the counter and the client sends each record whole. That keeps the
//! counter `INCR` and the record concatenation (a copy of the value made
//! inside the single-threaded server; about a quarter of a 10 KB put's
//! server time, measured with redis-benchmark) off every write.
//!
//! Numbers are never issued twice: the counter only grows, every store
//! (process, connection) reserves blocks of its own, and the numbers of a
//! block that is dropped are skipped. Tokens are compared for equality
//! only, so the gaps and the interleaving of two stores' blocks are
//! harmless. A counter someone overwrote with a non-number fails the
//! reservation with `InvalidInput` before anything is written; a store
//! still holding a block does not read the counter until the block runs
//! out.

use std::collections::HashMap;
use std::sync::Mutex;

use storage_core::{At, Result, VersionBlock};

use crate::backend::RedisStore;
use crate::config::BACKEND;
use crate::error::map_err;

/// Namespaces whose blocks a store keeps; past this, the map is cleared
/// (the dropped blocks' numbers are skipped) so a store writing to an
/// unbounded stream of namespaces does not grow without end.
const MAX_NAMESPACES: usize = 4096;

/// The blocks of one store, by namespace.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    blocks: Mutex<HashMap<String, VersionBlock>>,
}

impl Versions {
    fn take(&self, ns: &str, n: u64) -> Option<u64> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks.get_mut(ns)?.take(n)
    }

    fn refill_and_take(&self, ns: &str, last: u64, size: u64, n: u64) -> Option<u64> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if blocks.len() >= MAX_NAMESPACES && !blocks.contains_key(ns) {
            blocks.clear();
        }
        // A block another task reserved meanwhile is replaced; its numbers
        // are skipped.
        let block = blocks.entry(ns.to_owned()).or_default();
        block.refill(last, size);
        block.take(n)
    }

    /// Forgets every block (the counters were deleted).
    pub(crate) fn clear(&self) {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl RedisStore {
    /// Takes `n` (at least 1) consecutive versions for writes in `ns` and
    /// returns the last: they are `last - n + 1 ..= last`.
    pub(crate) async fn versions(&self, op: &'static str, ns: &str, n: u64) -> Result<u64> {
        let n = n.max(1);
        if let Some(last) = self.inner.versions.take(ns, n) {
            return Ok(last);
        }
        let size = VersionBlock::reservation(n);
        let at = At::scoped(op, BACKEND, ns);
        let last: u64 = redis::cmd("INCRBY")
            .arg(self.inner.keys.ns(ns).counter)
            .arg(size)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(at, e))?;
        self.inner
            .versions
            .refill_and_take(ns, last, size, n)
            .ok_or_else(|| {
                storage_core::Error::invalid(
                    at,
                    format!("the version counter of namespace {ns:?} reads {last} after a reservation of {size}: it is not this store's"),
                )
            })
    }
}
