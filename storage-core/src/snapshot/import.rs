//! Import through the tier traits, after verifying everything.

use std::collections::{BTreeMap, BTreeSet};

use super::format::{DECODE_OP, FORMAT_BACKEND};
use super::{decode, len_u64, Snapshot, Summary};
use crate::capabilities::Capabilities;
use crate::error::{Context, Error, Result};
use crate::kv::{BatchOp, Expiry, KvStore, PutOptions};
use crate::queue::{QueueState, QueueStore};
use crate::validate;

/// Most operations one import `write_batch` carries (lower when the store's
/// `max_transaction_ops` is lower).
const BATCH_OPS: usize = 100;

/// How an import treats what the targets already hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// The targets end up holding exactly the snapshot: every existing
    /// namespace is dropped and every existing queue deleted first.
    Replace,
    /// Snapshot keys and queues overwrite their namesakes; everything else
    /// stays. A queue is replaced whole (config, messages, dedup memory).
    Merge,
}

/// Verifies `bytes` as a snapshot, checks the targets can hold it, then
/// writes it into `kv` and `queues` (which may be the same store).
///
/// Nothing is written unless the snapshot decodes and verifies completely
/// ([`decode`]) and the targets pass every check: the snapshot's KV data
/// needs a `kv` target declaring [`Capabilities::kv`] (and
/// [`Capabilities::kv_ttl`] for expiring entries), with namespaces, keys
/// and values inside its limits; its queues need a `queues` target
/// declaring [`Capabilities::queue`] (and `queue_fifo` / `queue_dead_letter`
/// for FIFO / redrive configurations) that accepts each configuration.
///
/// KV entries are written with [`KvStore::write_batch`] in chunks of at most
/// 100 operations (fewer if `max_transaction_ops` is smaller), expiring
/// ones with [`Expiry::At`] their exported instant; they get fresh version
/// tokens. Queues are installed with [`QueueStore::import_queue`], dead-letter
/// queues before the queues that redrive into them; message ids and
/// receive counts are kept, so receipts issued before the export stay valid.
/// All instants are the exporter's clock readings: give the target a clock
/// at or after [`Snapshot::exported_at`](super::Snapshot) to carry time over.
///
/// Returns what was imported, with `bytes` the snapshot's size.
///
/// # Errors
///
/// [`Error::InvalidInput`] in context `import_snapshot` (on `snapshot` for
/// format problems, on the target's backend name for target problems), with
/// nothing written. Errors of the stores during the writes are returned as
/// they are and may leave a partial import.
pub async fn import(
    bytes: &[u8],
    kv: Option<&dyn KvStore>,
    queues: Option<&dyn QueueStore>,
    mode: ImportMode,
) -> Result<Summary> {
    import_with_progress(bytes, kv, queues, mode, &|_, _| {}).await
}

/// [`import`], calling `progress(done, total)` after every verified write
/// (a KV batch or a whole queue), where `total` is the snapshot's
/// [`Summary`](super::Summary) and `done` what has been written so far, so
/// a caller can draw a progress bar. It is first called with nothing done,
/// after every check passed and before the first write.
///
/// # Errors
///
/// As [`import`].
pub async fn import_with_progress(
    bytes: &[u8],
    kv: Option<&dyn KvStore>,
    queues: Option<&dyn QueueStore>,
    mode: ImportMode,
    progress: &(dyn Fn(&Summary, &Summary) + Send + Sync),
) -> Result<Summary> {
    let snapshot = decode(bytes)?;
    check_kv_target(&snapshot, kv)?;
    check_queue_target(&snapshot, queues)?;

    let kv = kv.filter(|s| s.capabilities().kv);
    let queues = queues.filter(|s| s.capabilities().queue);
    let mut total = snapshot.summary();
    total.bytes = len_u64(bytes.len());
    let mut done = Summary::default();
    progress(&done, &total);

    if mode == ImportMode::Replace {
        if let Some(kv) = kv {
            for ns in kv.list_namespaces().await? {
                kv.drop_namespace(&ns).await?;
            }
        }
        if let Some(queues) = queues {
            for q in queues.list_queues("").await? {
                queues.delete_queue(&q).await?;
            }
        }
    }

    if let Some(kv) = kv {
        let caps = kv.capabilities();
        let chunk = match caps.max_transaction_ops {
            0 => BATCH_OPS,
            n => n.min(BATCH_OPS),
        };
        for (ns, entries) in &snapshot.namespaces {
            for part in entries.chunks(chunk) {
                let ops = part
                    .iter()
                    .map(|e| BatchOp::Put {
                        key: e.key.clone(),
                        value: e.value.clone(),
                        options: PutOptions {
                            expiry: e.expires_at.map_or(Expiry::Never, Expiry::At),
                        },
                    })
                    .collect();
                kv.write_batch(ns, ops).await?;
                done.entries = done.entries.saturating_add(len_u64(part.len()));
                progress(&done, &total);
            }
            done.namespaces = done.namespaces.saturating_add(1);
        }
    }

    if let Some(queues) = queues {
        for name in queue_import_order(&snapshot.queues) {
            if let Some(state) = snapshot.queues.get(name) {
                queues.import_queue(name, state.clone()).await?;
                done.queues = done.queues.saturating_add(1);
                done.messages = done.messages.saturating_add(len_u64(state.messages.len()));
                progress(&done, &total);
            }
        }
    }

    let summary = total;
    tracing::debug!(
        namespaces = summary.namespaces,
        entries = summary.entries,
        queues = summary.queues,
        messages = summary.messages,
        bytes = summary.bytes,
        ?mode,
        "snapshot imported"
    );
    Ok(summary)
}

/// Queue names with every dead-letter queue of the snapshot before the
/// queues that redrive into it (cycles fall back to name order).
fn queue_import_order(queues: &BTreeMap<String, QueueState>) -> Vec<&str> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(queues.len());
    while order.len() < queues.len() {
        let before = order.len();
        for (name, state) in queues {
            if done.contains(name.as_str()) {
                continue;
            }
            let ready = match &state.config.redrive {
                Some(r) => {
                    let dlq = r.dead_letter_queue.as_str();
                    dlq == name || !queues.contains_key(dlq) || done.contains(dlq)
                }
                None => true,
            };
            if ready {
                done.insert(name);
                order.push(name.as_str());
            }
        }
        if order.len() == before {
            // A redrive cycle: take the rest in name order.
            for name in queues.keys() {
                if done.insert(name) {
                    order.push(name.as_str());
                }
            }
        }
    }
    order
}

fn format_ctx() -> Context {
    Context::new(DECODE_OP, FORMAT_BACKEND)
}

fn check_kv_target(snapshot: &Snapshot, kv: Option<&dyn KvStore>) -> Result<()> {
    let summary = snapshot.summary();
    if summary.entries == 0 {
        return Ok(());
    }
    let Some(kv) = kv else {
        return Err(Error::invalid(
            format_ctx(),
            format!(
                "the snapshot holds {} KV entries in {} namespaces but no KV target was given",
                summary.entries, summary.namespaces
            ),
        ));
    };
    let backend = kv.backend_name();
    let caps = kv.capabilities();
    let ctx = Context::new(DECODE_OP, backend);
    if !caps.kv {
        return Err(Error::invalid(
            ctx,
            format!(
                "the snapshot holds {} KV entries but the {backend} backend does not declare the KV tier",
                summary.entries
            ),
        ));
    }
    for (ns, entries) in &snapshot.namespaces {
        let ctx = Context::scoped(DECODE_OP, backend, ns.as_str());
        validate::namespace(&ctx, &caps, ns)?;
        for e in entries {
            validate::key(&ctx, &caps, &e.key)?;
            validate::value(&ctx, &caps, &e.value)?;
            if e.expires_at.is_some() && !caps.kv_ttl {
                return Err(Error::invalid(
                    ctx,
                    format!(
                        "entry {} expires, but the {backend} backend does not declare kv_ttl",
                        hex::encode(&e.key)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_queue_target(snapshot: &Snapshot, queues: Option<&dyn QueueStore>) -> Result<()> {
    if snapshot.queues.is_empty() {
        return Ok(());
    }
    let Some(store) = queues else {
        return Err(Error::invalid(
            format_ctx(),
            format!(
                "the snapshot holds {} queues but no queue target was given",
                snapshot.queues.len()
            ),
        ));
    };
    let backend = store.backend_name();
    let caps: Capabilities = store.capabilities();
    if !caps.queue {
        return Err(Error::invalid(
            Context::new(DECODE_OP, backend),
            format!(
                "the snapshot holds {} queues but the {backend} backend does not declare the queue tier",
                snapshot.queues.len()
            ),
        ));
    }
    for (name, state) in &snapshot.queues {
        let ctx = Context::scoped(DECODE_OP, backend, name.as_str());
        validate::namespace(&ctx, &caps, name)?;
        let config = &state.config;
        if config.fifo && !caps.queue_fifo {
            return Err(Error::invalid(
                ctx,
                format!(
                    "queue {name:?} is FIFO, but the {backend} backend does not declare queue_fifo"
                ),
            ));
        }
        if config.redrive.is_some() && !caps.queue_dead_letter {
            return Err(Error::invalid(
                ctx,
                format!(
                    "queue {name:?} has a redrive policy, but the {backend} backend does not declare queue_dead_letter"
                ),
            ));
        }
        config.validate(&ctx, &caps).map_err(|e| match e {
            e @ Error::InvalidInput { .. } => e,
            other => Error::invalid(ctx.clone(), format!("queue {name:?}: {other}")),
        })?;
    }
    Ok(())
}
