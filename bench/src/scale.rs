//! Scale curves: the latency of one 100-key scan page (random start) and
//! of one `receive` (1 message; the ack and a replacement send follow
//! untimed, so the size holds) with the store already holding 1k, 100k and
//! 1M entries / messages. Stores are filled through the adapter's own API
//! (`write_batch` / `send_batch`, several tasks at once); a step that
//! cannot be filled within the fill budget ends the curve at the size it
//! reached, which is still measured and reported. Beside memory and
//! remote-memory, the raw driver's own curve is measured the same way
//! ([`raw_curves`]).

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use bytes::Bytes;
use storage_core::{
    BatchOp, KvStore, PutOptions, QueueConfig, QueueStore, ReceiveOptions, ScanRequest, SendMessage,
};

use object_store::memory::InMemory;

use crate::kv::key_name;
use crate::measure::{mix, quantile};
use crate::raw::memory::{RawMap, RawQueue};
use crate::raw::object::RawObject;
use crate::results::{ScaleLimit, ScalePoint};

const NS: &str = "scale";
const QUEUE: &str = "scale-q";
/// Filling tasks at once.
const FILLERS: usize = 8;
/// Most samples per point, and the time they may take.
const SAMPLES: usize = 400;
const SAMPLE_TIME: Duration = Duration::from_secs(3);
/// Untimed samples before each point's timed ones (at most, and for at
/// most `WARMUP_TIME`).
const WARMUP: u64 = 20;
const WARMUP_TIME: Duration = Duration::from_millis(500);

/// Scan metric name.
pub const SCAN: &str = "scan page (100)";
/// Receive metric name.
pub const RECEIVE: &str = "receive (1)";

/// The steps up to `max`.
pub fn steps(max: u64) -> Vec<u64> {
    let mut s: Vec<u64> = [1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    if s.last() != Some(&max) && max < 1_000_000 && s.iter().all(|&n| n != max) {
        s.push(max);
    }
    s
}

/// Runs `chunks` (start, end) of work on [`FILLERS`] tasks until done or
/// `deadline`; returns the index up to which everything was written.
async fn fill<F, Fut>(from: u64, to: u64, chunk: u64, deadline: Instant, f: F) -> Result<u64>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let mut at = from;
    while at < to {
        if Instant::now() > deadline {
            return Ok(at);
        }
        let mut tasks = Vec::new();
        for _ in 0..FILLERS {
            if at >= to {
                break;
            }
            let end = (at + chunk).min(to);
            let f = f.clone();
            tasks.push(tokio::spawn(async move { f(at, end).await }));
            at = end;
        }
        for t in tasks {
            t.await.context("fill task panicked")??;
        }
    }
    Ok(at)
}

fn point(backend: &str, metric: &str, size: u64, mut lat: Vec<f64>) -> ScalePoint {
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    ScalePoint {
        backend: backend.into(),
        metric: metric.into(),
        size,
        samples: lat.len(),
        p50_us: quantile(&mut lat, 0.5),
        mean_us: mean,
        p99_us: quantile(&mut lat, 0.99),
    }
}

/// Runs one curve: for each size in [`steps`] up to `max`, grows the store
/// with `fill` (chunks of `chunk`, [`FILLERS`] at once, within the fill
/// budget), then takes up to [`SAMPLES`] samples; `sample(i, reached)`
/// does one and returns the time of the part that is measured. A step
/// that cannot be filled in time ends the curve at the size reached.
#[allow(clippy::too_many_arguments)]
async fn curve<F, Fut, S, SFut>(
    backend: &str,
    metric: &str,
    max: u64,
    chunk: u64,
    fill_budget: Duration,
    fill_fn: F,
    mut sample: S,
    out: &mut Curves<'_>,
) -> Result<()>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    S: FnMut(u64, u64) -> SFut,
    SFut: std::future::Future<Output = Result<Duration>>,
{
    let fill_fn = Arc::new(fill_fn);
    let mut filled = 0;
    for size in steps(max) {
        eprintln!("scale {backend} {metric} at {size}");
        let f = fill_fn.clone();
        let reached = fill(
            filled,
            size,
            chunk,
            Instant::now() + fill_budget,
            move |a, b| f(a, b),
        )
        .await
        .with_context(|| format!("filling {backend} to {size}"))?;
        filled = reached;
        // Warm up (caches, lazily built state) before the timed samples.
        let mut i = 0u64;
        let warm = Instant::now();
        while i < WARMUP && warm.elapsed() < WARMUP_TIME {
            sample(i, reached).await?;
            i += 1;
        }
        let mut lat = Vec::new();
        let start = Instant::now();
        while lat.len() < SAMPLES && start.elapsed() < SAMPLE_TIME {
            let took = sample(i, reached).await?;
            i += 1;
            lat.push(took.as_secs_f64() * 1e6);
        }
        out.points.push(point(backend, metric, reached, lat));
        if reached < size {
            out.limits.push(ScaleLimit {
                backend: backend.into(),
                metric: metric.into(),
                reached,
                reason: format!(
                    "filling to {size} did not finish within the {} s fill budget",
                    fill_budget.as_secs()
                ),
            });
            break;
        }
    }
    Ok(())
}

/// Where curves go.
pub struct Curves<'a> {
    /// Points measured.
    pub points: &'a mut Vec<ScalePoint>,
    /// Curves that stopped early.
    pub limits: &'a mut Vec<ScaleLimit>,
}

/// The start key of scan sample `i` in a store of `reached` keys.
fn start_key(i: u64, reached: u64) -> Bytes {
    Bytes::from(key_name(mix(i) % reached.max(1)))
}

fn value() -> Bytes {
    Bytes::from(vec![b's'; 100])
}

fn body() -> Bytes {
    Bytes::from(vec![b'q'; 100])
}

/// The scan curve of one KV store.
pub async fn scan_curve(
    backend: &str,
    kv: Arc<dyn KvStore>,
    max: u64,
    fill_budget: Duration,
    out: &mut Curves<'_>,
) -> Result<()> {
    let kv2 = kv.clone();
    let fill_fn = move |a: u64, b: u64| {
        let (kv, v) = (kv2.clone(), value());
        async move {
            let ops = (a..b)
                .map(|i| BatchOp::Put {
                    key: Bytes::from(key_name(i)),
                    value: v.clone(),
                    options: PutOptions::default(),
                })
                .collect();
            kv.write_batch(NS, ops).await?;
            Ok(())
        }
    };
    let sample = |i, reached| {
        let kv = kv.clone();
        async move {
            let req = ScanRequest {
                start: Bound::Included(start_key(i, reached)),
                ..ScanRequest::all()
            }
            .with_limit(100);
            let t = Instant::now();
            let page = kv.scan(NS, req).await?;
            let took = t.elapsed();
            ensure!(!page.entries.is_empty(), "scale scan returned nothing");
            Ok(took)
        }
    };
    curve(backend, SCAN, max, 100, fill_budget, fill_fn, sample, out).await
}

/// The receive curve of one queue store.
pub async fn receive_curve(
    backend: &str,
    q: Arc<dyn QueueStore>,
    max: u64,
    fill_budget: Duration,
    out: &mut Curves<'_>,
) -> Result<()> {
    q.create_queue(QUEUE, QueueConfig::default()).await?;
    let q2 = q.clone();
    let fill_fn = move |a: u64, z: u64| {
        let (q, b) = (q2.clone(), body());
        async move {
            let msgs = (a..z).map(|_| SendMessage::new(b.clone())).collect();
            q.send_batch(QUEUE, msgs).await?;
            Ok(())
        }
    };
    let sample = |_, _| {
        let q = q.clone();
        async move {
            let t = Instant::now();
            let got = q.receive(QUEUE, ReceiveOptions::default()).await?;
            let took = t.elapsed();
            let m = got.first().context("scale receive returned nothing")?;
            q.ack(QUEUE, &m.receipt).await?;
            q.send_batch(QUEUE, vec![SendMessage::new(body())]).await?;
            Ok(took)
        }
    };
    curve(backend, RECEIVE, max, 10, fill_budget, fill_fn, sample, out).await
}

/// The label of a raw driver's curve beside `backend`'s.
pub fn raw_label(backend: &str, driver: &str) -> String {
    format!("{backend}{RAW_MARK}{driver}")
}

/// What separates a backend from its raw driver in a curve's label.
pub const RAW_MARK: &str = " · raw ";

/// The raw drivers' own curves, measured exactly like the adapters' (same
/// keys, values, starts and sizes), for the backends whose raw driver has
/// a curve to compare with: `RwLock<BTreeMap>` and the `Mutex` queue
/// beside memory, object_store's `InMemory` beside remote-memory. They
/// show how much of an adapter's growth the data structure underneath
/// (and the machine's caches) already has.
pub async fn raw_curves(
    backend: &str,
    max: u64,
    fill_budget: Duration,
    out: &mut Curves<'_>,
) -> Result<()> {
    match backend {
        "memory" => {
            let map = Arc::new(RawMap::default());
            let m2 = map.clone();
            let fill_fn = move |a: u64, b: u64| {
                let m = m2.clone();
                async move {
                    m.insert_all(NS, (a..b).map(|i| Bytes::from(key_name(i))), &value());
                    Ok(())
                }
            };
            let sample = |i, reached| {
                let map = map.clone();
                async move {
                    let start = start_key(i, reached);
                    let t = Instant::now();
                    let page = map.page_from(NS, &start, 101);
                    let took = t.elapsed();
                    ensure!(!page.is_empty(), "raw scan returned nothing");
                    Ok(took)
                }
            };
            let label = raw_label(backend, "RwLock<BTreeMap>");
            curve(&label, SCAN, max, 100, fill_budget, fill_fn, sample, out).await?;

            let q = Arc::new(RawQueue::default());
            let q2 = q.clone();
            let fill_fn = move |a: u64, z: u64| {
                let q = q2.clone();
                async move {
                    q.send(&vec![body(); (z - a) as usize]);
                    Ok(())
                }
            };
            let one = [body()];
            let sample = |_, _| {
                let q = q.clone();
                let one = one.clone();
                async move {
                    let t = Instant::now();
                    let got = q.receive(1);
                    let took = t.elapsed();
                    let (id, count, _) = got.first().context("raw receive returned nothing")?;
                    ensure!(q.ack(*id, *count), "raw ack refused");
                    q.send(&one);
                    Ok(took)
                }
            };
            let label = raw_label(backend, "Mutex<VecDeque>");
            curve(&label, RECEIVE, max, 10, fill_budget, fill_fn, sample, out).await
        }
        "remote-memory" => {
            let raw = Arc::new(RawObject::new(Arc::new(InMemory::new()), "InMemory"));
            let r2 = raw.clone();
            let fill_fn = move |a: u64, b: u64| {
                let r = r2.clone();
                async move {
                    r.put_all((a..b).map(|i| Bytes::from(key_name(i))), value())
                        .await
                }
            };
            let sample = |i, reached| {
                let raw = raw.clone();
                async move {
                    let start = start_key(i, reached);
                    let t = Instant::now();
                    let read = raw.page_from(&start).await?;
                    let took = t.elapsed();
                    ensure!(read > 0, "raw scan returned nothing");
                    Ok(took)
                }
            };
            let label = raw_label(backend, "object_store InMemory");
            curve(&label, SCAN, max, 100, fill_budget, fill_fn, sample, out).await
        }
        _ => Ok(()),
    }
}
