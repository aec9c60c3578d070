//! The measurement engine: sides take turns in slices, rounds rotate the
//! order, each side's figure is the median over rounds.
//!
//! A side is either an async operation run by `c` tasks at once on the
//! runtime (adapter, raw driver, peer library) or an external command
//! that reports its own rate for a slice (`redis-benchmark`). Keys and
//! values are precomputed by the caller; the operation only indexes them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// The boxed future of one operation.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// One operation: called with (task index, per-task sequence number).
pub type Op = Arc<dyn Fn(usize, u64) -> OpFuture + Send + Sync>;

/// An external measurement: given (slice length, concurrency), runs for
/// about that long and returns operations per second.
pub type External = Arc<dyn Fn(Duration, usize) -> Result<f64> + Send + Sync>;

/// Wraps a closure returning a future into an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |t, n| Box::pin(f(t, n)))
}

/// How a side does its work.
#[derive(Clone)]
pub enum Work {
    /// An in-process operation.
    Op(Op),
    /// An external process.
    External(External),
}

/// One contender of a comparison.
#[derive(Clone)]
pub struct Side {
    /// Shown in the report (e.g. "adapter", "rusqlite", "opendal").
    pub name: String,
    /// What it runs.
    pub work: Work,
}

impl Side {
    /// A side running an in-process operation.
    pub fn op(name: impl Into<String>, op: Op) -> Side {
        Side {
            name: name.into(),
            work: Work::Op(op),
        }
    }
}

/// Timing parameters of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds; each side runs one slice per round.
    pub rounds: usize,
    /// Length of one slice.
    pub slice: Duration,
    /// Tasks (or client connections) running at once.
    pub concurrency: usize,
}

/// Each side's median ops/s over the rounds, in the order given.
pub async fn compare(sides: &[Side], plan: Plan) -> Result<Vec<f64>> {
    // Warm up: a short slice each, not counted.
    let warm = (plan.slice / 5).min(Duration::from_millis(100));
    let seq = Arc::new(AtomicU64::new(0));
    for side in sides {
        run_slice(side, warm, plan.concurrency, &seq)
            .await
            .with_context(|| format!("warm-up of {}", side.name))?;
    }
    let mut rates = vec![Vec::with_capacity(plan.rounds); sides.len()];
    for round in 0..plan.rounds {
        for turn in 0..sides.len() {
            let i = (round + turn) % sides.len();
            let rate = run_slice(&sides[i], plan.slice, plan.concurrency, &seq)
                .await
                .with_context(|| format!("{} (round {round})", sides[i].name))?;
            rates[i].push(rate);
        }
    }
    Ok(rates.into_iter().map(median).collect())
}

/// Median of a sample (mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// Quantile `q` (0..=1) of a sample, nearest rank.
pub fn quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let rank = ((xs.len() - 1) as f64 * q).round() as usize;
    xs[rank.min(xs.len() - 1)]
}

/// A slice that overruns its length by this much has hung.
const GRACE: Duration = Duration::from_secs(60);

async fn run_slice(side: &Side, dur: Duration, conc: usize, seq: &Arc<AtomicU64>) -> Result<f64> {
    tokio::time::timeout(dur * 4 + GRACE, run_slice_inner(side, dur, conc, seq))
        .await
        .map_err(|_| anyhow::anyhow!("{} did not finish its slice", side.name))?
}

async fn run_slice_inner(
    side: &Side,
    dur: Duration,
    conc: usize,
    seq: &Arc<AtomicU64>,
) -> Result<f64> {
    match &side.work {
        Work::External(ext) => {
            let ext = ext.clone();
            tokio::task::spawn_blocking(move || ext(dur, conc))
                .await
                .context("external side panicked")?
        }
        Work::Op(op) => {
            let start = Instant::now();
            let deadline = start + dur;
            // Every slice continues the sequence, so no two slices replay
            // exactly the same keys (caches stay honest).
            let base = seq.fetch_add(1 << 32, Ordering::Relaxed);
            let mut tasks = Vec::with_capacity(conc);
            for t in 0..conc {
                let op = op.clone();
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        op(t, base + n).await?;
                        n += 1;
                    }
                    Ok::<u64, anyhow::Error>(n)
                }));
            }
            let mut total = 0u64;
            for task in tasks {
                total += task.await.context("benchmark task panicked")??;
            }
            Ok(total as f64 / start.elapsed().as_secs_f64())
        }
    }
}

/// A cheap deterministic mixer (SplitMix64): the same index sequence for
/// every side.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
