//! A store outlives its server: while `redis-server` is down every call
//! fails, quickly and without a panic, with a retryable error; once the
//! server is back (same port, AOF on, so the data survives) the SAME store
//! works again with no reconnect call. Also with tasks running operations
//! while the server dies and comes back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{b, eventually, increment, standalone, unique_prefix, TempDir};
use storage_core::{
    AtomicKv, BatchOp, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest, TxOp,
};
use storage_redis::testing::RedisServer;
use storage_redis::RedisStore;

/// Longest one failing call may take: the connection has 2 s connect and
/// 5 s response timeouts and retries twice with ~1-2 s backoff (about 3 s
/// on an idle machine); the bound is loose so a loaded CI machine does not
/// fail it, and tight enough to catch the minutes-long hang it guards.
const CALL_BOUND: Duration = Duration::from_secs(30);

/// How long a restarted server gets before the store must work again.
const RECOVERY: Duration = Duration::from_secs(30);

/// A server whose data survives a restart: AOF, fsync on every write (the
/// test kills it with SIGKILL and checks acknowledged writes survived).
fn durable_server(dir: &TempDir) -> RedisServer {
    let dir = dir.path_str();
    RedisServer::spawn(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        &dir,
    ])
    .unwrap_or_else(|e| panic!("no Redis server: {e}"))
}

/// Runs one call against a stopped server: it must fail within
/// [`CALL_BOUND`] with a retryable error.
async fn fails_retryably<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, Error>>,
) {
    let start = Instant::now();
    let outcome = tokio::time::timeout(CALL_BOUND + Duration::from_secs(5), call).await;
    let elapsed = start.elapsed();
    let Ok(result) = outcome else {
        panic!("{what} did not return within {CALL_BOUND:?} of the server dying");
    };
    assert!(elapsed <= CALL_BOUND, "{what} took {elapsed:?}");
    match result {
        Err(e) => assert!(e.is_retryable(), "{what}: not retryable: {e:?}"),
        Ok(v) => panic!("{what} succeeded with the server down: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_fails_retryably_while_down_and_the_same_store_recovers() {
    let dir = TempDir::new("redis-aof");
    let mut server = durable_server(&dir);
    let prefix = unique_prefix("rs");
    let clock = ManualClock::at_fixed_start();
    let store = standalone(server.url(), &prefix, &clock).await;
    for i in 0..10 {
        store
            .put(
                "ns",
                format!("k{i}").as_bytes(),
                b(&format!("v{i}")),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let token = store
        .put_if("ns", b"cas", b("0"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();

    server.stop();
    fails_retryably("get", store.get("ns", b"k1")).await;
    fails_retryably("put", store.put("ns", b"k1", b("x"), PutOptions::default())).await;
    fails_retryably("scan", store.scan("ns", ScanRequest::all())).await;
    fails_retryably(
        "put_if",
        store.put_if(
            "ns",
            b"cas",
            b("1"),
            PutMode::Update(token.clone()),
            PutOptions::default(),
        ),
    )
    .await;
    fails_retryably(
        "transact",
        store.transact(vec![
            TxOp::put("ns", b("t1"), b("1")),
            TxOp::delete("ns", b("k2")),
        ]),
    )
    .await;
    fails_retryably("get_versioned", store.get_versioned("ns", b"cas")).await;
    fails_retryably("get_many", store.get_many("ns", &[b("k1"), b("k2")])).await;
    fails_retryably("delete", store.delete("ns", b"k3")).await;
    fails_retryably("delete_if", store.delete_if("ns", b"cas", &token)).await;
    fails_retryably(
        "write_batch",
        store.write_batch("ns", vec![BatchOp::Delete { key: b("k4") }]),
    )
    .await;
    fails_retryably("list_namespaces", store.list_namespaces()).await;
    fails_retryably("drop_namespace", store.drop_namespace("other")).await;

    server.restart().unwrap();
    let back = eventually(RECOVERY, || async { store.get("ns", b"k0").await.ok() }).await;
    assert_eq!(back, Some(Some(b("v0"))), "the store did not recover");

    // Everything written before the crash is there, tokens included.
    for i in 0..10 {
        assert_eq!(
            store.get("ns", format!("k{i}").as_bytes()).await.unwrap(),
            Some(b(&format!("v{i}")))
        );
    }
    let cas = store.get_versioned("ns", b"cas").await.unwrap().unwrap();
    assert_eq!((cas.value, cas.version.clone()), (b("0"), token.clone()));
    let next = store
        .put_if(
            "ns",
            b"cas",
            b("1"),
            PutMode::Update(token.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(next, token);
    store
        .transact(vec![TxOp::put("ns", b("t1"), b("1"))])
        .await
        .unwrap();
    assert_eq!(store.list_namespaces().await.unwrap(), ["ns"]);
    store.destroy().await.unwrap();
}

/// What the worker tasks saw.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    acked_increments: AtomicUsize,
    failed_increments: AtomicUsize,
    slowest_ms: AtomicUsize,
    /// Errors that were not retryable, as text.
    bad: Mutex<Vec<String>>,
}

impl Tally {
    fn record<T>(&self, started: Instant, result: Result<T, Error>, what: &str) -> Option<T> {
        let ms = usize::try_from(started.elapsed().as_millis()).unwrap_or(usize::MAX);
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
        match result {
            Ok(v) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if !e.is_retryable() {
                    self.bad.lock().unwrap().push(format!("{what}: {e:?}"));
                }
                None
            }
        }
    }
}

/// One worker: KV and CAS calls in a loop until `stop`.
async fn work(store: RedisStore, id: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let key = Bytes::from(format!("w{id}"));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let t = Instant::now();
        let r = store
            .put(
                "ns",
                &key,
                Bytes::from(n.to_string()),
                PutOptions::default(),
            )
            .await;
        tally.record(t, r, "put");
        let t = Instant::now();
        let r = store.get("ns", &key).await;
        tally.record(t, r, "get");
        let t = Instant::now();
        let r = store.scan("ns", ScanRequest::all().with_limit(5)).await;
        tally.record(t, r, "scan");
        let t = Instant::now();
        let r = increment(&store, "ns", b"counter").await;
        if tally.record(t, r, "increment").is_some() {
            tally.acked_increments.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.failed_increments.fetch_add(1, Ordering::Relaxed);
        }
        let t = Instant::now();
        let r = store
            .transact(vec![
                TxOp::put("ns", Bytes::from(format!("tx{id}")), b("x")),
                TxOp::delete("ns", Bytes::from(format!("gone{id}"))),
            ])
            .await;
        tally.record(t, r, "transact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_running_while_the_server_dies_and_returns_see_only_retryable_errors() {
    let dir = TempDir::new("redis-aof");
    let mut server = durable_server(&dir);
    let prefix = unique_prefix("rsc");
    let clock = ManualClock::at_fixed_start();
    let store = standalone(server.url(), &prefix, &clock).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..4)
        .map(|id| tokio::spawn(work(store.clone(), id, stop.clone(), tally.clone())))
        .collect();

    let ok_before = eventually(RECOVERY, || async {
        let ok = tally.ok.load(Ordering::Relaxed);
        (ok >= 50).then_some(ok)
    })
    .await;
    assert!(ok_before.is_some(), "workers made no progress");

    server.stop();
    let failing = eventually(RECOVERY, || async {
        (tally.failed.load(Ordering::Relaxed) >= 8).then_some(())
    })
    .await;
    assert!(failing.is_some(), "no call failed with the server down");

    server.restart().unwrap();
    let ok_at_restart = tally.ok.load(Ordering::Relaxed);
    let recovered = eventually(RECOVERY, || async {
        (tally.ok.load(Ordering::Relaxed) >= ok_at_restart + 50).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "the workers did not recover");

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a worker panicked");
    }
    let bad = std::mem::take(&mut *tally.bad.lock().unwrap());
    assert!(bad.is_empty(), "non-retryable errors: {bad:#?}");
    let slowest = Duration::from_millis(tally.slowest_ms.load(Ordering::Relaxed) as u64);
    assert!(slowest <= CALL_BOUND, "a call took {slowest:?}");

    // Acknowledged increments survived the crash (AOF, fsync always); a
    // failed one may or may not have applied (its reply was lost).
    let acked = tally.acked_increments.load(Ordering::Relaxed);
    let failed = tally.failed_increments.load(Ordering::Relaxed);
    let counter: usize = std::str::from_utf8(&store.get("ns", b"counter").await.unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (acked..=acked + failed).contains(&counter),
        "counter {counter}, acked {acked}, failed {failed}"
    );
    store.destroy().await.unwrap();
}
