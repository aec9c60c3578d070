//! The model-based property shared by the KV, TTL, CAS and transaction
//! suites: random operation sequences applied to the backend and to
//! [`KvModel`], with every result compared.
//!
//! Alphabets are tiny (three namespaces, a dozen keys including `0x00` and
//! `0xff` bytes, four values) so sequences collide on keys, overwrite,
//! expire and conflict often. Each [`Flavor`] weights the operations for
//! its tier; all of them mix in the plain KV operations. Version tokens
//! the model has not seen yet (after a plain `put`) are learned with a
//! `get_versioned` before a conditional operation needs them; those reads
//! are compared too.
//!
//! The failure message lists every step up to the first divergence with
//! what the model expected and what the backend answered.

use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::select;
use storage_core::{
    AtomicKv, BatchOp, Capabilities, Condition, Cursor, Entry, Error, Expiry, KvStore, KvStoreExt,
    ManualClock, PutMode, PutOptions, ScanRequest, Timestamp, TxAction, TxOp, Version,
};

use crate::case::{CaseResult, Failure};
use crate::harness::{Fixture, Harness};
use crate::model::kv::{KvModel, ModelEntry, Want};

/// The namespaces sequences use.
pub const NAMESPACES: [&str; 3] = ["ns-a", "ns_b", "ns:c/d.e"];

const KEYS: [&[u8]; 12] = [
    b"\x00",
    b"a",
    b"a\x00",
    b"aa",
    b"ab",
    b"a\xff",
    b"b",
    b"ba",
    b"b\xff",
    b"\x7f",
    b"\xff",
    b"\xff\xff",
];
const PREFIXES: [&[u8]; 7] = [b"", b"a", b"ab", b"b", b"\xff", b"\xff\xff", b"\x00"];
const VALUES: [&[u8]; 4] = [b"", b"x", b"y", b"zz"];
const DELIMITERS: [&[u8]; 4] = [b"a", b"b", b"\x00", b"a\xff"];

/// Which operations a property emphasises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Plain KV operations, occasional expiries.
    Kv,
    /// KV operations with frequent short expiries and clock advances.
    Ttl,
    /// KV plus versioned reads, conditional puts and deletes.
    Cas,
    /// CAS plus multi-key transactions.
    Tx,
}

/// A key range or prefix of a scan.
#[derive(Debug, Clone)]
pub enum RangeSpec {
    /// [`ScanRequest::prefix`].
    Prefix(Bytes),
    /// Explicit bounds (possibly inverted: then `InvalidInput`).
    Range(Bound<Bytes>, Bound<Bytes>),
}

/// How far to move the clock.
#[derive(Debug, Clone)]
pub enum Advance {
    /// By this many milliseconds.
    Millis(u64),
    /// To the earliest pending expiry instant plus this offset (-1, 0, +1
    /// ms): exactly at the instant the entry must be gone.
    ToNextExpiry(i64),
}

/// Which token a conditional operation presents.
#[derive(Debug, Clone)]
pub enum Token {
    /// The key's current token (its last one if absent).
    Current,
    /// An earlier token of this key (index into its history, modulo).
    Stale(usize),
    /// The latest token of another key of the namespace.
    OfKey(Bytes),
    /// A token no backend issued.
    Bogus,
}

/// The mode of a generated conditional put.
#[derive(Debug, Clone)]
pub enum Mode {
    /// [`PutMode::Overwrite`].
    Overwrite,
    /// [`PutMode::Create`].
    Create,
    /// [`PutMode::Update`].
    Update(Token),
}

/// A generated transaction condition.
#[derive(Debug, Clone)]
pub enum Cond {
    /// [`Condition::Absent`].
    Absent,
    /// [`Condition::Exists`].
    Exists,
    /// [`Condition::Version`].
    Version(Token),
}

/// A generated transaction action.
#[derive(Debug, Clone)]
pub enum Act {
    /// Put, with an optional TTL in ms.
    Put(Bytes, Option<u64>),
    /// Delete.
    Delete,
    /// Check (always with a condition).
    Check,
}

/// One generated transaction operation.
#[derive(Debug, Clone)]
pub struct TxItem {
    /// Namespace.
    pub ns: &'static str,
    /// Key.
    pub key: Bytes,
    /// Action.
    pub act: Act,
    /// Condition.
    pub cond: Option<Cond>,
}

/// One generated batch write.
#[derive(Debug, Clone)]
pub enum BatchItem {
    /// Put with an optional TTL in ms.
    Put(Bytes, Bytes, Option<u64>),
    /// Delete.
    Delete(Bytes),
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Op {
    /// `get`.
    Get(&'static str, Bytes),
    /// `put`, with an optional TTL in ms.
    Put(&'static str, Bytes, Bytes, Option<u64>),
    /// `delete`.
    Delete(&'static str, Bytes),
    /// `get_many`.
    GetMany(&'static str, Vec<Bytes>),
    /// `write_batch`.
    WriteBatch(&'static str, Vec<BatchItem>),
    /// `scan`, following every cursor to the end.
    Scan {
        /// Namespace.
        ns: &'static str,
        /// Range.
        range: RangeSpec,
        /// Page limit.
        limit: usize,
        /// Direction.
        reverse: bool,
    },
    /// `list_with_delimiter`, following every cursor.
    ListDelimited {
        /// Namespace.
        ns: &'static str,
        /// Prefix.
        prefix: Bytes,
        /// Delimiter.
        delimiter: Bytes,
        /// Page limit.
        limit: usize,
    },
    /// `list_namespaces`.
    ListNamespaces,
    /// `drop_namespace`.
    DropNamespace(&'static str),
    /// Move the manual clock.
    Advance(Advance),
    /// `get_versioned`.
    GetVersioned(&'static str, Bytes),
    /// `put_if`, with an optional TTL in ms.
    PutIf(&'static str, Bytes, Bytes, Mode, Option<u64>),
    /// `delete_if`.
    DeleteIf(&'static str, Bytes, Token),
    /// `transact`.
    Transact(Vec<TxItem>),
}

fn bytes_of(list: &'static [&'static [u8]]) -> impl Strategy<Value = Bytes> + Clone {
    select(
        list.iter()
            .map(|b| Bytes::from_static(b))
            .collect::<Vec<_>>(),
    )
}

fn ns() -> impl Strategy<Value = &'static str> + Clone {
    select(NAMESPACES.to_vec())
}

fn key() -> impl Strategy<Value = Bytes> + Clone {
    bytes_of(&KEYS)
}

fn value() -> impl Strategy<Value = Bytes> + Clone {
    bytes_of(&VALUES)
}

fn ttl(flavor: Flavor) -> BoxedStrategy<Option<u64>> {
    match flavor {
        Flavor::Ttl => prop_oneof![
            1 => Just(None),
            1 => select(vec![1u64, 2, 10, 100]).prop_map(Some),
        ]
        .boxed(),
        _ => prop_oneof![
            6 => Just(None),
            1 => select(vec![5u64, 100, 1000]).prop_map(Some),
        ]
        .boxed(),
    }
}

fn bound() -> impl Strategy<Value = Bound<Bytes>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        2 => key().prop_map(Bound::Included),
        2 => key().prop_map(Bound::Excluded),
    ]
}

fn range() -> impl Strategy<Value = RangeSpec> {
    prop_oneof![
        1 => bytes_of(&PREFIXES).prop_map(RangeSpec::Prefix),
        2 => (bound(), bound()).prop_map(|(s, e)| RangeSpec::Range(s, e)),
    ]
}

fn limit() -> impl Strategy<Value = usize> {
    select(vec![1usize, 2, 3, 7, 1000])
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        4 => Just(Token::Current),
        2 => (0usize..4).prop_map(Token::Stale),
        1 => key().prop_map(Token::OfKey),
        1 => Just(Token::Bogus),
    ]
}

fn advance(flavor: Flavor) -> impl Strategy<Value = Op> {
    let millis = if flavor == Flavor::Ttl {
        select(vec![1u64, 3, 10, 100])
    } else {
        select(vec![1u64, 5, 100, 1000])
    };
    prop_oneof![
        1 => millis.prop_map(Advance::Millis),
        1 => (-1i64..=1).prop_map(Advance::ToNextExpiry),
    ]
    .prop_map(Op::Advance)
}

fn tx_item(flavor: Flavor) -> impl Strategy<Value = TxItem> {
    let act = prop_oneof![
        3 => (value(), ttl(flavor)).prop_map(|(v, t)| Act::Put(v, t)),
        2 => Just(Act::Delete),
        1 => Just(Act::Check),
    ];
    let cond = prop_oneof![
        2 => Just(None),
        1 => Just(Some(Cond::Absent)),
        1 => Just(Some(Cond::Exists)),
        2 => token().prop_map(|t| Some(Cond::Version(t))),
    ];
    (ns(), key(), act, cond).prop_map(|(ns, key, act, cond)| {
        // A check needs a condition to check.
        let cond = match (&act, cond) {
            (Act::Check, None) => Some(Cond::Exists),
            (_, c) => c,
        };
        TxItem { ns, key, act, cond }
    })
}

fn transaction(flavor: Flavor) -> impl Strategy<Value = Op> {
    // Mostly one namespace per transaction (so namespace-scoped backends
    // mostly commit), sometimes an operation elsewhere.
    (
        ns(),
        prop::collection::vec((tx_item(flavor), prop::bool::weighted(0.15)), 1..=4),
    )
        .prop_map(|(main, items)| {
            Op::Transact(
                items
                    .into_iter()
                    .map(|(mut item, elsewhere)| {
                        if !elsewhere {
                            item.ns = main;
                        }
                        item
                    })
                    .collect(),
            )
        })
}

/// One operation, weighted for `flavor`.
pub fn op(flavor: Flavor) -> BoxedStrategy<Op> {
    let batch_item = prop_oneof![
        3 => (key(), value(), ttl(flavor)).prop_map(|(k, v, t)| BatchItem::Put(k, v, t)),
        1 => key().prop_map(BatchItem::Delete),
    ];
    let kv = prop_oneof![
        3 => (ns(), key()).prop_map(|(n, k)| Op::Get(n, k)),
        6 => (ns(), key(), value(), ttl(flavor)).prop_map(|(n, k, v, t)| Op::Put(n, k, v, t)),
        2 => (ns(), key()).prop_map(|(n, k)| Op::Delete(n, k)),
        2 => (ns(), prop::collection::vec(key(), 0..=4)).prop_map(|(n, k)| Op::GetMany(n, k)),
        2 => (ns(), prop::collection::vec(batch_item, 1..=4))
            .prop_map(|(n, b)| Op::WriteBatch(n, b)),
        4 => (ns(), range(), limit(), any::<bool>())
            .prop_map(|(ns, range, limit, reverse)| Op::Scan { ns, range, limit, reverse }),
        1 => (ns(), bytes_of(&PREFIXES), bytes_of(&DELIMITERS), select(vec![1usize, 2, 5]))
            .prop_map(|(ns, prefix, delimiter, limit)| Op::ListDelimited {
                ns,
                prefix,
                delimiter,
                limit,
            }),
        1 => Just(Op::ListNamespaces),
        1 => ns().prop_map(Op::DropNamespace),
        2 => advance(flavor),
    ];
    let cas = prop_oneof![
        3 => (ns(), key()).prop_map(|(n, k)| Op::GetVersioned(n, k)),
        6 => (
            ns(),
            key(),
            value(),
            prop_oneof![
                1 => Just(Mode::Overwrite),
                2 => Just(Mode::Create),
                4 => token().prop_map(Mode::Update),
            ],
            ttl(flavor)
        )
            .prop_map(|(n, k, v, m, t)| Op::PutIf(n, k, v, m, t)),
        3 => (ns(), key(), token()).prop_map(|(n, k, t)| Op::DeleteIf(n, k, t)),
    ];
    match flavor {
        Flavor::Kv => kv.boxed(),
        Flavor::Ttl => prop_oneof![3 => kv, 1 => advance(flavor)].boxed(),
        Flavor::Cas => prop_oneof![1 => kv, 1 => cas].boxed(),
        Flavor::Tx => prop_oneof![2 => kv, 1 => cas, 2 => transaction(flavor)].boxed(),
    }
}

/// A sequence of 1..=`max_ops` operations.
pub fn sequence(flavor: Flavor, max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(flavor), 1..=max_ops)
}

/// Runs the property of `flavor` on `harness`.
pub async fn run(harness: Arc<dyn Harness>, flavor: Flavor) -> CaseResult {
    let caps = harness.capabilities();
    let max_ops = crate::prop::max_ops();
    crate::prop::check(
        &harness,
        move || sequence(flavor, max_ops),
        move |f: Fixture, ops: Vec<Op>| async move {
            let atomic = match flavor {
                Flavor::Kv | Flavor::Ttl => None,
                Flavor::Cas | Flavor::Tx => Some(f.atomic()?),
            };
            let mut d = Driver {
                kv: f.kv()?,
                atomic,
                clock: f.clock.clone(),
                model: KvModel::new(caps),
                caps,
                log: String::new(),
            };
            d.run(&ops).await.map_err(Failure)
        },
    )
    .await
}

/// Applies operations to a backend and the model side by side.
struct Driver {
    kv: Arc<dyn KvStore>,
    atomic: Option<Arc<dyn AtomicKv>>,
    clock: ManualClock,
    model: KvModel,
    caps: Capabilities,
    /// What the driver did, step by step (printed on failure).
    log: String,
}

type Step = Result<(), String>;

fn expiry(ttl: Option<u64>) -> Expiry {
    ttl.map_or(Expiry::Never, |ms| Expiry::After(Duration::from_millis(ms)))
}

fn bogus() -> Version {
    Version::new("conformance-bogus-version")
}

/// Compares a predicted outcome with the backend's; `Some(value)` when both
/// succeeded.
fn outcome<T: std::fmt::Debug>(
    want: Result<(), Want>,
    got: Result<T, Error>,
) -> Result<Option<T>, String> {
    match (want, got) {
        (Ok(()), Ok(t)) => Ok(Some(t)),
        (Err(w), Err(e)) => w.check(&e).map(|()| None),
        (Ok(()), Err(e)) => Err(format!("model expects success, backend answered {e:?}")),
        (Err(w), Ok(t)) => Err(format!(
            "model expects error {w:?}, backend succeeded with {t:?}"
        )),
    }
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, model: &T, backend: &T) -> Step {
    if model == backend {
        Ok(())
    } else {
        Err(format!(
            "{what}:\n  model:   {model:?}\n  backend: {backend:?}"
        ))
    }
}

impl Driver {
    async fn run(&mut self, ops: &[Op]) -> Step {
        for (i, op) in ops.iter().enumerate() {
            let _ = writeln!(self.log, "  step {i}: {op:?}");
            if let Err(e) = self.step(op).await {
                return Err(format!(
                    "diverged at step {i} of {} (now = {:?}):\n{e}\n\nsteps run:\n{}",
                    ops.len(),
                    self.now(),
                    self.log
                ));
            }
        }
        if let Err(e) = self.final_check().await {
            return Err(format!(
                "final state check after {} steps diverged:\n{e}\n\nsteps run:\n{}",
                ops.len(),
                self.log
            ));
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        storage_core::Clock::now(&self.clock)
    }

    fn atomic(&self) -> Result<&Arc<dyn AtomicKv>, String> {
        self.atomic
            .as_ref()
            .ok_or_else(|| "CAS operation generated without a CAS handle".to_owned())
    }

    async fn step(&mut self, op: &Op) -> Step {
        let now = self.now();
        self.model.expire(now);
        match op {
            Op::Get(ns, k) => {
                let got = self.kv.get(ns, k).await.map_err(|e| e.to_string())?;
                same("get", &self.model.get(ns, k), &got)
            }
            Op::Put(ns, k, v, ttl) => {
                let ex = expiry(*ttl);
                let got = self
                    .kv
                    .put(ns, k, v.clone(), PutOptions { expiry: ex })
                    .await;
                if outcome(self.model.check_expiry(ex), got)?.is_some() {
                    self.model.write(ns, k, v.clone(), ex, now, None)?;
                }
                Ok(())
            }
            Op::Delete(ns, k) => {
                let got = self.kv.delete(ns, k).await.map_err(|e| e.to_string())?;
                same("delete's result", &self.model.remove(ns, k), &got)
            }
            Op::GetMany(ns, keys) => {
                let got = self
                    .kv
                    .get_many(ns, keys)
                    .await
                    .map_err(|e| e.to_string())?;
                same("get_many", &self.model.get_many(ns, keys), &got)
            }
            Op::WriteBatch(ns, items) => {
                let ops: Vec<BatchOp> = items
                    .iter()
                    .map(|i| match i {
                        BatchItem::Put(key, value, ttl) => BatchOp::Put {
                            key: key.clone(),
                            value: value.clone(),
                            options: PutOptions {
                                expiry: expiry(*ttl),
                            },
                        },
                        BatchItem::Delete(key) => BatchOp::Delete { key: key.clone() },
                    })
                    .collect();
                let want = self.model.check_batch(&ops);
                let got = self.kv.write_batch(ns, ops.clone()).await;
                if outcome(want, got)?.is_some() {
                    self.model.apply_batch(ns, &ops, now)?;
                } else {
                    let keys: Vec<(&str, Bytes)> =
                        ops.iter().map(|o| (*ns, o.key().clone())).collect();
                    self.verify_keys(&keys).await?;
                }
                Ok(())
            }
            Op::Scan {
                ns,
                range,
                limit,
                reverse,
            } => {
                let mut req = match range {
                    RangeSpec::Prefix(p) => ScanRequest::prefix(p.clone()),
                    RangeSpec::Range(s, e) => ScanRequest {
                        start: s.clone(),
                        end: e.clone(),
                        ..ScanRequest::all()
                    },
                }
                .with_limit(*limit);
                if *reverse {
                    req = req.reversed();
                }
                self.scan_all_pages(ns, req).await
            }
            Op::ListDelimited {
                ns,
                prefix,
                delimiter,
                limit,
            } => self.list_delimited(ns, prefix, delimiter, *limit).await,
            Op::ListNamespaces => {
                let got = self.kv.list_namespaces().await.map_err(|e| e.to_string())?;
                same("list_namespaces", &self.model.list_namespaces(), &got)
            }
            Op::DropNamespace(ns) => {
                let got = self
                    .kv
                    .drop_namespace(ns)
                    .await
                    .map_err(|e| e.to_string())?;
                same(
                    "drop_namespace's result",
                    &self.model.drop_namespace(ns),
                    &got,
                )
            }
            Op::Advance(a) => {
                let by = match a {
                    Advance::Millis(ms) => Duration::from_millis(*ms),
                    Advance::ToNextExpiry(offset) => match self.model.next_expiry() {
                        Some(t) => {
                            let target = t.as_millis().saturating_add_signed(*offset);
                            Duration::from_millis(target.saturating_sub(now.as_millis()))
                        }
                        None => Duration::ZERO,
                    },
                };
                self.clock.advance(by);
                let _ = writeln!(self.log, "          clock now {:?}", self.now());
                Ok(())
            }
            Op::GetVersioned(ns, k) => self.get_versioned(ns, k).await,
            Op::PutIf(ns, k, v, mode, ttl) => {
                self.learn(ns, k).await?;
                let mode = match mode {
                    Mode::Overwrite => PutMode::Overwrite,
                    Mode::Create => PutMode::Create,
                    Mode::Update(t) => PutMode::Update(self.resolve(ns, k, t)),
                };
                let ex = expiry(*ttl);
                let _ = writeln!(self.log, "          mode {mode:?}");
                let want = self.model.check_put_if(ns, k, &mode, ex);
                let got = self
                    .atomic()?
                    .put_if(ns, k, v.clone(), mode, PutOptions { expiry: ex })
                    .await;
                match outcome(want, got)? {
                    Some(version) => self.model.write(ns, k, v.clone(), ex, now, Some(version)),
                    None => self.verify_keys(&[(*ns, k.clone())]).await,
                }
            }
            Op::DeleteIf(ns, k, t) => {
                self.learn(ns, k).await?;
                let version = self.resolve(ns, k, t);
                let _ = writeln!(self.log, "          version {version:?}");
                let want = self.model.check_delete_if(ns, k, &version);
                let got = self.atomic()?.delete_if(ns, k, &version).await;
                match outcome(want, got)? {
                    Some(()) => {
                        self.model.remove(ns, k);
                        Ok(())
                    }
                    None => self.verify_keys(&[(*ns, k.clone())]).await,
                }
            }
            Op::Transact(items) => self.transact(items, now).await,
        }
    }

    /// Learns the token of a live key the model has no token for.
    async fn learn(&mut self, ns: &str, k: &Bytes) -> Step {
        if self.model.needs_learning(ns, k) {
            let _ = writeln!(self.log, "          (learning the version of {ns:?}/{k:?})");
            self.get_versioned(ns, k).await?;
        }
        Ok(())
    }

    async fn get_versioned(&mut self, ns: &str, k: &Bytes) -> Step {
        let got = self
            .atomic()?
            .get_versioned(ns, k)
            .await
            .map_err(|e| e.to_string())?;
        same(
            "get_versioned's value",
            &self.model.get(ns, k),
            &got.as_ref().map(|v| v.value.clone()),
        )?;
        if let Some(v) = got {
            self.model.learn(ns, k, &v.version)?;
        }
        Ok(())
    }

    fn resolve(&self, ns: &str, k: &Bytes, t: &Token) -> Version {
        let latest = |key: &Bytes| {
            self.model
                .current(ns, key)
                .or_else(|| self.model.history(ns, key).pop())
        };
        match t {
            Token::Current => latest(k),
            Token::Stale(i) => {
                let cur = self.model.current(ns, k);
                let stale: Vec<Version> = self
                    .model
                    .history(ns, k)
                    .into_iter()
                    .filter(|v| Some(v) != cur.as_ref())
                    .collect();
                stale.get(i % stale.len().max(1)).cloned()
            }
            Token::OfKey(other) => latest(other),
            Token::Bogus => None,
        }
        .unwrap_or_else(bogus)
    }

    async fn transact(&mut self, items: &[TxItem], now: Timestamp) -> Step {
        for item in items {
            self.learn(item.ns, &item.key).await?;
        }
        let ops: Vec<TxOp> = items
            .iter()
            .map(|i| TxOp {
                namespace: i.ns.to_owned(),
                key: i.key.clone(),
                action: match &i.act {
                    Act::Put(v, ttl) => TxAction::Put {
                        value: v.clone(),
                        options: PutOptions {
                            expiry: expiry(*ttl),
                        },
                    },
                    Act::Delete => TxAction::Delete,
                    Act::Check => TxAction::Check,
                },
                condition: i.cond.as_ref().map(|c| match c {
                    Cond::Absent => Condition::Absent,
                    Cond::Exists => Condition::Exists,
                    Cond::Version(t) => Condition::Version(self.resolve(i.ns, &i.key, t)),
                }),
            })
            .collect();
        for (i, op) in ops.iter().enumerate() {
            if let Some(c) = &op.condition {
                let _ = writeln!(self.log, "          #{i} condition {c:?}");
            }
        }
        let want = self.model.check_transact(&ops);
        let got = self.atomic()?.transact(ops.clone()).await;
        match outcome(want, got)? {
            Some(versions) => self.model.apply_transact(&ops, &versions, now),
            None => {
                let keys: Vec<(&str, Bytes)> =
                    items.iter().map(|i| (i.ns, i.key.clone())).collect();
                self.verify_keys(&keys)
                    .await
                    .map_err(|e| format!("a failed transaction changed something: {e}"))
            }
        }
    }

    /// Checks the values of `keys` against the model (after a failed write
    /// that must have changed nothing).
    async fn verify_keys(&self, keys: &[(&str, Bytes)]) -> Step {
        for (ns, k) in keys {
            let got = self.kv.get(ns, k).await.map_err(|e| e.to_string())?;
            same(
                &format!("value of {ns:?}/{k:?} after a failed write"),
                &self.model.get(ns, k),
                &got,
            )?;
        }
        Ok(())
    }

    fn check_entry(&mut self, ns: &str, got: &Entry, want: &(Bytes, ModelEntry)) -> Step {
        let (k, e) = want;
        same("scan entry key", k, &got.key)?;
        same(&format!("scan entry value of {k:?}"), &e.value, &got.value)?;
        same(
            &format!("scan entry expires_at of {k:?}"),
            &e.expires_at,
            &got.expires_at,
        )?;
        if let Some(v) = &got.version {
            if self.atomic.is_some() {
                self.model.learn(ns, k, v)?;
            }
        }
        Ok(())
    }

    /// Reads every page of `req`, comparing each page and the presence of
    /// its cursor (`Some` iff the page is full and more remain).
    async fn scan_all_pages(&mut self, ns: &str, mut req: ScanRequest) -> Step {
        let mut after: Option<Bytes> = None;
        for page_no in 0.. {
            let want = self.model.scan_page(ns, &req, after.as_ref());
            let got = self.kv.scan(ns, req.clone()).await;
            let Some(page) = outcome(want.clone().map(|_| ()), got)? else {
                return Ok(());
            };
            let (want_entries, want_more) = want.unwrap_or_default();
            same(
                &format!("keys of scan page {page_no}"),
                &want_entries
                    .iter()
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>(),
                &page
                    .entries
                    .iter()
                    .map(|e| e.key.clone())
                    .collect::<Vec<_>>(),
            )?;
            for (g, w) in page.entries.iter().zip(&want_entries) {
                self.check_entry(ns, g, w)?;
            }
            same(
                &format!("whether scan page {page_no} has a cursor"),
                &want_more,
                &page.cursor.is_some(),
            )?;
            let Some(cursor) = page.cursor else {
                return Ok(());
            };
            // Cursors round-trip through their string form (emulators hand
            // them out as continuation tokens).
            let text = cursor.to_string();
            let parsed: Cursor = text
                .parse()
                .map_err(|e| format!("cursor {text:?} does not parse back: {e}"))?;
            req.cursor = Some(parsed);
            after = want_entries.last().map(|(k, _)| k.clone());
        }
        Ok(())
    }

    async fn list_delimited(
        &mut self,
        ns: &str,
        prefix: &Bytes,
        delimiter: &Bytes,
        limit: usize,
    ) -> Step {
        let all = self.model.list_delimited(ns, prefix, delimiter);
        let mut cursor = None;
        for (page_no, chunk) in all
            .chunks(limit)
            .chain(all.is_empty().then_some(&[][..]))
            .enumerate()
        {
            let page = self
                .kv
                .list_with_delimiter(ns, prefix, delimiter, cursor.clone(), limit)
                .await
                .map_err(|e| e.to_string())?;
            let want_entries: Vec<Bytes> = chunk
                .iter()
                .filter(|i| !i.is_prefix)
                .map(|i| i.key.clone())
                .collect();
            let want_prefixes: Vec<Bytes> = chunk
                .iter()
                .filter(|i| i.is_prefix)
                .map(|i| i.key.clone())
                .collect();
            same(
                &format!("entries of listing page {page_no}"),
                &want_entries,
                &page.entries.iter().map(|e| e.key.clone()).collect(),
            )?;
            same(
                &format!("common prefixes of listing page {page_no}"),
                &want_prefixes,
                &page.common_prefixes,
            )?;
            for e in &page.entries {
                same(
                    &format!("listed value of {:?}", e.key),
                    &self.model.get(ns, &e.key),
                    &Some(e.value.clone()),
                )?;
            }
            let more = (page_no + 1) * limit < all.len();
            same(
                &format!("whether listing page {page_no} has a cursor"),
                &more,
                &page.cursor.is_some(),
            )?;
            cursor = page.cursor;
        }
        Ok(())
    }

    /// The whole store against the model.
    async fn final_check(&mut self) -> Step {
        let now = self.now();
        self.model.expire(now);
        let got = self.kv.list_namespaces().await.map_err(|e| e.to_string())?;
        same("list_namespaces", &self.model.list_namespaces(), &got)?;
        for ns in NAMESPACES {
            let req = ScanRequest::all().with_limit(self.caps.max_scan_limit.min(1000));
            self.scan_all_pages(ns, req).await?;
        }
        Ok(())
    }
}
