//! The memory backend beside a raw `RwLock<BTreeMap>` / `Mutex<VecDeque>`
//! doing the same work, in the same run. Prints a Markdown table of ops/s
//! and the ratio (adapter / raw).
//!
//! `cargo bench -p storage-memory --bench vs_raw` (set `BENCH_SECONDS` to
//! change the time per measurement; default 2).

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use storage_core::{
    KvStore, PutOptions, QueueConfig, QueueStore, QueueStoreExt, ReceiveOptions, ScanRequest,
    SendMessage,
};
use storage_memory::MemoryStore;

const KEYS: u64 = 10_000;
const VALUE: usize = 100;

/// Keys are built once, outside the timed loops, so only the store
/// operation is measured.
fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("key-{:010}", i * 7919 % KEYS)))
        .collect()
}

/// A cheap deterministic index sequence (LCG), identical for both sides.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % KEYS
    }
}

/// Runs `op` in batches until `budget` elapses; returns ops per second.
async fn measure<F, Fut>(budget: Duration, mut op: F) -> f64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up.
    for i in 0..1_000 {
        op(i).await;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            op(n).await;
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Row {
    workload: &'static str,
    adapter: f64,
    raw: f64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let budget = Duration::from_secs(secs);
    let value = Bytes::from(vec![7u8; VALUE]);
    let keys = keys();
    let key = |i: u64| keys[i as usize].clone();
    let mut rows = Vec::new();

    // Adapter under test, used the way an emulator holds it: Arc<dyn KvStore>.
    let store = MemoryStore::new();
    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let raw: Arc<RwLock<BTreeMap<String, BTreeMap<Bytes, Bytes>>>> = Arc::default();
    for i in 0..KEYS {
        kv.put("bench", &key(i), value.clone(), PutOptions::default())
            .await
            .unwrap();
        raw.write()
            .entry("bench".to_owned())
            .or_default()
            .insert(key(i), value.clone());
    }

    let mut rng = Lcg(1);
    let adapter = measure(budget, |_| {
        let k = key(rng.next());
        let kv = kv.clone();
        async move {
            black_box(kv.get("bench", &k).await.unwrap());
        }
    })
    .await;
    let mut rng = Lcg(1);
    let rawr = measure(budget, |_| {
        let k = key(rng.next());
        let raw = raw.clone();
        async move {
            black_box(raw.read().get("bench").and_then(|m| m.get(&k)).cloned());
        }
    })
    .await;
    rows.push(Row {
        workload: "kv get (100 B, 10k keys)",
        adapter,
        raw: rawr,
    });

    let mut rng = Lcg(2);
    let adapter = measure(budget, |_| {
        let k = key(rng.next());
        let (kv, v) = (kv.clone(), value.clone());
        async move {
            kv.put("bench", &k, v, PutOptions::default()).await.unwrap();
        }
    })
    .await;
    let mut rng = Lcg(2);
    let rawr = measure(budget, |_| {
        let k = key(rng.next());
        let (raw, v) = (raw.clone(), value.clone());
        async move {
            raw.write()
                .entry("bench".to_owned())
                .or_default()
                .insert(k, v);
        }
    })
    .await;
    rows.push(Row {
        workload: "kv put (100 B, overwrite)",
        adapter,
        raw: rawr,
    });

    let mut rng = Lcg(3);
    let adapter = measure(budget, |_| {
        let k = key(rng.next());
        let kv = kv.clone();
        async move {
            let req = ScanRequest {
                start: std::ops::Bound::Included(k),
                ..ScanRequest::all()
            }
            .with_limit(100);
            black_box(kv.scan("bench", req).await.unwrap());
        }
    })
    .await;
    let mut rng = Lcg(3);
    let rawr = measure(budget, |_| {
        let k = key(rng.next());
        let raw = raw.clone();
        async move {
            let g = raw.read();
            let page: Vec<(Bytes, Bytes)> = g
                .get("bench")
                .map(|m| {
                    m.range(k..)
                        .take(101)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            black_box(page);
        }
    })
    .await;
    rows.push(Row {
        workload: "kv scan page (100 keys)",
        adapter,
        raw: rawr,
    });

    // Queue: send -> receive -> ack, one message at a time.
    let q: Arc<dyn QueueStore> = Arc::new(store.clone());
    q.create_queue("bench", QueueConfig::default())
        .await
        .unwrap();
    let adapter = measure(budget, |_| {
        let (q, v) = (q.clone(), value.clone());
        async move {
            q.send("bench", SendMessage::new(v)).await.unwrap();
            let got = q.receive("bench", ReceiveOptions::default()).await.unwrap();
            q.ack("bench", &got[0].receipt).await.unwrap();
        }
    })
    .await;
    // The raw side does the same bookkeeping a queue must: an id per
    // message, a visibility deadline from the clock, a receive count, and a
    // receipt check on ack.
    struct RawMsg {
        body: Bytes,
        receive_count: u32,
        visible_at: u64,
    }
    #[derive(Default)]
    struct RawQueue {
        ready: VecDeque<u64>,
        messages: HashMap<u64, RawMsg>,
        next: u64,
    }
    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }
    let rq = Arc::new(Mutex::new(RawQueue::default()));
    let rawr = measure(budget, |_| {
        let (rq, v) = (rq.clone(), value.clone());
        async move {
            let sent_at = now_ms();
            {
                let mut g = rq.lock();
                let id = g.next;
                g.next += 1;
                g.messages.insert(
                    id,
                    RawMsg {
                        body: v,
                        receive_count: 0,
                        visible_at: sent_at,
                    },
                );
                g.ready.push_back(id);
            }
            let (id, count, body) = {
                let now = now_ms();
                let mut g = rq.lock();
                let id = g.ready.pop_front().unwrap();
                let m = g.messages.get_mut(&id).unwrap();
                m.receive_count += 1;
                m.visible_at = now + 30_000;
                (id, m.receive_count, m.body.clone())
            };
            black_box(body);
            let mut g = rq.lock();
            if g.messages
                .get(&id)
                .is_some_and(|m| m.receive_count == count)
            {
                g.messages.remove(&id);
            }
        }
    })
    .await;
    rows.push(Row {
        workload: "queue send→receive→ack",
        adapter,
        raw: rawr,
    });

    println!("| workload | storage-memory ops/s | raw ops/s | ratio (target ≥ 0.5) |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            r.workload,
            r.adapter,
            r.raw,
            r.adapter / r.raw
        );
    }
}
