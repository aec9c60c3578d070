//! The ordered, namespaced key-value tier.

use std::fmt;
use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::Timestamp;
use crate::error::{Context, Error, Result};
use crate::version::Version;
use crate::Capabilities;

/// When a written entry expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Never.
    #[default]
    Never,
    /// This long after the write, by the store's clock.
    After(Duration),
    /// At this instant by the store's clock (used by snapshot import to
    /// carry an expiry across stores).
    At(Timestamp),
}

impl Expiry {
    /// The absolute expiry instant for a write made at `now`.
    pub fn resolve(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::After(d) => Some(now.saturating_add(d)),
            Expiry::At(t) => Some(t),
        }
    }
}

/// Options of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutOptions {
    /// Expiry of the written entry; needs
    /// [`Capabilities::kv_ttl`] unless it is [`Expiry::Never`].
    pub expiry: Expiry,
}

impl PutOptions {
    /// Expires `ttl` after the write.
    pub fn ttl(ttl: Duration) -> Self {
        PutOptions {
            expiry: Expiry::After(ttl),
        }
    }
}

/// One write of a [`KvStore::write_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Store `value` at `key`.
    Put {
        /// Key.
        key: Bytes,
        /// Value.
        value: Bytes,
        /// Options.
        options: PutOptions,
    },
    /// Remove `key` if present.
    Delete {
        /// Key.
        key: Bytes,
    },
}

impl BatchOp {
    /// The key this operation writes.
    pub fn key(&self) -> &Bytes {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending unsigned byte order.
    #[default]
    Forward,
    /// Descending unsigned byte order.
    Reverse,
}

/// Continuation of a scan: the last key a page returned. Opaque to
/// callers; round-trips through its string form (lower-case hex).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Bytes);

impl Cursor {
    /// The cursor that resumes after `last_key`.
    pub fn after(last_key: Bytes) -> Self {
        Cursor(last_key)
    }

    /// The last key of the previous page.
    pub fn last_key(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

impl std::str::FromStr for Cursor {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Cursor(hex::decode(s)?.into()))
    }
}

/// What a scan reads: a key range or a prefix, a page limit, a direction
/// and an optional continuation cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Lower bound of keys.
    pub start: Bound<Bytes>,
    /// Upper bound of keys.
    pub end: Bound<Bytes>,
    /// Most entries to return (1..=[`Capabilities::max_scan_limit`]).
    pub limit: usize,
    /// Order of the page.
    pub direction: Direction,
    /// Resume after the key this cursor names (exclusive).
    pub cursor: Option<Cursor>,
}

impl Default for ScanRequest {
    fn default() -> Self {
        ScanRequest::all()
    }
}

impl ScanRequest {
    /// Every key, forward, 1000 per page.
    pub fn all() -> Self {
        ScanRequest {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: 1000,
            direction: Direction::Forward,
            cursor: None,
        }
    }

    /// Keys starting with `prefix`.
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let prefix: Bytes = prefix.into();
        let end = match prefix_successor(&prefix) {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        };
        let start = if prefix.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(prefix)
        };
        ScanRequest {
            start,
            end,
            ..ScanRequest::all()
        }
    }

    /// Keys in `start..end` (half-open).
    pub fn range(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        ScanRequest {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
            ..ScanRequest::all()
        }
    }

    /// Sets the page limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Scans in descending order.
    pub fn reversed(mut self) -> Self {
        self.direction = Direction::Reverse;
        self
    }

    /// Continues a previous scan.
    pub fn with_cursor(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// The bounds that remain to be read once the cursor is applied: a
    /// forward scan resumes strictly after the cursor's key, a reverse
    /// scan strictly before it. Backends query exactly these bounds.
    pub fn effective_bounds(&self) -> (Bound<Bytes>, Bound<Bytes>) {
        let Some(cursor) = &self.cursor else {
            return (self.start.clone(), self.end.clone());
        };
        let last = cursor.last_key().clone();
        match self.direction {
            Direction::Forward => (tighter_lower(&self.start, last), self.end.clone()),
            Direction::Reverse => (self.start.clone(), tighter_upper(&self.end, last)),
        }
    }

    /// The effective bounds, or `None` when no key can lie between them
    /// (an inverted range, equal exclusive bounds, or a cursor past the
    /// end). Ordered-map backends must check this: `BTreeMap::range`
    /// panics on such bounds.
    pub fn effective_range(&self) -> Option<(Bound<Bytes>, Bound<Bytes>)> {
        let (lo, hi) = self.effective_bounds();
        let empty = match (&lo, &hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a >= b
            }
            _ => false,
        };
        (!empty).then_some((lo, hi))
    }

    /// Whether `key` lies within the effective bounds.
    pub fn contains(&self, key: &[u8]) -> bool {
        let (lo, hi) = self.effective_bounds();
        bound_admits_from_below(&lo, key) && bound_admits_from_above(&hi, key)
    }

    /// Validates the limit and that the range is not inverted.
    pub fn validate(&self, ctx: impl Into<Context> + Copy, caps: &Capabilities) -> Result<()> {
        crate::validate::scan_limit(ctx, caps, self.limit)?;
        if let (Some(lo), Some(hi)) = (bound_key(&self.start), bound_key(&self.end)) {
            if lo > hi {
                return Err(Error::invalid(ctx, "scan start is after its end"));
            }
        }
        Ok(())
    }
}

fn bound_key(b: &Bound<Bytes>) -> Option<&Bytes> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

fn tighter_lower(start: &Bound<Bytes>, after: Bytes) -> Bound<Bytes> {
    match start {
        Bound::Included(s) | Bound::Excluded(s) if *s > after => start.clone(),
        _ => Bound::Excluded(after),
    }
}

fn tighter_upper(end: &Bound<Bytes>, before: Bytes) -> Bound<Bytes> {
    match end {
        Bound::Included(e) | Bound::Excluded(e) if *e < before => end.clone(),
        _ => Bound::Excluded(before),
    }
}

fn bound_admits_from_below(lo: &Bound<Bytes>, key: &[u8]) -> bool {
    match lo {
        Bound::Included(s) => key >= &s[..],
        Bound::Excluded(s) => key > &s[..],
        Bound::Unbounded => true,
    }
}

fn bound_admits_from_above(hi: &Bound<Bytes>, key: &[u8]) -> bool {
    match hi {
        Bound::Included(e) => key <= &e[..],
        Bound::Excluded(e) => key < &e[..],
        Bound::Unbounded => true,
    }
}

/// The smallest key greater than every key with this prefix, or `None`
/// when no such key exists (the prefix is empty or all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Bytes> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s.into());
        }
    }
    None
}

/// One stored entry as a scan returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key.
    pub key: Bytes,
    /// Value.
    pub value: Bytes,
    /// Version token, on stores that implement [`AtomicKv`](crate::AtomicKv).
    pub version: Option<Version>,
    /// When the entry expires, if it does.
    pub expires_at: Option<Timestamp>,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Entries in the requested direction.
    pub entries: Vec<Entry>,
    /// `Some` exactly when the page is full and at least one more entry
    /// exists in the range; pass it back to read the next page.
    pub cursor: Option<Cursor>,
}

/// An ordered, namespaced key-value store.
///
/// # Contract
///
/// - Data lives in **namespaces**: names of 1..=`max_namespace_size` bytes
///   of ASCII letters, digits and `_ - . : /`. A namespace exists while it
///   holds at least one live entry.
/// - **Keys** are 1..=`max_key_size` arbitrary bytes; **values** are
///   0..=`max_value_size` bytes. Breaking a limit is
///   [`Error::InvalidInput`] and writes nothing (for a batch: nothing of
///   the batch).
/// - **Expiry** ([`PutOptions::expiry`]) is judged by the store's
///   [`Clock`](crate::Clock): an entry whose expiry instant is at or
///   before now is absent to every read, scan and listing. Expiry needs
///   [`Capabilities::kv_ttl`]; without it a put with an expiry is
///   [`Error::Unsupported`]. A put without expiry clears an earlier one.
/// - **Scans** return entries in unsigned byte order of the key (or its
///   reverse), at most `limit` per page, with a cursor when more remain.
///   A scan that runs while others write never returns a key twice and
///   never skips a key that existed, unchanged, for the whole scan
///   (cursors resume strictly after the last returned key).
/// - Every method validates its whole input before writing anything.
///
/// # Errors
///
/// [`Error::InvalidInput`] for broken limits, [`Error::Unavailable`] for
/// transport failures (retryable), [`Error::Backend`] for anything else.
///
/// # Cancellation
///
/// Dropping a returned future before it completes may or may not have
/// applied the write, but never applies part of one call.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), storage_core::Error> {
/// use bytes::Bytes;
/// use storage_core::{KvStore, PutOptions, ScanRequest};
/// let store = storage_memory::MemoryStore::new();
/// store.put("users", b"alice", Bytes::from_static(b"1"), PutOptions::default()).await?;
/// store.put("users", b"bob", Bytes::from_static(b"2"), PutOptions::default()).await?;
/// assert_eq!(store.get("users", b"alice").await?, Some(Bytes::from_static(b"1")));
/// let page = store.scan("users", ScanRequest::prefix("b")).await?;
/// assert_eq!(page.entries[0].key, Bytes::from_static(b"bob"));
/// assert!(store.delete("users", b"bob").await?);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The backend's name, as it appears in errors (`"memory"`, `"sqlite"`).
    fn backend_name(&self) -> &'static str;

    /// What this store supports; constant for the life of the store.
    fn capabilities(&self) -> Capabilities;

    /// The value at `key`, or `None` if absent or expired.
    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>>;

    /// Stores `value` at `key`, replacing any previous value and expiry.
    async fn put(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<()>;

    /// Removes `key`; `true` if a live entry was removed.
    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool>;

    /// The values at `keys`, in the same order.
    async fn get_many(&self, namespace: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>>;

    /// Applies `ops` in order, validated as a whole first. Atomic (all or
    /// nothing, never observed half-applied) on stores whose
    /// [`Capabilities::transaction_scope`] is not `None`; elsewhere applied
    /// in order, and a failure may leave a prefix applied.
    async fn write_batch(&self, namespace: &str, ops: Vec<BatchOp>) -> Result<()>;

    /// One page of entries in the requested range and direction.
    async fn scan(&self, namespace: &str, request: ScanRequest) -> Result<ScanPage>;

    /// Names of namespaces that hold at least one live entry, sorted.
    async fn list_namespaces(&self) -> Result<Vec<String>>;

    /// Removes every entry of `namespace`; `true` if it held any.
    async fn drop_namespace(&self, namespace: &str) -> Result<bool>;
}
