//! Scale curve of the Redis backend: the latency of a 100-key scan page
//! and of a 10-message receive (standard and FIFO) with 1k, 100k and 1M
//! keys / messages already stored. The contract is O(page + log n) and
//! O(batch + log n): the 1M / 1k ratio should stay near 1.
//!
//! `cargo bench -p storage-redis --bench scale` (a throwaway
//! `redis-server` on a free loopback port; `SCALE_MAX` caps the largest
//! size, `SCALE_SAMPLES` sets the timed operations per point, default 400).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use storage_core::{
    BatchOp, KvStore, ManualClock, PutOptions, QueueConfig, QueueStore, ReceiveOptions,
    ScanRequest, SendMessage,
};
use storage_redis::testing::RedisServer;
use storage_redis::{RedisConfig, RedisStore};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{:010}", i.wrapping_mul(7919) % 1_000_000_007))
}

/// A cheap deterministic pseudo-random sequence (no RNG dependency).
fn pick(i: usize, n: usize) -> usize {
    i.wrapping_mul(2_654_435_761) % n
}

/// Runs `f` over `items` with 64 tasks at a time.
async fn fill<T, F, Fut>(items: Vec<T>, f: F)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let queue = Arc::new(std::sync::Mutex::new(items));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (f, queue) = (f.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let item = queue.lock().unwrap().pop();
                match item {
                    Some(item) => f(item).await,
                    None => return,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn grow_kv(store: &RedisStore, from: usize, to: usize) {
    let chunks: Vec<Vec<usize>> = (from..to)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[usize]>::to_vec)
        .collect();
    let s = store.clone();
    fill(chunks, move |chunk| {
        let s = s.clone();
        async move {
            let ops = chunk
                .into_iter()
                .map(|i| BatchOp::Put {
                    key: key(i),
                    value: Bytes::from_static(&[7u8; 100]),
                    options: PutOptions::default(),
                })
                .collect();
            s.write_batch("scale", ops).await.unwrap();
        }
    })
    .await;
}

async fn grow_queue(store: &RedisStore, queue: &'static str, fifo: bool, from: usize, to: usize) {
    let chunks: Vec<Vec<usize>> = (from..to)
        .collect::<Vec<_>>()
        .chunks(10)
        .map(<[usize]>::to_vec)
        .collect();
    let s = store.clone();
    fill(chunks, move |chunk| {
        let s = s.clone();
        async move {
            let batch = chunk.into_iter().map(|i| message(fifo, i)).collect();
            s.send_batch(queue, batch).await.unwrap();
        }
    })
    .await;
}

fn message(fifo: bool, i: usize) -> SendMessage {
    let m = SendMessage::new(Bytes::from_static(&[7u8; 100]));
    if fifo {
        m.group(format!("g{}", i % 1000)).dedup(format!("d{i}"))
    } else {
        m
    }
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

async fn scan_latency(store: &RedisStore, n: usize, samples: usize) -> f64 {
    let mut total = Duration::ZERO;
    for i in 0..samples {
        let start = key(pick(i, n));
        let req = ScanRequest {
            start: std::ops::Bound::Included(start),
            ..ScanRequest::all()
        }
        .with_limit(100);
        let t = Instant::now();
        let page = store.scan("scale", req).await.unwrap();
        total += t.elapsed();
        std::hint::black_box(page);
    }
    micros(total, samples)
}

/// Receive latency; each received batch is acked and replaced (untimed),
/// so the queue keeps its size.
async fn receive_latency(
    store: &RedisStore,
    queue: &str,
    fifo: bool,
    samples: usize,
    next: &mut usize,
) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..samples {
        let t = Instant::now();
        let got = store
            .receive(queue, ReceiveOptions::batch(10))
            .await
            .unwrap();
        total += t.elapsed();
        assert!(!got.is_empty(), "the queue ran dry");
        for m in &got {
            store.ack(queue, &m.receipt).await.unwrap();
        }
        let refill = (0..got.len())
            .map(|_| {
                *next += 1;
                message(fifo, *next)
            })
            .collect();
        store.send_batch(queue, refill).await.unwrap();
    }
    micros(total, samples)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let max = env("SCALE_MAX", 1_000_000);
    let samples = env("SCALE_SAMPLES", 400);
    let server = RedisServer::spawn(&[]).expect("redis-server");
    let clock = ManualClock::at_fixed_start();
    let store = RedisStore::connect_with_clock(
        RedisConfig::standalone(server.url(), "scale"),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    store
        .create_queue("std", QueueConfig::default())
        .await
        .unwrap();
    store
        .create_queue("fifo.fifo", QueueConfig::fifo())
        .await
        .unwrap();
    let sizes: Vec<usize> = [1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max)
        .collect();
    println!("| stored | scan page (100) µs | receive (10) µs, standard | receive (10) µs, FIFO (1000 groups) |");
    println!("|---:|---:|---:|---:|");
    let (mut have, mut next) = (0, 10_000_000);
    let mut rows = Vec::new();
    for n in sizes {
        grow_kv(&store, have, n).await;
        grow_queue(&store, "std", false, have, n).await;
        grow_queue(&store, "fifo.fifo", true, have, n).await;
        have = n;
        // Every message past its dedup window is forgotten, as over time.
        clock.advance(Duration::from_secs(301));
        let scan = scan_latency(&store, n, samples).await;
        let std = receive_latency(&store, "std", false, samples, &mut next).await;
        let fifo = receive_latency(&store, "fifo.fifo", true, samples, &mut next).await;
        println!("| {n} | {scan:.1} | {std:.1} | {fifo:.1} |");
        rows.push((n, scan, std, fifo));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        println!(
            "\nratio {} / {}: scan {:.2}, receive standard {:.2}, receive FIFO {:.2}",
            last.0,
            first.0,
            last.1 / first.1,
            last.2 / first.2,
            last.3 / first.3
        );
    }
    store.destroy().await.unwrap();
}
