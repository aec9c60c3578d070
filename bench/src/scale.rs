//! Scale curves: the latency of one 100-key scan page (random start) and
//! of one `receive` (1 message; the ack and a replacement send follow
//! untimed, so the size holds) with the store already holding 1k, 100k and
//! 1M entries / messages. Stores are filled through the adapter's own API
//! (`write_batch` / `send_batch`, several tasks at once); a step that
//! cannot be filled within the fill budget ends the curve at the size it
//! reached, which is still measured and reported.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use bytes::Bytes;
use storage_core::{
    BatchOp, KvStore, PutOptions, QueueConfig, QueueStore, ReceiveOptions, ScanRequest, SendMessage,
};

use crate::kv::key_name;
use crate::measure::{mix, quantile};
use crate::results::{ScaleLimit, ScalePoint};

const NS: &str = "scale";
const QUEUE: &str = "scale-q";
/// Filling tasks at once.
const FILLERS: usize = 8;
/// Most samples per point, and the time they may take.
const SAMPLES: usize = 400;
const SAMPLE_TIME: Duration = Duration::from_secs(3);

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

/// The scan curve of one KV store.
pub async fn scan_curve(
    backend: &str,
    kv: Arc<dyn KvStore>,
    max: u64,
    fill_budget: Duration,
    points: &mut Vec<ScalePoint>,
    limits: &mut Vec<ScaleLimit>,
) -> Result<()> {
    let value = Bytes::from(vec![b's'; 100]);
    let mut filled = 0;
    for size in steps(max) {
        eprintln!("scale {backend} scan at {size}");
        let kv2 = kv.clone();
        let v = value.clone();
        let reached = fill(
            filled,
            size,
            100,
            Instant::now() + fill_budget,
            move |a, b| {
                let (kv, v) = (kv2.clone(), v.clone());
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
            },
        )
        .await
        .with_context(|| format!("filling {backend} to {size}"))?;
        filled = reached;
        let mut lat = Vec::new();
        let start = Instant::now();
        let mut i = 0u64;
        while lat.len() < SAMPLES && start.elapsed() < SAMPLE_TIME {
            let k = Bytes::from(key_name(mix(i) % reached.max(1)));
            i += 1;
            let req = ScanRequest {
                start: Bound::Included(k),
                ..ScanRequest::all()
            }
            .with_limit(100);
            let t = Instant::now();
            let page = kv.scan(NS, req).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            ensure!(!page.entries.is_empty(), "scale scan returned nothing");
        }
        points.push(point(backend, SCAN, reached, lat));
        if reached < size {
            limits.push(ScaleLimit {
                backend: backend.into(),
                metric: SCAN.into(),
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

/// The receive curve of one queue store.
pub async fn receive_curve(
    backend: &str,
    q: Arc<dyn QueueStore>,
    max: u64,
    fill_budget: Duration,
    points: &mut Vec<ScalePoint>,
    limits: &mut Vec<ScaleLimit>,
) -> Result<()> {
    q.create_queue(QUEUE, QueueConfig::default()).await?;
    let body = Bytes::from(vec![b'q'; 100]);
    let mut filled = 0;
    for size in steps(max) {
        eprintln!("scale {backend} receive at {size}");
        let q2 = q.clone();
        let b = body.clone();
        let reached = fill(
            filled,
            size,
            10,
            Instant::now() + fill_budget,
            move |a, z| {
                let (q, b) = (q2.clone(), b.clone());
                async move {
                    let msgs = (a..z).map(|_| SendMessage::new(b.clone())).collect();
                    q.send_batch(QUEUE, msgs).await?;
                    Ok(())
                }
            },
        )
        .await
        .with_context(|| format!("filling {backend} queue to {size}"))?;
        filled = reached;
        let mut lat = Vec::new();
        let start = Instant::now();
        while lat.len() < SAMPLES && start.elapsed() < SAMPLE_TIME {
            let t = Instant::now();
            let got = q.receive(QUEUE, ReceiveOptions::default()).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            let m = got.first().context("scale receive returned nothing")?;
            q.ack(QUEUE, &m.receipt).await?;
            q.send_batch(QUEUE, vec![SendMessage::new(body.clone())])
                .await?;
        }
        points.push(point(backend, RECEIVE, reached, lat));
        if reached < size {
            limits.push(ScaleLimit {
                backend: backend.into(),
                metric: RECEIVE.into(),
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
