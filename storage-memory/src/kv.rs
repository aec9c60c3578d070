//! The KV tier of the memory backend, and the state the CAS tier shares.
//!
//! # Design
//!
//! - **One lock.** Every namespace lives in one
//!   [`parking_lot::RwLock`]-protected [`KvData`]. Reads (get, get-many,
//!   scan, list) share it; every write — a plain put as much as a
//!   transaction over many namespaces — takes it exclusively, so
//!   conditions are checked and writes applied in one atomic step, and a
//!   batch is never observed half-applied. No lock is held across an
//!   `.await` (the async methods never await).
//! - **Versions** come from one store-wide atomic counter that only
//!   grows, so a token is never issued twice, not even after delete +
//!   recreate, and every write (plain `put` included) issues a new one.
//!   Tokens are only compared for equality, so the counter need not follow
//!   lock order. Slots keep the raw `u64` (what conditions compare) and
//!   its [`Version`], built with the slot; tokens are inline (no
//!   allocation), so reads and scans hand out copies, and neither a write
//!   nor a read touches the allocator for one.
//! - **Expiry** is judged by the store's clock. An expired slot is absent
//!   to every read, scan, listing and condition; reads never modify
//!   anything. Writes, which already hold the write lock, purge expired
//!   slots through an expiry index (`expires_at` → slot), a bounded number
//!   per write, so TTL'd data that nobody touches again does not stay in
//!   memory forever.
//! - **Lean hot path.** Namespaces are looked up by `&str` and keys by
//!   `&[u8]` (no allocation on reads), values are `Bytes` (clones are
//!   reference counts), the clock is read only when an expiry is involved,
//!   and the input rules are pre-checked without building an error
//!   [`Context`](storage_core::Context) (its scope is an owned `String`); the shared validators of
//!   [`storage_core::validate`] produce the error when a check fails.

use std::collections::BTreeMap;
use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use storage_core::validate::Validator;
use storage_core::{
    At, BatchOp, Capabilities, Clock, Cursor, Direction, Entry, Expiry, KvStore, PutOptions,
    Result, ScanPage, ScanRequest, Timestamp, Version,
};

use crate::backend::MemoryStore;
use crate::config::{BACKEND, CAPABILITIES};

/// Most expired slots one write removes, so a write that comes after a
/// long idle period does not pay for the whole backlog at once. Each TTL
/// write adds one index entry and may purge this many, so the backlog of
/// expired-but-stored slots cannot outgrow the write rate.
const PURGE_BUDGET: usize = 64;

/// The entries of one namespace, in unsigned byte order of the key.
pub(crate) type Namespace = BTreeMap<Bytes, Slot>;

/// One stored value.
pub(crate) struct Slot {
    /// The value.
    pub(crate) value: Bytes,
    /// The counter value of the write that stored it; unique store-wide.
    pub(crate) version: u64,
    /// `version` as the caller-facing token, built with the slot: inline
    /// (no allocation), and every read hands out a copy, so a scan page
    /// does not format a token per entry.
    pub(crate) token: Version,
    /// When it stops being visible, if ever.
    pub(crate) expires_at: Option<Timestamp>,
}

impl Slot {
    /// A slot for `value` written at counter `version`.
    pub(crate) fn new(value: Bytes, version: u64, expires_at: Option<Timestamp>) -> Slot {
        Slot {
            value,
            version,
            token: Version::from_counter(version),
            expires_at,
        }
    }

    /// Whether the slot is visible at `now` (an expiry at or before now
    /// means absent). Reads the clock only if the slot has an expiry.
    pub(crate) fn is_live(&self, now: &mut Now<'_>) -> bool {
        match self.expires_at {
            None => true,
            Some(t) => t > now.get(),
        }
    }

    /// The slot's version as a caller-facing token.
    pub(crate) fn token(&self) -> Version {
        self.token.clone()
    }

    fn to_entry(&self, key: &Bytes) -> Entry {
        Entry {
            key: key.clone(),
            value: self.value.clone(),
            version: Some(self.token()),
            expires_at: self.expires_at,
        }
    }
}

/// "Now" for one operation: read from the clock at most once, and only if
/// something actually needs it (most entries have no expiry).
pub(crate) struct Now<'a> {
    clock: &'a dyn Clock,
    at: Option<Timestamp>,
}

impl<'a> Now<'a> {
    pub(crate) fn new(clock: &'a dyn Clock) -> Self {
        Now { clock, at: None }
    }

    pub(crate) fn get(&mut self) -> Timestamp {
        *self.at.get_or_insert_with(|| self.clock.now())
    }

    /// The absolute expiry of a write made now; reads the clock only for
    /// [`Expiry::After`].
    pub(crate) fn resolve(&mut self, expiry: Expiry) -> Option<Timestamp> {
        match expiry {
            Expiry::Never => None,
            Expiry::At(t) => Some(t),
            after @ Expiry::After(_) => after.resolve(self.get()),
        }
    }
}

/// A key handed to [`KvData::insert`]: borrowed from the caller (copied
/// only when a new slot is created) or already owned.
pub(crate) enum KeyArg<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

impl KeyArg<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            KeyArg::Borrowed(k) => k,
            KeyArg::Owned(k) => k,
        }
    }

    fn to_bytes(&self) -> Bytes {
        match self {
            KeyArg::Borrowed(k) => Bytes::copy_from_slice(k),
            KeyArg::Owned(k) => k.clone(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            KeyArg::Borrowed(k) => Bytes::copy_from_slice(k),
            KeyArg::Owned(k) => k,
        }
    }
}

/// Everything behind the KV lock.
///
/// Invariants: no namespace map is empty; `expiries` holds exactly one
/// entry `(expires_at, version) -> (namespace, key)` per stored slot that
/// has an expiry.
#[derive(Default)]
pub(crate) struct KvData {
    namespaces: BTreeMap<String, Namespace>,
    expiries: BTreeMap<(Timestamp, u64), (String, Bytes)>,
}

impl KvData {
    /// The slot at `key` if it is live.
    pub(crate) fn live_slot(&self, ns: &str, key: &[u8], now: &mut Now<'_>) -> Option<&Slot> {
        self.namespaces
            .get(ns)?
            .get(key)
            .filter(|slot| slot.is_live(now))
    }

    /// The version of the live slot at `key`, if any.
    pub(crate) fn live_version(&self, ns: &str, key: &[u8], now: &mut Now<'_>) -> Option<u64> {
        self.live_slot(ns, key, now).map(|slot| slot.version)
    }

    /// Stores `slot` at `key`, replacing any slot (expired or not).
    /// `slot.version` must be fresh from [`KvState::next_version`].
    pub(crate) fn insert(&mut self, ns: &str, key: KeyArg<'_>, slot: Slot) {
        if let Some(t) = slot.expires_at {
            self.expiries
                .insert((t, slot.version), (ns.to_owned(), key.to_bytes()));
        }
        let old = match self.namespaces.get_mut(ns) {
            Some(map) => match map.get_mut(key.as_slice()) {
                // Overwrite in place: no key allocation.
                Some(existing) => Some(mem::replace(existing, slot)),
                None => {
                    map.insert(key.into_bytes(), slot);
                    None
                }
            },
            None => {
                let mut map = Namespace::new();
                map.insert(key.into_bytes(), slot);
                self.namespaces.insert(ns.to_owned(), map);
                None
            }
        };
        if let Some(old) = old {
            self.unindex(&old);
        }
    }

    /// Stores `slot` at `key` if `allowed` accepts the version of the live
    /// slot there (`None`: none), finding the key once; otherwise changes
    /// nothing and returns that version. `slot.version` must be fresh.
    pub(crate) fn insert_if(
        &mut self,
        ns: &str,
        key: &[u8],
        slot: Slot,
        now: &mut Now<'_>,
        allowed: impl FnOnce(Option<u64>) -> bool,
    ) -> Result<(), Option<u64>> {
        let Some(existing) = self.namespaces.get_mut(ns).and_then(|m| m.get_mut(key)) else {
            if !allowed(None) {
                return Err(None);
            }
            self.insert(ns, KeyArg::Borrowed(key), slot);
            return Ok(());
        };
        let current = existing.is_live(now).then_some(existing.version);
        if !allowed(current) {
            return Err(current);
        }
        let expiry = slot.expires_at.map(|t| (t, slot.version));
        // Overwrite in place, as `insert` does.
        let old = mem::replace(existing, slot);
        if let Some(at) = expiry {
            self.expiries
                .insert(at, (ns.to_owned(), Bytes::copy_from_slice(key)));
        }
        self.unindex(&old);
        Ok(())
    }

    /// Removes the slot at `key` (live or expired) and returns it.
    pub(crate) fn remove(&mut self, ns: &str, key: &[u8]) -> Option<Slot> {
        let map = self.namespaces.get_mut(ns)?;
        let old = map.remove(key)?;
        if map.is_empty() {
            self.namespaces.remove(ns);
        }
        self.unindex(&old);
        Some(old)
    }

    /// Removes a namespace; `true` if it held a live entry.
    fn drop_namespace(&mut self, ns: &str, now: &mut Now<'_>) -> bool {
        let Some(map) = self.namespaces.remove(ns) else {
            return false;
        };
        if self.expiries.is_empty() {
            // No slot anywhere has an expiry, and maps are never empty.
            return true;
        }
        let mut any_live = false;
        for slot in map.values() {
            any_live |= slot.is_live(now);
            self.unindex(slot);
        }
        any_live
    }

    fn unindex(&mut self, slot: &Slot) {
        if let Some(t) = slot.expires_at {
            self.expiries.remove(&(t, slot.version));
        }
    }

    /// Removes up to [`PURGE_BUDGET`] expired slots. Callers hold the write
    /// lock anyway; the clock is not read when nothing has an expiry.
    pub(crate) fn purge_expired(&mut self, now: &mut Now<'_>) {
        if self.expiries.is_empty() {
            return;
        }
        let now = now.get();
        for _ in 0..PURGE_BUDGET {
            let Some(first) = self.expiries.first_entry() else {
                break;
            };
            if first.key().0 > now {
                break;
            }
            let ((_, version), (ns, key)) = first.remove_entry();
            if let Some(map) = self.namespaces.get_mut(ns.as_str()) {
                // By the invariant the slot is still this version; checking
                // keeps a broken invariant from deleting live data.
                if map.get(&key).is_some_and(|slot| slot.version == version) {
                    map.remove(&key);
                    if map.is_empty() {
                        self.namespaces.remove(ns.as_str());
                    }
                }
            }
        }
    }

    fn scan(&self, ns: &str, request: &ScanRequest, now: &mut Now<'_>) -> ScanPage {
        let Some(map) = self.namespaces.get(ns) else {
            return ScanPage::default();
        };
        let Some((lo, hi)) = request.effective_range() else {
            return ScanPage::default();
        };
        let range = map.range::<Bytes, _>((lo, hi));
        // Enough for typical pages; a narrow range over a big namespace
        // with a big limit should not reserve the whole limit up front.
        let capacity = request.limit.min(map.len()).min(256);
        match request.direction {
            Direction::Forward => page(
                range.filter(|(_, s)| s.is_live(now)),
                request.limit,
                capacity,
            ),
            Direction::Reverse => page(
                range.rev().filter(|(_, s)| s.is_live(now)),
                request.limit,
                capacity,
            ),
        }
    }
}

impl fmt::Debug for KvData {
    // Counts only: values (and keys) never go to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvData")
            .field("namespaces", &self.namespaces.len())
            .field("expiring", &self.expiries.len())
            .finish()
    }
}

/// Fills one page from live entries in page order: at most `limit`, and a
/// cursor only when the page is full and another live entry follows.
fn page<'a>(
    mut live: impl Iterator<Item = (&'a Bytes, &'a Slot)>,
    limit: usize,
    capacity: usize,
) -> ScanPage {
    if limit == 0 {
        return ScanPage::default();
    }
    let mut entries = Vec::with_capacity(capacity);
    for (key, slot) in live.by_ref() {
        entries.push(slot.to_entry(key));
        if entries.len() == limit {
            break;
        }
    }
    let cursor = if entries.len() == limit && live.next().is_some() {
        entries.last().map(|e| Cursor::after(e.key.clone()))
    } else {
        None
    };
    ScanPage { entries, cursor }
}

/// The KV (and CAS) state of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct KvState {
    data: RwLock<KvData>,
    /// The last version issued. An atomic outside the lock, so a
    /// conditional write can build its token before taking the lock.
    versions: AtomicU64,
}

impl KvState {
    /// A fresh version, never issued before by this store. A version
    /// reserved by a write that then fails its condition is simply never
    /// used. (`u64` cannot realistically wrap: 2^64 writes at a billion
    /// per second take 584 years.)
    pub(crate) fn next_version(&self) -> u64 {
        self.reserve_versions(1)
    }

    /// The first of `n` consecutive fresh versions.
    pub(crate) fn reserve_versions(&self, n: u64) -> u64 {
        // Relaxed: only uniqueness matters, not ordering with other memory.
        self.versions
            .fetch_add(n, Ordering::Relaxed)
            .wrapping_add(1)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, KvData> {
        self.data.read()
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, KvData> {
        self.data.write()
    }
}

/// This backend's input rules (shared with every adapter, in
/// `storage_core::validate`).
pub(crate) const CHECK: Validator = Validator::new(BACKEND, CAPABILITIES);

impl MemoryStore {
    fn now(&self) -> Now<'_> {
        Now::new(&*self.inner.clock)
    }

    fn kv_get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        CHECK.ns_key("get", ns, key)?;
        let mut now = self.now();
        let data = self.inner.kv.read();
        Ok(data
            .live_slot(ns, key, &mut now)
            .map(|slot| slot.value.clone()))
    }

    fn kv_put(&self, ns: &str, key: &[u8], value: Bytes, options: PutOptions) -> Result<()> {
        CHECK.ns_key_value("put", ns, key, &value)?;
        let mut now = self.now();
        let expires_at = now.resolve(options.expiry);
        let version = self.inner.kv.next_version();
        let mut data = self.inner.kv.write();
        data.insert(
            ns,
            KeyArg::Borrowed(key),
            Slot::new(value, version, expires_at),
        );
        data.purge_expired(&mut now);
        Ok(())
    }

    fn kv_delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        CHECK.ns_key("delete", ns, key)?;
        let mut now = self.now();
        let mut data = self.inner.kv.write();
        let removed = data
            .remove(ns, key)
            .is_some_and(|slot| slot.is_live(&mut now));
        data.purge_expired(&mut now);
        Ok(removed)
    }

    fn kv_get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        CHECK.keys("get_many", ns, keys)?;
        let mut now = self.now();
        let data = self.inner.kv.read();
        Ok(keys
            .iter()
            .map(|key| {
                data.live_slot(ns, key, &mut now)
                    .map(|slot| slot.value.clone())
            })
            .collect())
    }

    fn kv_write_batch(&self, ns: &str, ops: Vec<BatchOp>) -> Result<()> {
        CHECK.batch("write_batch", ns, &ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut now = self.now();
        let mut data = self.inner.kv.write();
        for op in ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    options,
                } => {
                    let slot = Slot::new(
                        value,
                        self.inner.kv.next_version(),
                        now.resolve(options.expiry),
                    );
                    data.insert(ns, KeyArg::Owned(key), slot);
                }
                BatchOp::Delete { key } => {
                    data.remove(ns, &key);
                }
            }
        }
        data.purge_expired(&mut now);
        Ok(())
    }

    fn kv_scan(&self, ns: &str, request: &ScanRequest) -> Result<ScanPage> {
        CHECK.namespace("scan", ns)?;
        request.validate(At::scoped("scan", BACKEND, ns), &CAPABILITIES)?;
        let mut now = self.now();
        let data = self.inner.kv.read();
        Ok(data.scan(ns, request, &mut now))
    }

    fn kv_list_namespaces(&self) -> Vec<String> {
        let mut now = self.now();
        let data = self.inner.kv.read();
        data.namespaces
            .iter()
            .filter(|(_, map)| map.values().any(|slot| slot.is_live(&mut now)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn kv_drop_namespace(&self, ns: &str) -> Result<bool> {
        CHECK.namespace("drop_namespace", ns)?;
        let mut now = self.now();
        let mut data = self.inner.kv.write();
        let held = data.drop_namespace(ns, &mut now);
        data.purge_expired(&mut now);
        Ok(held)
    }
}

/// A debug span for one KV operation: backend, operation and namespace,
/// never keys or values.
macro_rules! op_span {
    ($op:literal, $ns:expr) => {
        tracing::debug_span!(
            "kv",
            backend = $crate::config::BACKEND,
            op = $op,
            namespace = $ns
        )
    };
    ($op:literal) => {
        tracing::debug_span!("kv", backend = $crate::config::BACKEND, op = $op)
    };
}
pub(crate) use op_span;

#[async_trait]
impl KvStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        op_span!("get", namespace).in_scope(|| self.kv_get(namespace, key))
    }

    async fn put(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<()> {
        op_span!("put", namespace).in_scope(|| self.kv_put(namespace, key, value, options))
    }

    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        op_span!("delete", namespace).in_scope(|| self.kv_delete(namespace, key))
    }

    async fn get_many(&self, namespace: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        op_span!("get_many", namespace).in_scope(|| self.kv_get_many(namespace, keys))
    }

    async fn write_batch(&self, namespace: &str, ops: Vec<BatchOp>) -> Result<()> {
        op_span!("write_batch", namespace).in_scope(|| self.kv_write_batch(namespace, ops))
    }

    async fn scan(&self, namespace: &str, request: ScanRequest) -> Result<ScanPage> {
        op_span!("scan", namespace).in_scope(|| self.kv_scan(namespace, &request))
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Ok(op_span!("list_namespaces").in_scope(|| self.kv_list_namespaces()))
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool> {
        op_span!("drop_namespace", namespace).in_scope(|| self.kv_drop_namespace(namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_index_tracks_slots_and_purges() {
        let clock = storage_core::ManualClock::new(Timestamp::from_millis(1_000));
        let mut data = KvData::default();
        let mut now = Now::new(&clock);
        let at = Some(Timestamp::from_millis(2_000));
        let slot = |version, expires_at| Slot::new(Bytes::new(), version, expires_at);
        data.insert("a", KeyArg::Borrowed(b"k1"), slot(1, at));
        data.insert("a", KeyArg::Borrowed(b"k2"), slot(2, at));
        data.insert("b", KeyArg::Borrowed(b"k"), slot(3, at));
        // Overwrite without expiry, delete, and drop unindex their slots.
        data.insert("a", KeyArg::Borrowed(b"k1"), slot(4, None));
        data.remove("a", b"k2");
        assert_eq!(data.expiries.len(), 1);
        data.purge_expired(&mut now);
        assert_eq!(data.namespaces.len(), 2);

        clock.advance(std::time::Duration::from_secs(1));
        let mut now = Now::new(&clock);
        data.purge_expired(&mut now);
        assert!(data.expiries.is_empty());
        assert_eq!(data.namespaces.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(data.drop_namespace("a", &mut now));
        assert!(data.namespaces.is_empty());
    }
}
