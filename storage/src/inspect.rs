//! What a store holds, for `storage inspect`.

use serde::Serialize;
use storage_core::{Capabilities, ScanRequest};

use crate::error::OpenError;
use crate::store::Store;

/// Page size of the key counting scans (capped by the store's limit).
const COUNT_PAGE: usize = 1000;

/// One KV namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceInfo {
    /// Name.
    pub name: String,
    /// Live keys.
    pub keys: u64,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueInfo {
    /// Name.
    pub name: String,
    /// FIFO queue.
    pub fifo: bool,
    /// Receivable now.
    pub visible: u64,
    /// Received and still hidden.
    pub in_flight: u64,
    /// Not yet visible (delayed sends).
    pub delayed: u64,
}

/// Everything `storage inspect` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The store, password redacted.
    pub location: String,
    /// Backend label.
    pub backend: String,
    /// What the backend declares.
    pub capabilities: Capabilities,
    /// KV namespaces in name order (empty without a KV tier).
    pub namespaces: Vec<NamespaceInfo>,
    /// Queues in name order (empty without a queue tier).
    pub queues: Vec<QueueInfo>,
}

/// Counts every namespace's live keys (a paged scan of each) and reads
/// every queue's counts.
///
/// # Errors
///
/// The store's errors.
pub async fn inspect(store: &Store) -> Result<Inspection, OpenError> {
    let err = |e| store.backend_error(e);
    let mut namespaces = Vec::new();
    if let Some(kv) = store.kv_if_any() {
        let limit = COUNT_PAGE.min(kv.capabilities().max_scan_limit).max(1);
        for name in kv.list_namespaces().await.map_err(err)? {
            let mut keys = 0u64;
            let mut request = ScanRequest::all().with_limit(limit);
            loop {
                let page = kv.scan(&name, request.clone()).await.map_err(err)?;
                keys = keys.saturating_add(page.entries.len() as u64);
                match page.cursor {
                    Some(c) => request.cursor = Some(c),
                    None => break,
                }
            }
            namespaces.push(NamespaceInfo { name, keys });
        }
    }
    let mut queues = Vec::new();
    if let Some(q) = store.queue_if_any() {
        for name in q.list_queues("").await.map_err(err)? {
            let fifo = q.queue_config(&name).await.map_err(err)?.fifo;
            let c = q.counts(&name).await.map_err(err)?;
            queues.push(QueueInfo {
                name,
                fifo,
                visible: c.visible,
                in_flight: c.in_flight,
                delayed: c.delayed,
            });
        }
    }
    Ok(Inspection {
        location: store.location().to_string(),
        backend: store.label().to_owned(),
        capabilities: store.capabilities(),
        namespaces,
        queues,
    })
}

impl Inspection {
    /// A human-readable listing.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "{} ({})", self.location, self.backend);
        let keys: u64 = self.namespaces.iter().map(|n| n.keys).sum();
        let _ = writeln!(out, "namespaces: {} ({} keys)", self.namespaces.len(), keys);
        for n in &self.namespaces {
            let _ = writeln!(out, "  {:<32} {:>10} keys", n.name, n.keys);
        }
        let _ = writeln!(out, "queues: {}", self.queues.len());
        for q in &self.queues {
            let _ = writeln!(
                out,
                "  {:<32} {:>8} visible {:>8} in flight {:>8} delayed{}",
                q.name,
                q.visible,
                q.in_flight,
                q.delayed,
                if q.fifo { "  (FIFO)" } else { "" }
            );
        }
        out
    }
}
