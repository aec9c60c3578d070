//! Administrative operations on a whole store (not part of any tier).

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use storage_core::{At, Result};

use crate::backend::RemoteStore;
use crate::config::BACKEND;
use crate::error::{is_absent, map_err};

impl RemoteStore {
    /// Deletes every object under this store's prefix (test cleanup; use
    /// it only on a store being discarded). With an empty prefix that is
    /// the whole bucket. Objects written concurrently may survive it.
    pub async fn destroy(&self) -> Result<()> {
        match self.inner.layout.root() {
            Some(root) => self.delete_all("destroy", "", &root).await,
            None => {
                // No prefix: delete namespace by namespace, so objects of
                // other programs at the bucket root are left alone.
                let listing = self
                    .inner
                    .store
                    .list_with_delimiter(None)
                    .await
                    .map_err(|e| map_err(At::new("destroy", BACKEND), e))?;
                for dir in listing.common_prefixes {
                    if self.inner.layout.namespace_of(&dir).is_some() {
                        self.delete_all("destroy", "", &dir).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Removes the tombstones conditional deletes left in `namespace`;
    /// returns how many went.
    ///
    /// # Concurrency
    ///
    /// object_store's `DELETE` is unconditional: a `Create` that writes
    /// over a tombstone between this call's listing and its delete would
    /// be lost. Run it while no conditional writer is active on the
    /// namespace (emulator start-up, maintenance), never concurrently.
    pub async fn purge_tombstones(&self, namespace: &str) -> Result<usize> {
        const OP: &str = "purge_tombstones";
        self.check().namespace(OP, namespace)?;
        let at = At::scoped(OP, BACKEND, namespace);
        let dir = self.inner.layout.namespace(namespace);
        let empty: Vec<_> = self
            .inner
            .store
            .list(Some(&dir))
            .try_filter(|m| futures::future::ready(m.size == 0))
            .try_collect()
            .await
            .map_err(|e| map_err(at, e))?;
        let mut n = 0;
        for m in empty {
            match self.inner.store.delete(&m.location).await {
                Ok(()) => n += 1,
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(map_err(at, e)),
            }
        }
        Ok(n)
    }
}
