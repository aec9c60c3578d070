//! An opened store: one handle per tier its backend supports.

use std::fmt;
use std::sync::Arc;

use storage_core::{AtomicKv, Capabilities, KvStore, QueueStore, SharedClock, SqlEngine};

use crate::error::OpenError;
use crate::location::Location;

/// What [`Store::destroy`] and [`Store::persist`] need of the concrete
/// store (the tier handles are trait objects).
pub(crate) enum Concrete {
    /// Cleared through the tiers.
    Generic,
    #[cfg(feature = "redis")]
    Redis(storage_redis::RedisStore),
    #[cfg(feature = "remote")]
    Remote(storage_remote::RemoteStore),
}

/// A store opened from a URL by [`open`](crate::open): a handle for each
/// tier its backend declares, all onto the same data and reading the same
/// clock.
///
/// Clones share the store.
#[derive(Clone)]
pub struct Store {
    pub(crate) location: Arc<Location>,
    pub(crate) capabilities: Capabilities,
    pub(crate) clock: SharedClock,
    // Every tier the adapter's type implements; the accessors hand out
    // only the declared ones (the conformance check also needs the others,
    // to hold the backend to its `Unsupported` answers).
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) atomic: Arc<dyn AtomicKv>,
    pub(crate) queue: Arc<dyn QueueStore>,
    pub(crate) sql: Arc<dyn SqlEngine>,
    pub(crate) concrete: Arc<Concrete>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl Store {
    /// Builds the handles of `store`, with the capabilities the store
    /// itself declares (they can depend on how it was opened: a Redis
    /// Cluster, content-hash ETags).
    pub(crate) fn new<S>(
        location: Location,
        clock: SharedClock,
        store: S,
        concrete: Concrete,
    ) -> Store
    where
        S: KvStore + AtomicKv + QueueStore + SqlEngine + Clone + 'static,
    {
        let capabilities = KvStore::capabilities(&store);
        Store {
            location: Arc::new(location),
            capabilities,
            clock,
            kv: Arc::new(store.clone()),
            atomic: Arc::new(store.clone()),
            queue: Arc::new(store.clone()),
            sql: Arc::new(store),
            concrete: Arc::new(concrete),
        }
    }

    /// Where this store is (`Display` has no password).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The backend label (`sqlite-file`, `redis-cluster` ...).
    pub fn label(&self) -> &'static str {
        self.location.label()
    }

    /// What the backend declares.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The clock every handle reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The key-value tier.
    ///
    /// # Errors
    ///
    /// [`OpenError::UnsupportedTier`] if the backend has none.
    pub fn kv(&self) -> Result<Arc<dyn KvStore>, OpenError> {
        self.declared(self.capabilities.kv, &self.kv, "key-value")
    }

    /// The compare-and-swap tier.
    ///
    /// # Errors
    ///
    /// [`OpenError::UnsupportedTier`] if the backend has none.
    pub fn atomic(&self) -> Result<Arc<dyn AtomicKv>, OpenError> {
        self.declared(self.capabilities.atomic, &self.atomic, "compare-and-swap")
    }

    /// The queue tier.
    ///
    /// # Errors
    ///
    /// [`OpenError::UnsupportedTier`] if the backend has none.
    pub fn queue(&self) -> Result<Arc<dyn QueueStore>, OpenError> {
        self.declared(self.capabilities.queue, &self.queue, "queue")
    }

    /// The SQL tier.
    ///
    /// # Errors
    ///
    /// [`OpenError::UnsupportedTier`] if the backend has none.
    pub fn sql(&self) -> Result<Arc<dyn SqlEngine>, OpenError> {
        self.declared(self.capabilities.sql.is_some(), &self.sql, "SQL")
    }

    /// The key-value handle if the backend has the tier.
    pub fn kv_if_any(&self) -> Option<&dyn KvStore> {
        self.capabilities.kv.then_some(&*self.kv)
    }

    /// The queue handle if the backend has the tier.
    pub fn queue_if_any(&self) -> Option<&dyn QueueStore> {
        self.capabilities.queue.then_some(&*self.queue)
    }

    fn declared<T: ?Sized>(
        &self,
        declared: bool,
        handle: &Arc<T>,
        tier: &'static str,
    ) -> Result<Arc<T>, OpenError> {
        if declared {
            Ok(handle.clone())
        } else {
            Err(OpenError::UnsupportedTier {
                backend: self.label(),
                tier,
            })
        }
    }

    /// Writes a `memory://?snapshot=PATH` store's state to its snapshot
    /// file (to a temporary file, then renamed over it, so a crash never
    /// leaves half a file). Does nothing for every other backend, whose
    /// writes are already where the URL points.
    ///
    /// # Errors
    ///
    /// The export's error, or [`OpenError::Io`].
    pub async fn persist(&self) -> Result<(), OpenError> {
        let crate::Location::Memory {
            snapshot: Some(path),
        } = &*self.location
        else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        storage_core::snapshot::export(
            self.kv_if_any(),
            self.queue_if_any(),
            self.clock.now(),
            &mut bytes,
        )
        .await
        .map_err(|source| self.backend_error(source))?;
        crate::memory_file::write_atomically(path, &bytes)
    }

    /// Removes everything this store holds: every namespace and queue,
    /// and for Redis and object stores every key or object under the
    /// store's prefix. Files and directories named by the URL stay (empty).
    ///
    /// # Errors
    ///
    /// The backend's error.
    pub async fn destroy(&self) -> Result<(), OpenError> {
        let result = match &*self.concrete {
            #[cfg(feature = "redis")]
            Concrete::Redis(s) => s.destroy().await,
            #[cfg(feature = "remote")]
            Concrete::Remote(s) => s.destroy().await,
            Concrete::Generic => self.clear().await,
        };
        result.map_err(|source| self.backend_error(source))
    }

    /// Drops every namespace and deletes every queue through the tiers.
    async fn clear(&self) -> storage_core::Result<()> {
        if let Some(kv) = self.kv_if_any() {
            for ns in kv.list_namespaces().await? {
                kv.drop_namespace(&ns).await?;
            }
        }
        if let Some(q) = self.queue_if_any() {
            for name in q.list_queues("").await? {
                q.delete_queue(&name).await?;
            }
        }
        Ok(())
    }

    pub(crate) fn backend_error(&self, source: storage_core::Error) -> OpenError {
        OpenError::Backend {
            location: self.location.to_string(),
            source,
        }
    }
}
