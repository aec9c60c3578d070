//! Deliberately broken backends, for proving the suite has teeth.
//!
//! [`BrokenHarness`] wraps the memory backend and injects one [`Flaw`].
//! The self-test (`tests/self_test.rs`) runs the suite on each and asserts
//! that the cases guarding that contract fail. A flaw the suite does not
//! catch is a hole in the suite.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use storage_core::{
    AtomicKv, BatchOp, Capabilities, Error, Expiry, KvStore, ManualClock, MessageId, PutMode,
    PutOptions, QueueConfig, QueueCounts, QueueState, QueueStore, Receipt, ReceiveOptions,
    ReceivedMessage, Result, ScanPage, ScanRequest, SendMessage, TxOp, Version, Versioned,
};
use storage_memory::MemoryStore;

use crate::harness::{Fixture, Harness};

/// One contract violation to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Conditional puts ignore the version (`Update` acts as `Overwrite`)
    /// and conditional deletes ignore it too: a check-then-write bug.
    IgnoreVersions,
    /// Transactions apply operation by operation, so a failed condition
    /// leaves the earlier operations applied.
    NonAtomicTransactions,
    /// Receipts never go stale: any receipt of a message acts as its
    /// latest one.
    ReceiptsNeverStale,
    /// Expiry is dropped on put while `kv_ttl` is still declared.
    TtlIgnored,
    /// Scan cursors resume at (not after) the last key: the classic
    /// off-by-one that repeats a key on every page boundary.
    ScanRepeatsCursorKey,
    /// Capability drift: TTL and FIFO are declared absent but still work,
    /// instead of answering `Unsupported`.
    UndeclaredFeaturesWork,
}

impl Flaw {
    /// Every flaw.
    pub const ALL: [Flaw; 6] = [
        Flaw::IgnoreVersions,
        Flaw::NonAtomicTransactions,
        Flaw::ReceiptsNeverStale,
        Flaw::TtlIgnored,
        Flaw::ScanRepeatsCursorKey,
        Flaw::UndeclaredFeaturesWork,
    ];

    /// What a store with this flaw declares.
    pub fn capabilities(self) -> Capabilities {
        let mut caps = storage_memory::CAPABILITIES;
        if self == Flaw::UndeclaredFeaturesWork {
            caps.kv_ttl = false;
            caps.queue_fifo = false;
        }
        caps
    }
}

/// The memory backend with one flaw.
#[derive(Debug, Clone)]
pub struct BrokenStore {
    inner: MemoryStore,
    flaw: Flaw,
    /// Latest receipt per message, for [`Flaw::ReceiptsNeverStale`].
    latest: Arc<Mutex<HashMap<MessageId, Receipt>>>,
}

impl BrokenStore {
    fn substitute(&self, receipt: &Receipt) -> Receipt {
        if self.flaw != Flaw::ReceiptsNeverStale {
            return receipt.clone();
        }
        self.latest
            .lock()
            .get(&receipt.message_id)
            .cloned()
            .unwrap_or_else(|| receipt.clone())
    }
}

#[async_trait]
impl KvStore for BrokenStore {
    fn backend_name(&self) -> &'static str {
        "broken-memory"
    }
    fn capabilities(&self) -> Capabilities {
        self.flaw.capabilities()
    }
    async fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(ns, key).await
    }
    async fn put(&self, ns: &str, key: &[u8], value: Bytes, mut options: PutOptions) -> Result<()> {
        if self.flaw == Flaw::TtlIgnored {
            options.expiry = Expiry::Never;
        }
        self.inner.put(ns, key, value, options).await
    }
    async fn delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        self.inner.delete(ns, key).await
    }
    async fn get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_many(ns, keys).await
    }
    async fn write_batch(&self, ns: &str, mut ops: Vec<BatchOp>) -> Result<()> {
        if self.flaw == Flaw::TtlIgnored {
            for op in &mut ops {
                if let BatchOp::Put { options, .. } = op {
                    options.expiry = Expiry::Never;
                }
            }
        }
        self.inner.write_batch(ns, ops).await
    }
    async fn scan(&self, ns: &str, mut request: ScanRequest) -> Result<ScanPage> {
        if self.flaw == Flaw::ScanRepeatsCursorKey {
            if let Some(c) = request.cursor.take() {
                let k = c.last_key().clone();
                match request.direction {
                    storage_core::Direction::Forward => request.start = Bound::Included(k),
                    storage_core::Direction::Reverse => request.end = Bound::Included(k),
                }
            }
        }
        self.inner.scan(ns, request).await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.inner.list_namespaces().await
    }
    async fn drop_namespace(&self, ns: &str) -> Result<bool> {
        self.inner.drop_namespace(ns).await
    }
}

#[async_trait]
impl AtomicKv for BrokenStore {
    async fn get_versioned(&self, ns: &str, key: &[u8]) -> Result<Option<Versioned>> {
        self.inner.get_versioned(ns, key).await
    }
    async fn put_if(
        &self,
        ns: &str,
        key: &[u8],
        value: Bytes,
        mut mode: PutMode,
        mut options: PutOptions,
    ) -> Result<Version> {
        if self.flaw == Flaw::IgnoreVersions && matches!(mode, PutMode::Update(_)) {
            mode = PutMode::Overwrite;
        }
        if self.flaw == Flaw::TtlIgnored {
            options.expiry = Expiry::Never;
        }
        self.inner.put_if(ns, key, value, mode, options).await
    }
    async fn delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<()> {
        if self.flaw == Flaw::IgnoreVersions {
            self.inner.delete(ns, key).await?;
            return Ok(());
        }
        self.inner.delete_if(ns, key, version).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        if self.flaw != Flaw::NonAtomicTransactions {
            return self.inner.transact(ops).await;
        }
        // One single-op transaction per operation: each is atomic, the
        // whole is not.
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            match self.inner.transact(vec![op]).await {
                Ok(mut v) => out.push(v.pop().flatten()),
                Err(Error::Conflict { ctx, current, .. }) => {
                    return Err(Error::Conflict {
                        ctx,
                        current,
                        index: Some(i),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl QueueStore for BrokenStore {
    fn backend_name(&self) -> &'static str {
        "broken-memory"
    }
    fn capabilities(&self) -> Capabilities {
        self.flaw.capabilities()
    }
    async fn create_queue(&self, q: &str, config: QueueConfig) -> Result<()> {
        self.inner.create_queue(q, config).await
    }
    async fn queue_config(&self, q: &str) -> Result<QueueConfig> {
        self.inner.queue_config(q).await
    }
    async fn delete_queue(&self, q: &str) -> Result<bool> {
        self.inner.delete_queue(q).await
    }
    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list_queues(prefix).await
    }
    async fn send_batch(&self, q: &str, m: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        self.inner.send_batch(q, m).await
    }
    async fn receive(&self, q: &str, o: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let got = self.inner.receive(q, o).await?;
        let mut latest = self.latest.lock();
        for m in &got {
            latest.insert(m.id.clone(), m.receipt.clone());
        }
        Ok(got)
    }
    async fn ack(&self, q: &str, r: &Receipt) -> Result<()> {
        self.inner.ack(q, &self.substitute(r)).await
    }
    async fn change_visibility(&self, q: &str, r: &Receipt, t: Duration) -> Result<()> {
        self.inner
            .change_visibility(q, &self.substitute(r), t)
            .await
    }
    async fn purge(&self, q: &str) -> Result<()> {
        self.inner.purge(q).await
    }
    async fn counts(&self, q: &str) -> Result<QueueCounts> {
        self.inner.counts(q).await
    }
    async fn export_queue(&self, q: &str) -> Result<QueueState> {
        self.inner.export_queue(q).await
    }
    async fn import_queue(&self, q: &str, s: QueueState) -> Result<()> {
        self.inner.import_queue(q, s).await
    }
}

/// A harness serving [`BrokenStore`]s with one flaw.
#[derive(Debug, Clone, Copy)]
pub struct BrokenHarness(pub Flaw);

#[async_trait]
impl Harness for BrokenHarness {
    fn name(&self) -> String {
        format!("broken-{:?}", self.0)
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn open(&self) -> std::result::Result<Fixture, String> {
        let clock = ManualClock::default();
        let store = BrokenStore {
            inner: MemoryStore::with_clock(Arc::new(clock.clone())),
            flaw: self.0,
            latest: Arc::default(),
        };
        Ok(Fixture {
            clock,
            kv: Some(Arc::new(store.clone())),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store)),
            sql: None,
        })
    }
}
