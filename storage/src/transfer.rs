//! Moving state between stores: export to bytes, import from bytes, copy
//! — all in the portable snapshot format of `storage_core::snapshot`.

use std::io::Write;

use storage_core::snapshot::{self, ImportMode, Summary};

use crate::error::OpenError;
use crate::store::Store;

/// Which tiers an export reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// KV and queues, whichever the store has.
    #[default]
    All,
    /// KV only (for a target without a queue tier).
    KvOnly,
}

/// Writes `store`'s KV and (unless `scope` is [`Scope::KvOnly`]) queue
/// state to `out` as a snapshot stamped with the store clock's "now".
/// `progress` sees what has been read so far.
///
/// # Errors
///
/// The store's errors, or a failing `out`.
pub async fn export(
    store: &Store,
    scope: Scope,
    out: &mut dyn Write,
    progress: &(dyn Fn(&Summary) + Send + Sync),
) -> Result<Summary, OpenError> {
    snapshot::export_with_progress(
        store.kv_if_any(),
        match scope {
            Scope::All => store.queue_if_any(),
            Scope::KvOnly => None,
        },
        store.clock().now(),
        out,
        progress,
    )
    .await
    .map_err(|e| store.backend_error(e))
}

/// Verifies `bytes` completely, then writes them into `store` (`Replace`:
/// the store ends up holding exactly the snapshot; `Merge`: snapshot keys
/// and queues overwrite their namesakes). A snapshot that is truncated,
/// corrupted, of another format version, or that the store cannot hold,
/// is refused before anything is written. A `memory://?snapshot=` store's
/// file is rewritten afterwards. `progress(done, total)` follows the writes.
///
/// # Errors
///
/// `InvalidInput` inside [`OpenError::Backend`] for a bad snapshot (nothing
/// written); the store's errors during the writes.
pub async fn import(
    store: &Store,
    bytes: &[u8],
    mode: ImportMode,
    progress: &(dyn Fn(&Summary, &Summary) + Send + Sync),
) -> Result<Summary, OpenError> {
    let summary = snapshot::import_with_progress(
        bytes,
        store.kv_if_any(),
        store.queue_if_any(),
        mode,
        progress,
    )
    .await
    .map_err(|e| store.backend_error(e))?;
    store.persist().await?;
    Ok(summary)
}

/// Exports `from` and imports the snapshot into `to`: [`export`] then
/// [`import`], so `to` is checked against the whole snapshot before the
/// first write.
///
/// # Errors
///
/// As [`export`] and [`import`].
pub async fn copy(
    from: &Store,
    to: &Store,
    scope: Scope,
    mode: ImportMode,
    read: &(dyn Fn(&Summary) + Send + Sync),
    written: &(dyn Fn(&Summary, &Summary) + Send + Sync),
) -> Result<Summary, OpenError> {
    let mut bytes = Vec::new();
    export(from, scope, &mut bytes, read).await?;
    import(to, &bytes, mode, written).await
}

/// `bytes` re-encoded as if exported at `store`'s "now"
/// ([`Snapshot::rebased`](storage_core::snapshot::Snapshot::rebased)):
/// for fixtures, whose TTLs, delays and retention would otherwise have
/// run out by the time they are loaded.
///
/// # Errors
///
/// `InvalidInput` for a snapshot that does not verify.
pub fn rebase(store: &Store, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
    let rebased = snapshot::decode(bytes)
        .map_err(|e| store.backend_error(e))?
        .rebased(store.clock().now());
    let mut out = Vec::new();
    snapshot::encode(&rebased, &mut out).map_err(|e| store.backend_error(e))?;
    Ok(out)
}
