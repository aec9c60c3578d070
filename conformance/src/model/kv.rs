//! Reference model of the KV and CAS tiers.
//!
//! A `BTreeMap` per namespace holding each live entry's value, expiry
//! instant and the version token the backend last reported for it, plus a
//! per-key history of every token the backend ever issued. The model
//! *predicts* each operation's result (value, page, error kind, conflict
//! index) and is then told what the backend answered; the property driver
//! in `suites::kv_property` compares the two.
//!
//! Version tokens are opaque, so the model never invents them: it learns a
//! token when the backend returns one (a conditional write, a versioned
//! read, a scan entry) and checks the CAS contract on it:
//!
//! - a live entry's token only changes through a write;
//! - a write never reuses a token this key had before (with
//!   `atomic_content_hash_versions`: unless it was issued for the same
//!   bytes), so a stale token can never match again (no ABA);
//! - a condition `Update(t)` holds exactly when the key is live and its
//!   current token equals `t` (string equality, as the contract says).

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use storage_core::{
    BatchOp, Capabilities, Condition, Direction, Error, Expiry, PutMode, ScanRequest, Timestamp,
    TransactionScope, TxAction, TxOp, Version,
};

/// One live entry as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The stored value.
    pub value: Bytes,
    /// The absolute expiry instant, if any.
    pub expires_at: Option<Timestamp>,
    /// The token the backend reported for this write; `None` until learned
    /// (a plain `put` issues a token the caller does not see).
    pub version: Option<Version>,
}

/// The error the model expects a backend to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// [`Error::InvalidInput`].
    Invalid,
    /// [`Error::Unsupported`].
    Unsupported,
    /// Either of the two (the input breaks a rule *and* needs an
    /// undeclared capability; which is reported first is not specified).
    InvalidOrUnsupported,
    /// [`Error::Conflict`] with this current version and, when `Some`, this
    /// transaction index.
    Conflict {
        /// The key's current version (`None` if absent).
        current: Option<Version>,
        /// Index of the first failed transaction operation; `None` means
        /// "not checked" (single-key operations).
        index: Option<usize>,
    },
}

impl Want {
    /// Whether `got` is the error this wants; a description of the
    /// mismatch otherwise.
    pub fn check(&self, got: &Error) -> Result<(), String> {
        let ok = match (self, got) {
            (Want::Invalid, Error::InvalidInput { .. })
            | (Want::Unsupported, Error::Unsupported { .. })
            | (Want::InvalidOrUnsupported, Error::InvalidInput { .. })
            | (Want::InvalidOrUnsupported, Error::Unsupported { .. }) => true,
            (
                Want::Conflict {
                    current: want_cur,
                    index: want_idx,
                },
                Error::Conflict { current, index, .. },
            ) => want_cur == current && (want_idx.is_none() || want_idx == index),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "model expects error {self:?}, backend answered {got:?}"
            ))
        }
    }
}

/// One item of a delimiter listing: an entry's key or a common prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListItem {
    /// The entry key, or the common prefix.
    pub key: Bytes,
    /// Whether this is a common prefix.
    pub is_prefix: bool,
}

/// The reference model.
#[derive(Debug, Clone)]
pub struct KvModel {
    caps: Capabilities,
    namespaces: BTreeMap<String, BTreeMap<Bytes, ModelEntry>>,
    /// Every token ever reported per key, with the bytes it was issued for.
    history: BTreeMap<(String, Bytes), Vec<(Version, Bytes)>>,
}

impl KvModel {
    /// An empty store with these declared capabilities.
    pub fn new(caps: Capabilities) -> Self {
        KvModel {
            caps,
            namespaces: BTreeMap::new(),
            history: BTreeMap::new(),
        }
    }

    /// Drops every entry whose expiry instant is at or before `now`
    /// (`expires_at <= now` means gone).
    pub fn expire(&mut self, now: Timestamp) {
        for entries in self.namespaces.values_mut() {
            entries.retain(|_, e| e.expires_at.is_none_or(|t| t > now));
        }
        self.namespaces.retain(|_, entries| !entries.is_empty());
    }

    /// The earliest expiry instant of a live entry.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.namespaces
            .values()
            .flat_map(|m| m.values())
            .filter_map(|e| e.expires_at)
            .min()
    }

    /// The live entry at `key`.
    pub fn entry(&self, ns: &str, key: &[u8]) -> Option<&ModelEntry> {
        self.namespaces.get(ns)?.get(key)
    }

    /// Every live entry of `ns`, in key order.
    pub fn entries(&self, ns: &str) -> Vec<(Bytes, ModelEntry)> {
        self.namespaces
            .get(ns)
            .map(|m| m.iter().map(|(k, e)| (k.clone(), e.clone())).collect())
            .unwrap_or_default()
    }

    /// The value at `key`.
    pub fn get(&self, ns: &str, key: &[u8]) -> Option<Bytes> {
        self.entry(ns, key).map(|e| e.value.clone())
    }

    /// The values at `keys`.
    pub fn get_many(&self, ns: &str, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        keys.iter().map(|k| self.get(ns, k)).collect()
    }

    /// Whether a write with this expiry is allowed at all.
    pub fn check_expiry(&self, expiry: Expiry) -> Result<(), Want> {
        if expiry != Expiry::Never && !self.caps.kv_ttl {
            return Err(Want::Unsupported);
        }
        Ok(())
    }

    /// Applies a successful write. `version` is the token the backend
    /// returned, if the write returns one; it is checked for freshness.
    pub fn write(
        &mut self,
        ns: &str,
        key: &Bytes,
        value: Bytes,
        expiry: Expiry,
        now: Timestamp,
        version: Option<Version>,
    ) -> Result<(), String> {
        if let Some(v) = &version {
            self.check_fresh(ns, key, v, &value)?;
            self.remember(ns, key, v, &value);
        }
        let entry = ModelEntry {
            value,
            expires_at: expiry.resolve(now),
            version,
        };
        if entry.expires_at.is_some_and(|t| t <= now) {
            self.remove(ns, key);
        } else {
            self.namespaces
                .entry(ns.to_owned())
                .or_default()
                .insert(key.clone(), entry);
        }
        Ok(())
    }

    /// Removes `key`; whether a live entry was removed.
    pub fn remove(&mut self, ns: &str, key: &[u8]) -> bool {
        let Some(m) = self.namespaces.get_mut(ns) else {
            return false;
        };
        let removed = m.remove(key).is_some();
        if m.is_empty() {
            self.namespaces.remove(ns);
        }
        removed
    }

    /// Predicts a write batch: `Unsupported` if it carries an expiry the
    /// backend cannot honour.
    pub fn check_batch(&self, ops: &[BatchOp]) -> Result<(), Want> {
        for op in ops {
            if let BatchOp::Put { options, .. } = op {
                self.check_expiry(options.expiry)?;
            }
        }
        Ok(())
    }

    /// Applies a successful batch, in order.
    pub fn apply_batch(&mut self, ns: &str, ops: &[BatchOp], now: Timestamp) -> Result<(), String> {
        for op in ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    options,
                } => self.write(ns, key, value.clone(), options.expiry, now, None)?,
                BatchOp::Delete { key } => {
                    self.remove(ns, key);
                }
            }
        }
        Ok(())
    }

    /// Predicts one scan page: the entries after `after` (the last key of
    /// the previous page) and whether a cursor must come with it.
    pub fn scan_page(
        &self,
        ns: &str,
        req: &ScanRequest,
        after: Option<&Bytes>,
    ) -> Result<(Vec<(Bytes, ModelEntry)>, bool), Want> {
        if req.limit == 0 || req.limit > self.caps.max_scan_limit {
            return Err(Want::Invalid);
        }
        if let (Some(lo), Some(hi)) = (bound_key(&req.start), bound_key(&req.end)) {
            if lo > hi {
                return Err(Want::Invalid);
            }
        }
        let reverse = req.direction == Direction::Reverse;
        let mut matching: Vec<(Bytes, ModelEntry)> = self
            .entries(ns)
            .into_iter()
            .filter(|(k, _)| above(&req.start, k) && below(&req.end, k))
            .filter(|(k, _)| match after {
                None => true,
                Some(a) if reverse => k < a,
                Some(a) => k > a,
            })
            .collect();
        if reverse {
            matching.reverse();
        }
        let more = matching.len() > req.limit;
        matching.truncate(req.limit);
        Ok((matching, more))
    }

    /// Names of namespaces with a live entry, sorted.
    pub fn list_namespaces(&self) -> Vec<String> {
        self.namespaces.keys().cloned().collect()
    }

    /// Drops `ns`; whether it held a live entry.
    pub fn drop_namespace(&mut self, ns: &str) -> bool {
        self.namespaces.remove(ns).is_some()
    }

    /// The full S3-style listing of `ns` under `prefix` with `delimiter`,
    /// in key order.
    pub fn list_delimited(&self, ns: &str, prefix: &[u8], delimiter: &[u8]) -> Vec<ListItem> {
        delimited(
            self.entries(ns).iter().map(|(k, _)| k.clone()),
            prefix,
            delimiter,
        )
    }

    // ---- CAS -------------------------------------------------------------

    /// The known current token of a live key (`None` if absent or unknown).
    pub fn current(&self, ns: &str, key: &[u8]) -> Option<Version> {
        self.entry(ns, key).and_then(|e| e.version.clone())
    }

    /// Whether `key` is live but its token is not yet known.
    pub fn needs_learning(&self, ns: &str, key: &[u8]) -> bool {
        self.entry(ns, key).is_some_and(|e| e.version.is_none())
    }

    /// Every token this key ever had, oldest first.
    pub fn history(&self, ns: &str, key: &[u8]) -> Vec<Version> {
        self.history
            .get(&(ns.to_owned(), Bytes::copy_from_slice(key)))
            .map(|h| h.iter().map(|(v, _)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// Records the token the backend reports for the live entry at `key`
    /// (from a versioned read or a scan), checking it is consistent.
    pub fn learn(&mut self, ns: &str, key: &Bytes, version: &Version) -> Result<(), String> {
        let Some(entry) = self.entry(ns, key).cloned() else {
            return Err(format!(
                "backend reports version {version} for {key:?}, which the model says is absent"
            ));
        };
        match &entry.version {
            Some(known) if known == version => Ok(()),
            Some(known) => Err(format!(
                "version of {key:?} changed from {known} to {version} without a write"
            )),
            None => {
                self.check_fresh(ns, key, version, &entry.value)?;
                self.remember(ns, key, version, &entry.value);
                if let Some(e) = self.namespaces.get_mut(ns).and_then(|m| m.get_mut(key)) {
                    e.version = Some(version.clone());
                }
                Ok(())
            }
        }
    }

    fn check_fresh(&self, ns: &str, key: &Bytes, v: &Version, value: &Bytes) -> Result<(), String> {
        let hist = self.history.get(&(ns.to_owned(), key.clone()));
        for (old, old_value) in hist.into_iter().flatten() {
            if old == v && !(self.caps.atomic_content_hash_versions && old_value == value) {
                return Err(format!(
                    "a write of {value:?} to {key:?} got version {v}, a token this key already had \
                     (for {old_value:?}); every write must issue a new token{}",
                    if self.caps.atomic_content_hash_versions {
                        " unless the bytes are identical"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(())
    }

    fn remember(&mut self, ns: &str, key: &Bytes, v: &Version, value: &Bytes) {
        let h = self
            .history
            .entry((ns.to_owned(), key.clone()))
            .or_default();
        if !h.iter().any(|(old, _)| old == v) {
            h.push((v.clone(), value.clone()));
        }
    }

    fn conflict(&self, ns: &str, key: &[u8], index: Option<usize>) -> Want {
        Want::Conflict {
            current: self.current(ns, key),
            index,
        }
    }

    fn holds(&self, ns: &str, key: &[u8], cond: &Condition) -> bool {
        let live = self.entry(ns, key).is_some();
        match cond {
            Condition::Absent => !live,
            Condition::Exists => live,
            Condition::Version(v) => live && self.current(ns, key).as_ref() == Some(v),
        }
    }

    /// Predicts a conditional put. The key's token must be known when it
    /// is live (learn it first).
    pub fn check_put_if(
        &self,
        ns: &str,
        key: &[u8],
        mode: &PutMode,
        expiry: Expiry,
    ) -> Result<(), Want> {
        self.check_expiry(expiry)?;
        let ok = match mode {
            PutMode::Overwrite => true,
            PutMode::Create => self.holds(ns, key, &Condition::Absent),
            PutMode::Update(v) => self.holds(ns, key, &Condition::Version(v.clone())),
        };
        if ok {
            Ok(())
        } else {
            Err(self.conflict(ns, key, None))
        }
    }

    /// Predicts a conditional delete.
    pub fn check_delete_if(&self, ns: &str, key: &[u8], version: &Version) -> Result<(), Want> {
        if self.holds(ns, key, &Condition::Version(version.clone())) {
            Ok(())
        } else {
            Err(self.conflict(ns, key, None))
        }
    }

    /// Predicts a transaction: validation first (duplicate keys, too many
    /// operations, keys outside the declared scope → `Invalid`; expiry
    /// without TTL → `Unsupported`), then conditions in order on the state
    /// before the transaction (the first failed one is the conflict index).
    pub fn check_transact(&self, ops: &[TxOp]) -> Result<(), Want> {
        if self.caps.transaction_scope == TransactionScope::None || !self.caps.atomic {
            return Err(Want::Unsupported);
        }
        let mut invalid = ops.len() > self.caps.max_transaction_ops;
        let mut seen = std::collections::BTreeSet::new();
        for op in ops {
            if !seen.insert((op.namespace.as_str(), &op.key)) {
                invalid = true;
            }
        }
        if self.caps.transaction_scope == TransactionScope::Namespace
            && ops.iter().any(|o| o.namespace != ops[0].namespace)
        {
            invalid = true;
        }
        let unsupported = ops.iter().any(|o| match &o.action {
            TxAction::Put { options, .. } => self.check_expiry(options.expiry).is_err(),
            _ => false,
        });
        match (invalid, unsupported) {
            (true, true) => return Err(Want::InvalidOrUnsupported),
            (true, false) => return Err(Want::Invalid),
            (false, true) => return Err(Want::Unsupported),
            (false, false) => {}
        }
        for (i, op) in ops.iter().enumerate() {
            if let Some(c) = &op.condition {
                if !self.holds(&op.namespace, &op.key, c) {
                    return Err(self.conflict(&op.namespace, &op.key, Some(i)));
                }
            }
        }
        Ok(())
    }

    /// Applies a successful transaction with the versions it returned.
    pub fn apply_transact(
        &mut self,
        ops: &[TxOp],
        versions: &[Option<Version>],
        now: Timestamp,
    ) -> Result<(), String> {
        if versions.len() != ops.len() {
            return Err(format!(
                "transaction of {} operations returned {} versions",
                ops.len(),
                versions.len()
            ));
        }
        for (i, (op, v)) in ops.iter().zip(versions).enumerate() {
            match (&op.action, v) {
                (TxAction::Put { value, options }, Some(v)) => self.write(
                    &op.namespace,
                    &op.key,
                    value.clone(),
                    options.expiry,
                    now,
                    Some(v.clone()),
                )?,
                (TxAction::Delete, None) => {
                    self.remove(&op.namespace, &op.key);
                }
                (TxAction::Check, None) => {}
                (action, v) => {
                    return Err(format!(
                        "transaction operation #{i} ({action:?}) returned version {v:?}; \
                         a put returns Some, a delete or check None"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Folds `keys` (sorted) into an S3-style listing.
pub fn delimited(
    keys: impl IntoIterator<Item = Bytes>,
    prefix: &[u8],
    delimiter: &[u8],
) -> Vec<ListItem> {
    let mut out: Vec<ListItem> = Vec::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        let item = match rest
            .windows(delimiter.len().max(1))
            .position(|w| w == delimiter)
        {
            Some(pos) if !delimiter.is_empty() => ListItem {
                key: k.slice(..prefix.len() + pos + delimiter.len()),
                is_prefix: true,
            },
            _ => ListItem {
                key: k.clone(),
                is_prefix: false,
            },
        };
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

fn bound_key(b: &Bound<Bytes>) -> Option<&Bytes> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

fn above(lo: &Bound<Bytes>, key: &[u8]) -> bool {
    match lo {
        Bound::Included(s) => key >= &s[..],
        Bound::Excluded(s) => key > &s[..],
        Bound::Unbounded => true,
    }
}

fn below(hi: &Bound<Bytes>, key: &[u8]) -> bool {
    match hi {
        Bound::Included(e) => key <= &e[..],
        Bound::Excluded(e) => key < &e[..],
        Bound::Unbounded => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimited_folds_common_prefixes_once() {
        let keys = ["a/1", "a/2", "b", "c/x/y", "c/z"].map(Bytes::from);
        let items = delimited(keys, b"", b"/");
        let keys: Vec<&[u8]> = items.iter().map(|i| &i.key[..]).collect();
        assert_eq!(keys, vec![&b"a/"[..], b"b", b"c/"]);
        let items = delimited(["c/x/y", "c/z"].map(Bytes::from), b"c/", b"/");
        assert_eq!(items.len(), 2);
        assert!(items[0].is_prefix && !items[1].is_prefix);
    }

    #[test]
    fn expiry_at_now_is_gone() {
        let mut m = KvModel::new(Capabilities {
            kv_ttl: true,
            ..Capabilities::DEFAULT_LIMITS
        });
        let t = Timestamp::from_millis(100);
        let k = Bytes::from_static(b"k");
        assert!(m
            .write(
                "n",
                &k,
                Bytes::new(),
                Expiry::After(std::time::Duration::from_millis(5)),
                t,
                None
            )
            .is_ok());
        m.expire(Timestamp::from_millis(104));
        assert!(m.get("n", b"k").is_some());
        m.expire(Timestamp::from_millis(105));
        assert!(m.get("n", b"k").is_none());
        assert!(m.list_namespaces().is_empty());
    }
}
