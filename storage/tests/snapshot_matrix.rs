//! The cross-backend snapshot matrix: for every ordered pair of backends
//! (memory, sqlite, redis, duckdb, remote's local directory), a random
//! state is built on the first, exported, imported into the second on a
//! clock carried over, and then both are observed side by side — every
//! read, scan and receive, as the clocks advance through TTLs, delays and
//! visibility timeouts — and must agree exactly.
//!
//! Pairs with duckdb or remote (no queue tier) move KV state only.
//!
//! `SNAPSHOT_MATRIX_CASES` sets the random states per pair (default 12);
//! `SNAPSHOT_MATRIX_MAX_ITEMS` the most KV writes / messages per state
//! (default 24). A failure prints the pair and proptest's minimal
//! `Spec`. Deeper local search: `SNAPSHOT_MATRIX_CASES=200
//! SNAPSHOT_MATRIX_MAX_ITEMS=80 cargo test --workspace --test snapshot_matrix`.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{has_queues, Env};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use storage_core::snapshot::{self, ImportMode};
use storage_core::{
    Clock, Expiry, KvStore, ManualClock, PutOptions, QueueConfig, QueueStore, ReceiveOptions,
    RedrivePolicy, ScanRequest, SendMessage, Timestamp,
};

const NAMESPACES: [&str; 3] = ["alpha", "beta.2", "gamma_x-y"];

/// One KV write of the state.
#[derive(Debug, Clone)]
enum KvOp {
    Put {
        ns: usize,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Delete {
        ns: usize,
        key: Vec<u8>,
    },
}

/// One message to send.
#[derive(Debug, Clone)]
struct Msg {
    body: Vec<u8>,
    delay_ms: Option<u64>,
    group: u8,
    attribute: bool,
}

/// One queue, its messages, and the receives (and acks) that put some in
/// flight or into the dead-letter queue before the export.
#[derive(Debug, Clone)]
struct QueueSpec {
    fifo: bool,
    dead_letter: bool,
    messages: Vec<Msg>,
    /// (advance the clock by ms, receive up to n, visibility override ms, ack the first)
    receives: Vec<(u64, usize, Option<u64>, bool)>,
}

/// A random state and how the observation advances the clocks.
#[derive(Debug, Clone)]
struct Spec {
    kv: Vec<KvOp>,
    queues: Vec<QueueSpec>,
    /// Clock advances between observations after the import, ms.
    probes: Vec<u64>,
}

fn max_items() -> usize {
    std::env::var("SNAPSHOT_MATRIX_MAX_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

fn cases() -> u32 {
    std::env::var("SNAPSHOT_MATRIX_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // Few distinct keys, so writes overwrite and delete each other; bytes
    // include 0x00, 0xff, '/' and non-ASCII.
    prop_oneof![
        prop::sample::select(vec![
            b"a".to_vec(),
            b"a/b".to_vec(),
            vec![0x00],
            vec![0xff, 0x00],
            "ü".as_bytes().to_vec(),
            b"k%2F".to_vec(),
        ]),
        prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn kv_op() -> impl Strategy<Value = KvOp> {
    prop_oneof![
        4 => (0..NAMESPACES.len(), key(), prop::collection::vec(any::<u8>(), 0..40),
              prop::option::weighted(0.4, 1u64..20_000))
            .prop_map(|(ns, key, value, ttl_ms)| KvOp::Put { ns, key, value, ttl_ms }),
        1 => (0..NAMESPACES.len(), key()).prop_map(|(ns, key)| KvOp::Delete { ns, key }),
    ]
}

fn queue_spec(max: usize) -> impl Strategy<Value = QueueSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 0..24),
                prop::option::weighted(0.3, 1u64..60_000),
                0u8..4,
                any::<bool>(),
            )
                .prop_map(|(body, delay_ms, group, attribute)| Msg {
                    body,
                    delay_ms,
                    group,
                    attribute,
                }),
            0..max.max(1),
        ),
        prop::collection::vec(
            (
                0u64..40_000,
                1usize..4,
                prop::option::of(1u64..60_000),
                any::<bool>(),
            ),
            0..6,
        ),
    )
        .prop_map(|(fifo, dead_letter, messages, receives)| QueueSpec {
            fifo,
            dead_letter,
            messages,
            receives,
        })
}

fn spec(queues: bool) -> impl Strategy<Value = Spec> {
    let max = max_items();
    let queue_count = if queues { 0..3usize } else { 0..1usize };
    (
        prop::collection::vec(kv_op(), 0..max.max(1)),
        prop::collection::vec(queue_spec(max), queue_count),
        prop::collection::vec(prop_oneof![Just(0u64), 1u64..2_000, 2_000u64..90_000], 1..5),
    )
        .prop_map(|(kv, queues, probes)| Spec { kv, queues, probes })
}

fn queue_names(i: usize, q: &QueueSpec) -> (String, String) {
    let suffix = if q.fifo { ".fifo" } else { "" };
    (format!("q{i}{suffix}"), format!("q{i}-dlq{suffix}"))
}

/// Builds `spec` on `kv` / `queues`, moving `clock` as the receives say.
async fn build(
    spec: &Spec,
    kv: &dyn KvStore,
    queues: Option<&dyn QueueStore>,
    clock: &ManualClock,
) -> Result<(), TestCaseError> {
    for op in &spec.kv {
        match op {
            KvOp::Put {
                ns,
                key,
                value,
                ttl_ms,
            } => {
                let expiry =
                    ttl_ms.map_or(Expiry::Never, |ms| Expiry::After(Duration::from_millis(ms)));
                kv.put(
                    NAMESPACES[*ns],
                    key,
                    Bytes::from(value.clone()),
                    PutOptions { expiry },
                )
                .await
                .map_err(fail)?;
            }
            KvOp::Delete { ns, key } => {
                kv.delete(NAMESPACES[*ns], key).await.map_err(fail)?;
            }
        }
    }
    let Some(queues) = queues else {
        return Ok(());
    };
    for (i, q) in spec.queues.iter().enumerate() {
        let (name, dlq) = queue_names(i, q);
        let base = if q.fifo {
            QueueConfig::fifo()
        } else {
            QueueConfig::default()
        };
        let mut config = base.clone();
        if q.dead_letter {
            queues.create_queue(&dlq, base).await.map_err(fail)?;
            config.redrive = Some(RedrivePolicy {
                max_receives: 2,
                dead_letter_queue: dlq.clone(),
            });
        }
        queues.create_queue(&name, config).await.map_err(fail)?;
        for (j, m) in q.messages.iter().enumerate() {
            let mut msg = SendMessage::new(Bytes::from(m.body.clone()));
            if m.attribute {
                msg = msg.attribute("n", j.to_string());
            }
            if q.fifo {
                msg = msg.group(format!("g{}", m.group)).dedup(format!("d{j}"));
            } else if let Some(ms) = m.delay_ms {
                msg = msg.delayed(Duration::from_millis(ms));
            }
            queues.send_batch(&name, vec![msg]).await.map_err(fail)?;
        }
        for (advance, n, vis, ack) in &q.receives {
            clock.advance(Duration::from_millis(*advance));
            let options = ReceiveOptions {
                max_messages: *n,
                visibility_timeout: vis.map(Duration::from_millis),
                wait: Duration::ZERO,
            };
            let got = queues.receive(&name, options).await.map_err(fail)?;
            if *ack {
                if let Some(m) = got.first() {
                    queues.ack(&name, &m.receipt).await.map_err(fail)?;
                }
            }
        }
    }
    Ok(())
}

fn fail(e: storage_core::Error) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Everything a KV reader can see, without version tokens (store-specific).
async fn kv_view(kv: &dyn KvStore) -> Result<String, TestCaseError> {
    let mut out = String::new();
    let mut names = kv.list_namespaces().await.map_err(fail)?;
    names.sort();
    for ns in &names {
        // Forward in small pages (cursor paging), reversed, a prefix, gets.
        let mut forward = Vec::new();
        let mut request = ScanRequest::all().with_limit(3);
        loop {
            let page = kv.scan(ns, request.clone()).await.map_err(fail)?;
            forward.extend(page.entries);
            match page.cursor {
                Some(c) => request.cursor = Some(c),
                None => break,
            }
        }
        let reversed = kv
            .scan(ns, ScanRequest::all().reversed().with_limit(1000))
            .await
            .map_err(fail)?
            .entries;
        let prefixed = kv
            .scan(
                ns,
                ScanRequest::prefix(Bytes::from_static(b"a")).with_limit(1000),
            )
            .await
            .map_err(fail)?
            .entries;
        let strip = |e: &storage_core::Entry| (e.key.clone(), e.value.clone(), e.expires_at);
        out.push_str(&format!(
            "ns {ns}\n forward {:?}\n reversed {:?}\n prefix a {:?}\n",
            forward.iter().map(strip).collect::<Vec<_>>(),
            reversed.iter().map(strip).collect::<Vec<_>>(),
            prefixed.iter().map(strip).collect::<Vec<_>>(),
        ));
        let mut keys: Vec<Bytes> = forward.iter().map(|e| e.key.clone()).collect();
        keys.push(Bytes::from_static(b"\x01never-written"));
        for k in &keys {
            out.push_str(&format!(
                " get {k:?} = {:?}\n",
                kv.get(ns, k).await.map_err(fail)?
            ));
        }
        out.push_str(&format!(
            " get_many = {:?}\n",
            kv.get_many(ns, &keys).await.map_err(fail)?
        ));
    }
    Ok(out)
}

/// Queue names, configurations and counts.
async fn queue_view(queues: &dyn QueueStore) -> Result<String, TestCaseError> {
    let mut out = String::new();
    for name in queues.list_queues("").await.map_err(fail)? {
        let config = queues.queue_config(&name).await.map_err(fail)?;
        let counts = queues.counts(&name).await.map_err(fail)?;
        out.push_str(&format!("queue {name} {config:?} {counts:?}\n"));
    }
    Ok(out)
}

/// Receives up to 10 from every queue and acks every other message: the
/// deliveries (ids, bodies, attributes, receipts, counts, instants,
/// groups) are part of the view.
async fn drain_step(queues: &dyn QueueStore) -> Result<String, TestCaseError> {
    let mut out = String::new();
    for name in queues.list_queues("").await.map_err(fail)? {
        let got = queues
            .receive(&name, ReceiveOptions::batch(10))
            .await
            .map_err(fail)?;
        for (i, m) in got.iter().enumerate() {
            out.push_str(&format!("{name} <- {m:?}\n"));
            if i % 2 == 0 {
                queues.ack(&name, &m.receipt).await.map_err(fail)?;
            }
        }
    }
    Ok(out)
}

struct Side {
    store: storage::Store,
    clock: ManualClock,
}

impl Side {
    async fn view(&self, queues: bool) -> Result<String, TestCaseError> {
        let mut v = kv_view(
            &*self
                .store
                .kv()
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        )
        .await?;
        if queues {
            v.push_str(&queue_view(&*self.store.queue().unwrap()).await?);
        }
        Ok(v)
    }
}

async fn run_pair(env: &Env, from: &str, to: &str, spec: &Spec) -> Result<(), TestCaseError> {
    let queues = has_queues(from) && has_queues(to);
    let start = Timestamp::from_millis(1_700_000_000_000);
    let src_clock = ManualClock::new(start);
    let source = storage::open_with_clock(&env.url(from), Arc::new(src_clock.clone()))
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let src = Side {
        store: source,
        clock: src_clock,
    };
    let result = async {
        let kv = src.store.kv().unwrap();
        let q = if queues {
            Some(src.store.queue().unwrap())
        } else {
            None
        };
        build(spec, &*kv, q.as_deref(), &src.clock).await?;

        let mut bytes = Vec::new();
        snapshot::export(Some(&*kv), q.as_deref(), src.clock.now(), &mut bytes)
            .await
            .map_err(fail)?;

        // Carry the clock over.
        let exported_at = snapshot::decode(&bytes).map_err(fail)?.exported_at;
        let dst_clock = ManualClock::new(exported_at);
        let target = storage::open_with_clock(&env.url(to), Arc::new(dst_clock.clone()))
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dst = Side {
            store: target,
            clock: dst_clock,
        };
        let outcome = async {
            storage::import(&dst.store, &bytes, ImportMode::Replace, &|_, _| {})
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            compare(&src, &dst, queues, spec).await
        }
        .await;
        let _ = dst.store.destroy().await;
        outcome
    }
    .await;
    let _ = src.store.destroy().await;
    result
}

async fn compare(src: &Side, dst: &Side, queues: bool, spec: &Spec) -> Result<(), TestCaseError> {
    prop_assert_eq!(src.clock.now(), dst.clock.now());
    prop_assert_eq!(
        src.view(queues).await?,
        dst.view(queues).await?,
        "right after the import"
    );
    for (step, advance) in spec.probes.iter().enumerate() {
        let d = Duration::from_millis(*advance);
        src.clock.advance(d);
        dst.clock.advance(d);
        if queues {
            let a = drain_step(&*src.store.queue().unwrap()).await?;
            let b = drain_step(&*dst.store.queue().unwrap()).await?;
            prop_assert_eq!(a, b, "deliveries at probe {} (+{} ms)", step, advance);
        }
        prop_assert_eq!(
            src.view(queues).await?,
            dst.view(queues).await?,
            "after probe {} (+{} ms)",
            step,
            advance
        );
    }
    Ok(())
}

fn run_matrix_cell(from: &'static str, to: &'static str) {
    let mut needs = vec![from, to];
    needs.dedup();
    let env = Env::new(&needs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let queues = has_queues(from) && has_queues(to);
    let result = runner.run(&spec(queues), |spec| {
        rt.block_on(run_pair(&env, from, to, &spec))
    });
    if let Err(e) = result {
        panic!("snapshot {from} -> {to}: {e}");
    }
}

macro_rules! matrix {
    ($($name:ident: $from:literal -> $to:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run_matrix_cell($from, $to);
            }
        )*
    };
}

matrix! {
    memory_to_memory: "memory" -> "memory";
    memory_to_sqlite: "memory" -> "sqlite";
    memory_to_redis: "memory" -> "redis";
    memory_to_duckdb: "memory" -> "duckdb";
    memory_to_remote: "memory" -> "remote";
    sqlite_to_memory: "sqlite" -> "memory";
    sqlite_to_sqlite: "sqlite" -> "sqlite";
    sqlite_to_redis: "sqlite" -> "redis";
    sqlite_to_duckdb: "sqlite" -> "duckdb";
    sqlite_to_remote: "sqlite" -> "remote";
    redis_to_memory: "redis" -> "memory";
    redis_to_sqlite: "redis" -> "sqlite";
    redis_to_redis: "redis" -> "redis";
    redis_to_duckdb: "redis" -> "duckdb";
    redis_to_remote: "redis" -> "remote";
    duckdb_to_memory: "duckdb" -> "memory";
    duckdb_to_sqlite: "duckdb" -> "sqlite";
    duckdb_to_redis: "duckdb" -> "redis";
    duckdb_to_duckdb: "duckdb" -> "duckdb";
    duckdb_to_remote: "duckdb" -> "remote";
    remote_to_memory: "remote" -> "memory";
    remote_to_sqlite: "remote" -> "sqlite";
    remote_to_redis: "remote" -> "redis";
    remote_to_duckdb: "remote" -> "duckdb";
    remote_to_remote: "remote" -> "remote";
}

/// Every backend of the matrix has a cell in both directions.
#[test]
fn the_matrix_covers_every_ordered_pair() {
    let source = include_str!("snapshot_matrix.rs");
    let mut cells = BTreeMap::new();
    for from in common::BACKENDS {
        for to in common::BACKENDS {
            let line = format!("{from}_to_{to}: \"{from}\" -> \"{to}\";");
            cells.insert((from, to), source.contains(&line));
        }
    }
    let missing: Vec<_> = cells
        .iter()
        .filter(|(_, &ok)| !ok)
        .map(|(k, _)| *k)
        .collect();
    assert!(missing.is_empty(), "pairs without a test: {missing:?}");
}
