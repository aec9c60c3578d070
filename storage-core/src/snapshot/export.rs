//! Export through the tier traits.

use std::io::Write;

use super::{encode, KvEntry, Snapshot, Summary};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::kv::{KvStore, ScanRequest};
use crate::queue::QueueStore;

/// Page size of the export's scans (capped by the store's `max_scan_limit`).
const SCAN_PAGE: usize = 1000;

/// Exports the KV state of `kv` and the queue state of `queues` to `out`,
/// stamped with `exported_at` (pass the exporting store's clock reading so
/// an importer can carry the clock over).
///
/// A `None` store, or one whose capabilities lack the tier, contributes
/// nothing. KV entries are read with [`KvStore::list_namespaces`] and paged
/// [`KvStore::scan`] (carrying each entry's version and expiry); queues
/// with [`QueueStore::list_queues`] and [`QueueStore::export_queue`] (a
/// queue deleted while the export runs is skipped). See the module docs
/// for consistency under concurrent writes.
///
/// # Errors
///
/// Whatever the stores report; [`Error::InvalidInput`] in context
/// `export_snapshot` if a store returned entries out of order (a broken
/// scan contract); [`Error::Backend`] if `out` fails.
pub async fn export(
    kv: Option<&dyn KvStore>,
    queues: Option<&dyn QueueStore>,
    exported_at: Timestamp,
    out: &mut dyn Write,
) -> Result<Summary> {
    export_with_progress(kv, queues, exported_at, out, &|_| {}).await
}

/// [`export`], calling `progress` with what has been read so far after
/// every scan page and every queue (`bytes` stays 0 until the end), so a
/// caller can draw a progress indicator. The total is not known in
/// advance.
///
/// # Errors
///
/// As [`export`].
pub async fn export_with_progress(
    kv: Option<&dyn KvStore>,
    queues: Option<&dyn QueueStore>,
    exported_at: Timestamp,
    out: &mut dyn Write,
    progress: &(dyn Fn(&Summary) + Send + Sync),
) -> Result<Summary> {
    let mut read = Summary::default();
    let kv = kv.filter(|s| s.capabilities().kv);
    let queues = queues.filter(|s| s.capabilities().queue);
    let backend = match (
        kv.map(|s| s.backend_name()),
        queues.map(|s| s.backend_name()),
    ) {
        (Some(a), Some(b)) if a == b => a.to_owned(),
        (Some(a), Some(b)) => format!("{a}+{b}"),
        (Some(a), None) | (None, Some(a)) => a.to_owned(),
        (None, None) => "none".to_owned(),
    };
    let mut snapshot = Snapshot {
        exported_at,
        backend,
        ..Snapshot::default()
    };

    if let Some(kv) = kv {
        let limit = SCAN_PAGE.min(kv.capabilities().max_scan_limit).max(1);
        for ns in kv.list_namespaces().await? {
            let mut entries = Vec::new();
            let mut request = ScanRequest::all().with_limit(limit);
            loop {
                let page = kv.scan(&ns, request.clone()).await?;
                read.entries = read
                    .entries
                    .saturating_add(super::len_u64(page.entries.len()));
                entries.extend(page.entries.into_iter().map(|e| KvEntry {
                    key: e.key,
                    value: e.value,
                    version: e.version.map(|v| v.to_string()),
                    expires_at: e.expires_at,
                }));
                progress(&read);
                match page.cursor {
                    Some(c) => request.cursor = Some(c),
                    None => break,
                }
            }
            if !entries.is_empty() {
                read.namespaces = read.namespaces.saturating_add(1);
                snapshot.namespaces.insert(ns, entries);
            }
        }
    }

    if let Some(queues) = queues {
        for name in queues.list_queues("").await? {
            match queues.export_queue(&name).await {
                Ok(state) => {
                    read.queues = read.queues.saturating_add(1);
                    read.messages = read
                        .messages
                        .saturating_add(super::len_u64(state.messages.len()));
                    progress(&read);
                    snapshot.queues.insert(name, state);
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    let summary = encode(&snapshot, out)?;
    tracing::debug!(
        namespaces = summary.namespaces,
        entries = summary.entries,
        queues = summary.queues,
        messages = summary.messages,
        bytes = summary.bytes,
        "snapshot exported"
    );
    Ok(summary)
}
