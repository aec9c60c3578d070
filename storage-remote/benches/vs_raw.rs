//! The remote adapter beside raw `object_store` calls doing the same
//! work, same store, same run.
//!
//! ```sh
//! cargo bench -p storage-remote --bench vs_raw                  # BENCH_SECONDS=2 per side per row
//! BENCH_SECONDS=5 cargo bench -p storage-remote --bench vs_raw
//! ```
//!
//! Stores: object_store's `InMemory`, and S3 on a throwaway `moto_server`
//! (or `S3_ENDPOINT`, see `storage_remote::testing`). 1000 keys of
//! 100-byte values are preloaded. Workloads at concurrency 1 and 8 (tasks
//! sharing one store), each task on its own keys:
//!
//! - **get**: adapter `get` (one GET, record decoded) vs raw `get` +
//!   `bytes()` of the same object.
//! - **put**: adapter `put` (one unconditional PUT) vs raw `put` of the
//!   same encoded bytes.
//! - **cas**: adapter `get_versioned` + `put_if(Update)` vs raw `get` +
//!   `put_opts(PutMode::Update(etag))`. On S3 (content-hash ETags) the
//!   adapter's `Update` judges the token (expiry, tombstone ETag) without
//!   a read: two requests, like raw. On `InMemory` (ETags that count
//!   writes, which a caller could guess) it reads the key once more
//!   before its `If-Match` PUT: three requests to raw's two.
//!
//! Sides take turns in slices of about 250 ms until each had
//! `BENCH_SECONDS`, so background load hits both alike. Output: a
//! Markdown table of ops/s and adapter ÷ raw.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions as OsPutOptions, UpdateVersion,
};
use storage_core::{AtomicKv, KvStore, ManualClock, PutMode as Mode, PutOptions};
use storage_remote::testing::S3Server;
use storage_remote::RemoteStore;

const KEYS: usize = 1000;
const NS: &str = "bench";

type Op = Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; 100])
}

/// The object of key `i`, as the adapter lays it out (prefix-less store).
fn path(i: usize) -> Path {
    Path::parse(format!("{NS}/{}", storage_remote::keys::escape(&key(i)))).unwrap()
}

/// The adapter's record bytes for a value without expiry.
fn record(v: &Bytes) -> Bytes {
    let mut out = vec![1u8];
    out.extend_from_slice(v);
    Bytes::from(out)
}

async fn drive(op: &Op, conc: usize, budget: Duration, counter: &mut u64, next: &mut usize) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..conc {
        let op = op.clone();
        let base = *next;
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut i = base + t;
            while start.elapsed() < budget {
                // Task t only touches keys ≡ t (mod conc): CAS never conflicts.
                op(i % KEYS).await;
                i += conc;
                n += 1;
            }
            n
        }));
    }
    for h in handles {
        *counter += h.await.unwrap();
    }
    *next += 7 * conc;
}

async fn compare(a: &Op, b: &Op, conc: usize, seconds: f64) -> (f64, f64) {
    let slice = Duration::from_millis(250);
    let (mut na, mut nb, mut ta, mut tb) = (0u64, 0u64, 0f64, 0f64);
    let (mut ia, mut ib) = (0usize, 0usize);
    // Warm up.
    drive(a, conc, Duration::from_millis(100), &mut 0, &mut ia).await;
    drive(b, conc, Duration::from_millis(100), &mut 0, &mut ib).await;
    let mut round = 0;
    while ta < seconds || tb < seconds {
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for first in order {
            let t0 = Instant::now();
            if first {
                drive(a, conc, slice, &mut na, &mut ia).await;
                ta += t0.elapsed().as_secs_f64();
            } else {
                drive(b, conc, slice, &mut nb, &mut ib).await;
                tb += t0.elapsed().as_secs_f64();
            }
        }
        round += 1;
    }
    (na as f64 / ta, nb as f64 / tb)
}

async fn bench_store(label: &str, store: RemoteStore, seconds: f64, rows: &mut Vec<String>) {
    let raw: Arc<dyn ObjectStore> = store.object_store().clone();
    for i in 0..KEYS {
        store
            .put(NS, &key(i), value(), PutOptions::default())
            .await
            .unwrap();
    }
    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let cas: Arc<dyn AtomicKv> = Arc::new(store.clone());

    let adapter_get: Op = {
        let kv = kv.clone();
        Arc::new(move |i| {
            let kv = kv.clone();
            Box::pin(async move {
                kv.get(NS, &key(i)).await.unwrap().unwrap();
            })
        })
    };
    let raw_get: Op = {
        let raw = raw.clone();
        Arc::new(move |i| {
            let raw = raw.clone();
            Box::pin(async move {
                let b = raw.get(&path(i)).await.unwrap().bytes().await.unwrap();
                assert!(!b.is_empty());
            })
        })
    };
    let adapter_put: Op = {
        let kv = kv.clone();
        Arc::new(move |i| {
            let kv = kv.clone();
            Box::pin(async move {
                kv.put(NS, &key(i), value(), PutOptions::default())
                    .await
                    .unwrap();
            })
        })
    };
    let raw_put: Op = {
        let raw = raw.clone();
        Arc::new(move |i| {
            let raw = raw.clone();
            Box::pin(async move {
                raw.put(&path(i), record(&value()).into()).await.unwrap();
            })
        })
    };
    let adapter_cas: Op = {
        let cas = cas.clone();
        Arc::new(move |i| {
            let cas = cas.clone();
            Box::pin(async move {
                let k = key(i);
                let cur = cas.get_versioned(NS, &k).await.unwrap().unwrap();
                cas.put_if(
                    NS,
                    &k,
                    value(),
                    Mode::Update(cur.version),
                    PutOptions::default(),
                )
                .await
                .unwrap();
            })
        })
    };
    let raw_cas: Op = {
        let raw = raw.clone();
        Arc::new(move |i| {
            let raw = raw.clone();
            Box::pin(async move {
                let p = path(i);
                let got = raw.get(&p).await.unwrap();
                let e_tag = got.meta.e_tag.clone();
                let _ = got.bytes().await.unwrap();
                let mode = PutMode::Update(UpdateVersion {
                    e_tag,
                    version: None,
                });
                raw.put_opts(&p, record(&value()).into(), OsPutOptions::from(mode))
                    .await
                    .unwrap();
            })
        })
    };
    for (name, a, b) in [
        ("get", &adapter_get, &raw_get),
        ("put", &adapter_put, &raw_put),
        ("cas", &adapter_cas, &raw_cas),
    ] {
        for conc in [1, 8] {
            let (ra, rb) = compare(a, b, conc, seconds).await;
            let row = format!(
                "| {label} | {name} | {conc} | {ra:.0} | {rb:.0} | {:.2}× |",
                ra / rb
            );
            eprintln!("{row}");
            rows.push(row);
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let mut rows = Vec::new();
    let clock = Arc::new(ManualClock::default());
    bench_store(
        "InMemory",
        RemoteStore::in_memory(clock.clone()),
        seconds,
        &mut rows,
    )
    .await;
    let server = match S3Server::start() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let (store, bucket) = server.store("bench", clock).unwrap();
    bench_store("S3 (moto)", store, seconds, &mut rows).await;
    bucket.cleanup().await;
    println!();
    println!("| store | op | tasks | adapter ops/s | raw object_store ops/s | adapter ÷ raw |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}
