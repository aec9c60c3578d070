//! Helpers every store gets for free.
//!
//! These traits are blanket-implemented for every implementer of the lean
//! traits (including `dyn KvStore` etc.); nobody implements them by hand,
//! so adding a helper never breaks a third-party backend.

use std::ops::Bound;

use async_trait::async_trait;
use bytes::Bytes;

use crate::atomic::{AtomicKv, PutMode};
use crate::error::{Error, Result};
use crate::kv::{prefix_successor, Cursor, Entry, KvStore, PutOptions, ScanRequest};
use crate::queue::{MessageId, QueueStore, SendMessage};
use crate::version::Version;

/// One page of a delimiter listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Entries directly under the prefix (no delimiter after it).
    pub entries: Vec<Entry>,
    /// Distinct `prefix + ... + delimiter` groups, in key order.
    pub common_prefixes: Vec<Bytes>,
    /// Continue here when the page was cut short.
    pub cursor: Option<Cursor>,
}

/// Provided helpers over [`KvStore`].
#[async_trait]
pub trait KvStoreExt: KvStore {
    /// S3-style listing: keys under `prefix`, with every key that has
    /// `delimiter` after the prefix folded into one common prefix. At most
    /// `limit` items (entries plus common prefixes) per page, in key order.
    ///
    /// Built on [`KvStore::scan`]: after a common prefix it skips straight
    /// past every key sharing it, so a page costs O(items), not O(keys
    /// folded).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), storage_core::Error> {
    /// use bytes::Bytes;
    /// use storage_core::{KvStore, KvStoreExt, PutOptions};
    /// let s = storage_memory::MemoryStore::new();
    /// for k in ["a/1", "a/2", "b", "c/x/y"] {
    ///     s.put("bucket", k.as_bytes(), Bytes::new(), PutOptions::default()).await?;
    /// }
    /// let page = s.list_with_delimiter("bucket", b"", b"/", None, 100).await?;
    /// assert_eq!(page.common_prefixes, vec![Bytes::from("a/"), Bytes::from("c/")]);
    /// assert_eq!(page.entries.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    async fn list_with_delimiter(
        &self,
        namespace: &str,
        prefix: &[u8],
        delimiter: &[u8],
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<ListPage> {
        let ctx = crate::Context::scoped("list_with_delimiter", self.backend_name(), namespace);
        if delimiter.is_empty() {
            return Err(Error::invalid(ctx, "delimiter is empty"));
        }
        crate::validate::scan_limit(&ctx, &self.capabilities(), limit)?;
        let base = ScanRequest::prefix(Bytes::copy_from_slice(prefix));
        let folded = |key: &[u8]| -> Option<Bytes> {
            let rest = key.get(prefix.len()..)?;
            let pos = find(rest, delimiter)?;
            Some(Bytes::copy_from_slice(
                &key[..prefix.len() + pos + delimiter.len()],
            ))
        };
        // Where to resume: after an entry, or past every key of a common
        // prefix that an earlier page already returned.
        let mut start = match cursor {
            None => base.start.clone(),
            Some(c) => match folded(c.last_key()) {
                Some(cp) => match prefix_successor(&cp) {
                    Some(s) => Bound::Included(s),
                    None => return Ok(ListPage::default()),
                },
                None => Bound::Excluded(c.last_key().clone()),
            },
        };
        let mut out = ListPage::default();
        let mut last: Option<Bytes> = None;
        let items = |o: &ListPage| o.entries.len() + o.common_prefixes.len();
        while items(&out) < limit {
            let req = ScanRequest {
                start: start.clone(),
                end: base.end.clone(),
                limit: limit - items(&out),
                ..ScanRequest::all()
            };
            let page = self.scan(namespace, req).await?;
            let exhausted = page.cursor.is_none();
            if page.entries.is_empty() {
                return Ok(out);
            }
            let mut jumped = false;
            for e in page.entries {
                if let Some(cp) = folded(&e.key) {
                    out.common_prefixes.push(cp.clone());
                    last = Some(cp.clone());
                    match prefix_successor(&cp) {
                        Some(s) if in_bounds(&base.end, &s) => start = Bound::Included(s),
                        _ => return Ok(out),
                    }
                    jumped = true;
                    break;
                }
                start = Bound::Excluded(e.key.clone());
                last = Some(e.key.clone());
                out.entries.push(e);
            }
            if !jumped && exhausted {
                return Ok(out);
            }
        }
        // The page is full: promise a next page only if something follows.
        let probe = ScanRequest {
            start,
            end: base.end.clone(),
            limit: 1,
            ..ScanRequest::all()
        };
        if !self.scan(namespace, probe).await?.entries.is_empty() {
            out.cursor = last.map(Cursor::after);
        }
        Ok(out)
    }

    /// Every live entry of a namespace, page by page, in key order.
    async fn scan_all(&self, namespace: &str, request: ScanRequest) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut req = request;
        loop {
            let page = self.scan(namespace, req.clone()).await?;
            out.extend(page.entries);
            match page.cursor {
                Some(c) => req.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

impl<T: KvStore + ?Sized> KvStoreExt for T {}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn in_bounds(end: &Bound<Bytes>, key: &[u8]) -> bool {
    match end {
        Bound::Included(e) => key <= &e[..],
        Bound::Excluded(e) => key < &e[..],
        Bound::Unbounded => true,
    }
}

/// Provided helpers over [`AtomicKv`].
#[async_trait]
pub trait AtomicKvExt: AtomicKv {
    /// Optimistic read-modify-write: reads the value, applies `f`, writes
    /// with a version condition, and on conflict re-reads and retries, up
    /// to `max_attempts` times. `f` returning `None` deletes the key.
    /// Returns the new version (`None` after a delete).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), storage_core::Error> {
    /// use bytes::Bytes;
    /// use storage_core::{AtomicKv, AtomicKvExt};
    /// let s = storage_memory::MemoryStore::new();
    /// for _ in 0..3 {
    ///     s.update_with_retry("c", b"n", 10, |cur| {
    ///         let n = cur.map(|b| b[0]).unwrap_or(0);
    ///         Some(Bytes::from(vec![n + 1]))
    ///     }).await?;
    /// }
    /// assert_eq!(s.get_versioned("c", b"n").await?.unwrap().value[0], 3);
    /// # Ok(())
    /// # }
    /// ```
    async fn update_with_retry<F>(
        &self,
        namespace: &str,
        key: &[u8],
        max_attempts: usize,
        mut f: F,
    ) -> Result<Option<Version>>
    where
        F: FnMut(Option<&Bytes>) -> Option<Bytes> + Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get_versioned(namespace, key).await?;
            let next = f(current.as_ref().map(|v| &v.value));
            let result = match (current, next) {
                (None, None) => return Ok(None),
                (Some(cur), None) => self
                    .delete_if(namespace, key, &cur.version)
                    .await
                    .map(|()| None),
                (cur, Some(value)) => {
                    let mode = match cur {
                        Some(c) => PutMode::Update(c.version),
                        None => PutMode::Create,
                    };
                    self.put_if(namespace, key, value, mode, PutOptions::default())
                        .await
                        .map(Some)
                }
            };
            match result {
                Err(Error::Conflict { .. }) if attempt < max_attempts => continue,
                other => return other,
            }
        }
    }
}

impl<T: AtomicKv + ?Sized> AtomicKvExt for T {}

/// Provided helpers over [`QueueStore`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), storage_core::Error> {
/// use storage_core::{QueueConfig, QueueStore, QueueStoreExt, SendMessage};
/// let s = storage_memory::MemoryStore::new();
/// s.create_queue("q", QueueConfig::default()).await?;
/// let id = s.send("q", SendMessage::new("one")).await?;
/// assert!(!id.as_str().is_empty());
/// assert_eq!(s.counts("q").await?.visible, 1);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait QueueStoreExt: QueueStore {
    /// Sends one message.
    async fn send(&self, queue: &str, message: SendMessage) -> Result<MessageId> {
        let mut ids = self.send_batch(queue, vec![message]).await?;
        ids.pop().ok_or_else(|| Error::Backend {
            ctx: crate::Context::scoped("send", self.backend_name(), queue),
            source: "send_batch returned no id".into(),
        })
    }
}

impl<T: QueueStore + ?Sized> QueueStoreExt for T {}
