//! The KV and CAS tiers kept in one SQL table: what every SQL backend
//! shares (SQLite and DuckDB here; a Postgres adapter would be the next).
//!
//! # The table
//!
//! ```sql
//! storage_kv (ns TEXT, key BLOB, value BLOB, version BIGINT, expires_at BIGINT NULL)
//! ```
//!
//! One row per `(ns, key)`. Keys are BLOBs, which both engines compare as
//! unsigned bytes with shorter prefixes first — the KV tier's key order.
//! Versions are numbers from a store-wide counter that only grows, issued
//! inside the write transaction that uses them; their tokens are
//! [`Version::from_counter`]. Instants (`expires_at`, "now") are signed
//! milliseconds ([`millis`]); a row with `expires_at <= now` is absent to
//! every read, scan, listing and condition.
//!
//! # What lives here
//!
//! - The statement texts both dialects accept ([`sql`], [`scan_sql`]),
//!   with plain `?` placeholders bound in the documented order: names,
//!   keys, values and instants are always parameters, never SQL text.
//! - The *decisions* of every write — which condition holds, which rows
//!   change, which versions are issued — in [`put`], [`put_if`],
//!   [`delete_if`], [`write_batch`] and [`transact`], written against
//!   [`TableTx`]. The adapter implements `TableTx` over its driver's open
//!   write transaction, commits on [`Decision::Commit`] and rolls back on
//!   [`Decision::Refuse`]; the decision functions never commit.
//! - [`PageBuilder`], which turns the rows of a scan statement into a
//!   [`ScanPage`] with its cursor.
//!
//! The adapter keeps what differs: how it opens a write transaction
//! (`BEGIN IMMEDIATE` on SQLite), how it upserts (`ON CONFLICT` or
//! update-then-insert), how and when it purges expired rows, and its
//! connections and threads.
//!
//! ```
//! use std::collections::BTreeMap;
//! use storage_core::table::{self, Decision, TableTx};
//! use storage_core::{PutMode, Version};
//!
//! /// A toy table: enough to drive the decision functions.
//! #[derive(Default)]
//! struct Rows { rows: BTreeMap<(String, Vec<u8>), (Vec<u8>, i64)>, counter: i64 }
//!
//! impl TableTx for Rows {
//!     type Error = std::convert::Infallible;
//!     fn live_version(&mut self, ns: &str, key: &[u8], _now: i64) -> Result<Option<i64>, Self::Error> {
//!         Ok(self.rows.get(&(ns.to_owned(), key.to_vec())).map(|r| r.1))
//!     }
//!     fn reserve_versions(&mut self, n: u64) -> Result<i64, Self::Error> {
//!         self.counter += n as i64;
//!         Ok(self.counter)
//!     }
//!     fn upsert(&mut self, ns: &str, key: &[u8], value: &[u8], version: i64, _exp: Option<i64>) -> Result<(), Self::Error> {
//!         self.rows.insert((ns.to_owned(), key.to_vec()), (value.to_vec(), version));
//!         Ok(())
//!     }
//!     fn remove(&mut self, ns: &str, key: &[u8], _now: i64) -> Result<bool, Self::Error> {
//!         Ok(self.rows.remove(&(ns.to_owned(), key.to_vec())).is_some())
//!     }
//!     fn replace_at_version(
//!         &mut self, ns: &str, key: &[u8], expected: i64, now: i64,
//!         value: &[u8], version: i64, exp: Option<i64>,
//!     ) -> Result<bool, Self::Error> {
//!         if self.live_version(ns, key, now)? != Some(expected) {
//!             return Ok(false);
//!         }
//!         self.upsert(ns, key, value, version, exp).map(|()| true)
//!     }
//! }
//!
//! let mut rows = Rows::default();
//! let first = table::put_if(&mut rows, "ns", b"k", b"v1", &PutMode::Create, None, 0).unwrap();
//! assert!(matches!(first, Decision::Commit(1)));
//! // A second create is refused with the current version.
//! let again = table::put_if(&mut rows, "ns", b"k", b"v2", &PutMode::Create, None, 0).unwrap();
//! assert!(matches!(again, Decision::Refuse { index: None, current: Some(1) }));
//! // An update at the right token goes through and issues a new version.
//! let update = PutMode::Update(Version::from_counter(1));
//! let next = table::put_if(&mut rows, "ns", b"k", b"v2", &update, None, 0).unwrap();
//! assert_eq!(next.or_conflict("put_if", "toy", "ns").unwrap(), 2);
//! // The old token no longer matches: refused, naming the live version.
//! let stale = table::put_if(&mut rows, "ns", b"k", b"v3", &update, None, 0).unwrap();
//! assert!(matches!(stale, Decision::Refuse { index: None, current: Some(2) }));
//! ```

use std::ops::Bound;
use std::sync::LazyLock;

use bytes::Bytes;

use crate::{
    BatchOp, Condition, Context, Cursor, Direction, Entry, Error, Expiry, PutMode, ScanPage,
    ScanRequest, Timestamp, TxAction, TxOp, Version,
};

/// Statement texts for `storage_kv` that both SQLite and DuckDB accept.
/// Parameters are listed in binding order.
pub mod sql {
    /// The value at a key, if live. Parameters: ns, key, now.
    pub const GET: &str = "SELECT value FROM storage_kv \
         WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)";

    /// The value and version at a key, if live. Parameters: ns, key, now.
    pub const GET_VERSIONED: &str = "SELECT value, version FROM storage_kv \
         WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)";

    /// The version at a key, if live. Parameters: ns, key, now.
    pub const LIVE_VERSION: &str = "SELECT version FROM storage_kv \
         WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)";

    /// Overwrites the row at a key only if it is live with the expected
    /// version: a compare-and-swap in one statement. Parameters: value,
    /// version, expires_at, ns, key, expected version, now.
    pub const REPLACE_AT_VERSION: &str = "UPDATE storage_kv \
         SET value = ?, version = ?, expires_at = ? \
         WHERE ns = ? AND key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)";

    /// Removes the row at a key and returns its expiry, so the caller can
    /// tell whether it was live. Parameters: ns, key.
    pub const DELETE: &str = "DELETE FROM storage_kv WHERE ns = ? AND key = ? RETURNING expires_at";

    /// Whether a namespace holds a live row. Parameters: ns, now.
    pub const NS_LIVE: &str = "SELECT EXISTS (SELECT 1 FROM storage_kv \
         WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?))";

    /// Removes a namespace. Parameters: ns.
    pub const DROP_NS: &str = "DELETE FROM storage_kv WHERE ns = ?";

    /// Namespaces with a live row, sorted (namespace names are ASCII and
    /// both engines' default collation compares bytes). Parameters: now.
    pub const LIST_NS: &str = "SELECT DISTINCT ns FROM storage_kv \
         WHERE expires_at IS NULL OR expires_at > ? ORDER BY ns";
}

/// An instant as stored: milliseconds, clamped to `i64::MAX` (about 292
/// million years).
pub fn millis(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// A stored instant back as a [`Timestamp`] (negative values, which no
/// write stores, read as the epoch).
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The stored expiry of a write made at `now` (`None` = never).
pub fn expiry_millis(expiry: Expiry, now: Timestamp) -> Option<i64> {
    expiry.resolve(now).map(millis)
}

/// The token of a stored version.
pub fn token(version: i64) -> Version {
    Version::from_counter(u64::try_from(version).unwrap_or(0))
}

/// Whether the live version (`None` = absent or expired) matches a
/// presented token. A token this store could not have issued matches
/// nothing.
pub fn matches_token(current: Option<i64>, expected: &Version) -> bool {
    expected.matches_counter(current.and_then(|c| u64::try_from(c).ok()))
}

/// How a scan bound constrains the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoundKind {
    Included,
    Excluded,
    Unbounded,
}

impl BoundKind {
    const ALL: [BoundKind; 3] = [
        BoundKind::Included,
        BoundKind::Excluded,
        BoundKind::Unbounded,
    ];

    fn of(b: &Bound<Bytes>) -> Self {
        match b {
            Bound::Included(_) => BoundKind::Included,
            Bound::Excluded(_) => BoundKind::Excluded,
            Bound::Unbounded => BoundKind::Unbounded,
        }
    }

    fn index(self) -> usize {
        match self {
            BoundKind::Included => 0,
            BoundKind::Excluded => 1,
            BoundKind::Unbounded => 2,
        }
    }
}

fn scan_index(direction: Direction, lo: BoundKind, hi: BoundKind) -> usize {
    let dir = match direction {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    };
    dir * 9 + lo.index() * 3 + hi.index()
}

fn build_scan_sql(direction: Direction, lo: BoundKind, hi: BoundKind) -> String {
    let mut sql =
        String::from("SELECT key, value, version, expires_at FROM storage_kv WHERE ns = ?");
    match lo {
        BoundKind::Included => sql.push_str(" AND key >= ?"),
        BoundKind::Excluded => sql.push_str(" AND key > ?"),
        BoundKind::Unbounded => {}
    }
    match hi {
        BoundKind::Included => sql.push_str(" AND key <= ?"),
        BoundKind::Excluded => sql.push_str(" AND key < ?"),
        BoundKind::Unbounded => {}
    }
    sql.push_str(" AND (expires_at IS NULL OR expires_at > ?)");
    match direction {
        Direction::Forward => sql.push_str(" ORDER BY key LIMIT ?"),
        Direction::Reverse => sql.push_str(" ORDER BY key DESC LIMIT ?"),
    }
    sql
}

/// Every scan statement, one per (direction, lower bound kind, upper
/// bound kind), built once.
static SCAN_SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut all = Vec::with_capacity(18);
    for direction in [Direction::Forward, Direction::Reverse] {
        for lo in BoundKind::ALL {
            for hi in BoundKind::ALL {
                all.push(build_scan_sql(direction, lo, hi));
            }
        }
    }
    all
});

/// The texts of every statement [`scan_sql`] may return, so adapters can
/// prepare them up front and tests can `EXPLAIN` them.
pub fn scan_statements() -> impl Iterator<Item = &'static str> {
    SCAN_SQL.iter().map(String::as_str)
}

/// One scan page as a statement and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSql {
    /// The statement text. Parameters, in order: namespace, `lower` (if
    /// `Some`), `upper` (if `Some`), now, [`fetch`](Self::fetch).
    pub sql: &'static str,
    /// The lower bound key, if the statement has one.
    pub lower: Option<Bytes>,
    /// The upper bound key, if the statement has one.
    pub upper: Option<Bytes>,
    /// How many rows to fetch: the page limit plus one, which tells
    /// whether another page follows.
    pub fetch: i64,
}

/// The statement for one page of a validated `request`, or `None` if its
/// range is empty (the page is empty without asking the database).
pub fn scan_sql(request: &ScanRequest) -> Option<ScanSql> {
    let (lo, hi) = request.effective_range()?;
    let sql = SCAN_SQL.get(scan_index(
        request.direction,
        BoundKind::of(&lo),
        BoundKind::of(&hi),
    ))?;
    let key = |b: Bound<Bytes>| match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    Some(ScanSql {
        sql,
        lower: key(lo),
        upper: key(hi),
        fetch: i64::try_from(request.limit.saturating_add(1)).unwrap_or(i64::MAX),
    })
}

/// Collects the rows of a [`ScanSql`] statement into a page.
#[derive(Debug)]
pub struct PageBuilder {
    entries: Vec<Entry>,
    limit: usize,
    more: bool,
}

impl PageBuilder {
    /// A page of at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        PageBuilder {
            entries: Vec::with_capacity(limit.min(256)),
            limit,
            more: false,
        }
    }

    /// Adds one row (`key, value, version, expires_at`, in the statement's
    /// column order); `false` once the page is full, when the caller stops
    /// reading rows.
    pub fn push(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        version: i64,
        expires_at: Option<i64>,
    ) -> bool {
        if self.entries.len() == self.limit {
            self.more = true;
            return false;
        }
        self.entries.push(Entry {
            key: key.into(),
            value: value.into(),
            version: Some(token(version)),
            expires_at: expires_at.map(timestamp),
        });
        true
    }

    /// The page, with a cursor after its last key if more rows follow.
    pub fn finish(self) -> ScanPage {
        let cursor = if self.more {
            self.entries.last().map(|e| Cursor::after(e.key.clone()))
        } else {
            None
        };
        ScanPage {
            entries: self.entries,
            cursor,
        }
    }
}

/// The row operations of `storage_kv` inside one open write transaction:
/// what an adapter implements over its driver so the decision functions
/// of this module can run on it. Every method runs in the same
/// transaction; none commits.
pub trait TableTx {
    /// The driver's error.
    type Error;

    /// The live version at a key (`None` if absent or expired at `now`).
    fn live_version(&mut self, ns: &str, key: &[u8], now: i64) -> Result<Option<i64>, Self::Error>;

    /// Reserves `n` (≥ 1) fresh versions from the store-wide counter and
    /// returns the last: the reserved numbers are `last - n + 1 ..= last`.
    fn reserve_versions(&mut self, n: u64) -> Result<i64, Self::Error>;

    /// Stores a row, replacing any row at its key (live or expired).
    fn upsert(
        &mut self,
        ns: &str,
        key: &[u8],
        value: &[u8],
        version: i64,
        expires_at: Option<i64>,
    ) -> Result<(), Self::Error>;

    /// Removes the row at a key; `true` if it was live at `now`.
    fn remove(&mut self, ns: &str, key: &[u8], now: i64) -> Result<bool, Self::Error>;

    /// Overwrites the row at a key only if it is live at `now` with
    /// version `expected` ([`sql::REPLACE_AT_VERSION`]); `true` if it did.
    /// Nothing changes otherwise.
    #[allow(clippy::too_many_arguments)]
    fn replace_at_version(
        &mut self,
        ns: &str,
        key: &[u8],
        expected: i64,
        now: i64,
        value: &[u8],
        version: i64,
        expires_at: Option<i64>,
    ) -> Result<bool, Self::Error>;
}

/// What a write decided: commit, with a result, or refuse (roll back)
/// because a condition failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Every condition held; commit the transaction.
    Commit(T),
    /// A condition failed; nothing may be committed.
    Refuse {
        /// The index of the failed operation (transactions only).
        index: Option<usize>,
        /// The key's live version (`None` = absent).
        current: Option<i64>,
    },
}

impl<T> Decision<T> {
    /// The committed result, or the `Conflict` of a refusal for `op` on
    /// namespace `ns`.
    pub fn or_conflict(
        self,
        op: &'static str,
        backend: &'static str,
        ns: &str,
    ) -> Result<T, Error> {
        match self {
            Decision::Commit(t) => Ok(t),
            Decision::Refuse { index, current } => Err(Error::Conflict {
                ctx: Context::scoped(op, backend, ns),
                current: current.map(token),
                index,
            }),
        }
    }
}

/// The namespace of a transaction's failed operation, for the error.
pub fn failed_namespace(ops: &[TxOp], index: Option<usize>) -> &str {
    index
        .and_then(|i| ops.get(i))
        .map_or("", |op| op.namespace.as_str())
}

/// An unconditional put; returns the new version.
pub fn put<T: TableTx>(
    tx: &mut T,
    ns: &str,
    key: &[u8],
    value: &[u8],
    expires_at: Option<i64>,
) -> Result<i64, T::Error> {
    let version = tx.reserve_versions(1)?;
    tx.upsert(ns, key, value, version, expires_at)?;
    Ok(version)
}

/// A conditional put: refused unless `mode` holds against the live
/// version at `now`.
pub fn put_if<T: TableTx>(
    tx: &mut T,
    ns: &str,
    key: &[u8],
    value: &[u8],
    mode: &PutMode,
    expires_at: Option<i64>,
    now: i64,
) -> Result<Decision<i64>, T::Error> {
    // The common CAS, an update at a version this store issued, is one
    // conditional statement; only a refusal reads the live version back.
    if let PutMode::Update(expected) = mode {
        if let Some(expected) = expected.to_counter().and_then(|c| i64::try_from(c).ok()) {
            let version = tx.reserve_versions(1)?;
            if tx.replace_at_version(ns, key, expected, now, value, version, expires_at)? {
                return Ok(Decision::Commit(version));
            }
            return Ok(Decision::Refuse {
                index: None,
                current: tx.live_version(ns, key, now)?,
            });
        }
    }
    let current = tx.live_version(ns, key, now)?;
    let allowed = match mode {
        PutMode::Overwrite => true,
        PutMode::Create => current.is_none(),
        PutMode::Update(expected) => matches_token(current, expected),
    };
    if !allowed {
        return Ok(Decision::Refuse {
            index: None,
            current,
        });
    }
    put(tx, ns, key, value, expires_at).map(Decision::Commit)
}

/// A delete at an exact version: refused unless the key is live at it.
pub fn delete_if<T: TableTx>(
    tx: &mut T,
    ns: &str,
    key: &[u8],
    expected: &Version,
    now: i64,
) -> Result<Decision<()>, T::Error> {
    let current = tx.live_version(ns, key, now)?;
    if !matches_token(current, expected) {
        return Ok(Decision::Refuse {
            index: None,
            current,
        });
    }
    tx.remove(ns, key, now)?;
    Ok(Decision::Commit(()))
}

/// Reserves `puts` versions in one step and returns the first (nothing is
/// reserved, and 0 returned, for none).
fn first_of_reserved<T: TableTx>(tx: &mut T, puts: usize) -> Result<i64, T::Error> {
    if puts == 0 {
        return Ok(0);
    }
    let n = u64::try_from(puts).unwrap_or(u64::MAX);
    let last = tx.reserve_versions(n)?;
    Ok(last - i64::try_from(n).unwrap_or(i64::MAX) + 1)
}

/// A write batch on one namespace, applied in order. Versions for all
/// puts are reserved in one step.
pub fn write_batch<T: TableTx>(
    tx: &mut T,
    ns: &str,
    ops: &[BatchOp],
    now: Timestamp,
) -> Result<(), T::Error> {
    let puts = ops
        .iter()
        .filter(|op| matches!(op, BatchOp::Put { .. }))
        .count();
    let mut next = first_of_reserved(tx, puts)?;
    let now_ms = millis(now);
    for op in ops {
        match op {
            BatchOp::Put {
                key,
                value,
                options,
            } => {
                tx.upsert(ns, key, value, next, expiry_millis(options.expiry, now))?;
                next += 1;
            }
            BatchOp::Delete { key } => {
                tx.remove(ns, key, now_ms)?;
            }
        }
    }
    Ok(())
}

/// A conditional transaction: every condition is checked before anything
/// is written, so a refusal leaves a transaction that wrote nothing.
/// Versions for all puts are reserved in one step. Returns the new
/// version of each put (`None` for deletes and checks).
pub fn transact<T: TableTx>(
    tx: &mut T,
    ops: &[TxOp],
    now: Timestamp,
) -> Result<Decision<Vec<Option<i64>>>, T::Error> {
    let now_ms = millis(now);
    for (i, op) in ops.iter().enumerate() {
        let Some(condition) = &op.condition else {
            continue;
        };
        let current = tx.live_version(&op.namespace, &op.key, now_ms)?;
        let holds = match condition {
            Condition::Absent => current.is_none(),
            Condition::Exists => current.is_some(),
            Condition::Version(expected) => matches_token(current, expected),
        };
        if !holds {
            return Ok(Decision::Refuse {
                index: Some(i),
                current,
            });
        }
    }
    let puts = ops
        .iter()
        .filter(|op| matches!(op.action, TxAction::Put { .. }))
        .count();
    let mut next = first_of_reserved(tx, puts)?;
    let mut versions = Vec::with_capacity(ops.len());
    for op in ops {
        match &op.action {
            TxAction::Put { value, options } => {
                let expires_at = expiry_millis(options.expiry, now);
                tx.upsert(&op.namespace, &op.key, value, next, expires_at)?;
                versions.push(Some(next));
                next += 1;
            }
            TxAction::Delete => {
                tx.remove(&op.namespace, &op.key, now_ms)?;
                versions.push(None);
            }
            TxAction::Check => versions.push(None),
        }
    }
    Ok(Decision::Commit(versions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_index_matches_the_table() {
        assert_eq!(SCAN_SQL.len(), 18);
        for direction in [Direction::Forward, Direction::Reverse] {
            for lo in BoundKind::ALL {
                for hi in BoundKind::ALL {
                    assert_eq!(
                        SCAN_SQL[scan_index(direction, lo, hi)],
                        build_scan_sql(direction, lo, hi)
                    );
                }
            }
        }
    }

    #[test]
    fn stored_counters_match_their_tokens_only() {
        assert!(!matches_token(None, &Version::new("1")));
        assert!(!matches_token(Some(-1), &Version::new("1")));
        assert!(matches_token(Some(5), &Version::new("5")));
        assert!(!matches_token(Some(5), &Version::new("05")));
    }

    #[test]
    fn a_full_page_stops_and_points_after_its_last_key() {
        let mut page = PageBuilder::new(2);
        assert!(page.push(b"a".to_vec(), vec![], 1, None));
        assert!(page.push(b"b".to_vec(), vec![], 2, Some(5)));
        assert!(!page.push(b"c".to_vec(), vec![], 3, None));
        let page = page.finish();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.cursor, Some(Cursor::after(Bytes::from_static(b"b"))));
        assert_eq!(page.entries[1].expires_at, Some(Timestamp::from_millis(5)));
    }

    /// `storage_kv` as a map, with the statements' meaning, so the
    /// decisions can be checked without a driver.
    type Row = (Vec<u8>, i64, Option<i64>);

    #[derive(Default)]
    struct Model {
        rows: std::collections::BTreeMap<(String, Vec<u8>), Row>,
        counter: i64,
        reservations: usize,
    }

    impl Model {
        fn live(&self, ns: &str, key: &[u8], now: i64) -> Option<i64> {
            let (_, version, expires_at) = self.rows.get(&(ns.to_owned(), key.to_vec()))?;
            expires_at.is_none_or(|at| at > now).then_some(*version)
        }
    }

    impl TableTx for Model {
        type Error = std::convert::Infallible;
        fn live_version(
            &mut self,
            ns: &str,
            key: &[u8],
            now: i64,
        ) -> Result<Option<i64>, Self::Error> {
            Ok(self.live(ns, key, now))
        }
        fn reserve_versions(&mut self, n: u64) -> Result<i64, Self::Error> {
            self.reservations += 1;
            self.counter += i64::try_from(n).unwrap_or(i64::MAX);
            Ok(self.counter)
        }
        fn upsert(
            &mut self,
            ns: &str,
            key: &[u8],
            value: &[u8],
            version: i64,
            expires_at: Option<i64>,
        ) -> Result<(), Self::Error> {
            self.rows.insert(
                (ns.to_owned(), key.to_vec()),
                (value.to_vec(), version, expires_at),
            );
            Ok(())
        }
        fn remove(&mut self, ns: &str, key: &[u8], now: i64) -> Result<bool, Self::Error> {
            let live = self.live(ns, key, now).is_some();
            self.rows.remove(&(ns.to_owned(), key.to_vec()));
            Ok(live)
        }
        fn replace_at_version(
            &mut self,
            ns: &str,
            key: &[u8],
            expected: i64,
            now: i64,
            value: &[u8],
            version: i64,
            expires_at: Option<i64>,
        ) -> Result<bool, Self::Error> {
            if self.live(ns, key, now) != Some(expected) {
                return Ok(false);
            }
            self.upsert(ns, key, value, version, expires_at)
                .map(|()| true)
        }
    }

    fn unwrap<T>(r: Result<T, std::convert::Infallible>) -> T {
        match r {
            Ok(t) => t,
            Err(never) => match never {},
        }
    }

    #[test]
    fn an_update_at_a_version_commits_only_on_the_live_version() {
        let mut m = Model::default();
        let v1 = unwrap(put(&mut m, "n", b"k", b"a", Some(100)));
        let update = |v: i64| PutMode::Update(token(v));
        // The live version: committed with a fresh version.
        let d = unwrap(put_if(&mut m, "n", b"k", b"b", &update(v1), None, 10));
        assert_eq!(d, Decision::Commit(v1 + 1));
        let v2 = v1 + 1;
        assert_eq!(
            m.rows[&("n".to_owned(), b"k".to_vec())],
            (b"b".to_vec(), v2, None)
        );
        // A stale version: refused, naming the live one; nothing written.
        let d = unwrap(put_if(&mut m, "n", b"k", b"c", &update(v1), None, 10));
        assert_eq!(
            d,
            Decision::Refuse {
                index: None,
                current: Some(v2)
            }
        );
        assert_eq!(m.rows[&("n".to_owned(), b"k".to_vec())].0, b"b");
        // A token this store never issues: refused the same way.
        let d = unwrap(put_if(
            &mut m,
            "n",
            b"k",
            b"c",
            &PutMode::Update(Version::new("x")),
            None,
            10,
        ));
        assert_eq!(
            d,
            Decision::Refuse {
                index: None,
                current: Some(v2)
            }
        );
        // An expired row has no live version: its old token no longer matches.
        let v3 = unwrap(put(&mut m, "n", b"e", b"a", Some(5)));
        let d = unwrap(put_if(&mut m, "n", b"e", b"b", &update(v3), None, 5));
        assert_eq!(
            d,
            Decision::Refuse {
                index: None,
                current: None
            }
        );
        assert_eq!(m.rows[&("n".to_owned(), b"e".to_vec())].0, b"a");
    }

    #[test]
    fn a_transaction_reserves_its_versions_once_in_order() {
        let mut m = Model::default();
        let ops = [
            TxOp::put("n", &b"a"[..], &b"1"[..]),
            TxOp::delete("n", &b"b"[..]),
            TxOp::put("m", &b"c"[..], &b"2"[..]),
        ];
        let d = unwrap(transact(&mut m, &ops, Timestamp::from_millis(0)));
        assert_eq!(d, Decision::Commit(vec![Some(1), None, Some(2)]));
        assert_eq!(m.reservations, 1);
        assert_eq!(m.rows[&("m".to_owned(), b"c".to_vec())].1, 2);
        let none = unwrap(transact(
            &mut m,
            &[TxOp::delete("n", &b"a"[..])],
            Timestamp::from_millis(0),
        ));
        assert_eq!(none, Decision::Commit(vec![None]));
        assert_eq!(m.reservations, 1, "no puts, no reservation");
    }

    #[test]
    fn empty_ranges_need_no_statement() {
        let request = ScanRequest::range(&b"b"[..], &b"a"[..]);
        assert_eq!(scan_sql(&request), None);
        let all = scan_sql(&ScanRequest::all()).map(|s| s.sql);
        assert_eq!(
            all,
            Some("SELECT key, value, version, expires_at FROM storage_kv WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?")
        );
    }
}
