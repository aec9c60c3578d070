//! Queue workloads: send → receive → ack, single and batches of 10, and
//! FIFO (100 groups); concurrency 1 and 16 tasks, each task a producer
//! and a consumer. The adapter through `Arc<dyn QueueStore>` beside each
//! comparator of its backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{QueueConfig, QueueStore, ReceiveOptions, SendMessage};

use crate::measure::{self, op, Op, Plan, Side};
use crate::results::{Results, Row};

/// The standard queue every side uses.
pub const QUEUE: &str = "bench-q";
/// The FIFO queue.
pub const FIFO: &str = "bench-fifo.fifo";
/// Message groups of the FIFO workload.
pub const GROUPS: u64 = 100;
/// Source of FIFO dedup ids.
static DEDUP: AtomicU64 = AtomicU64::new(0);
/// Receive attempts before a cycle gives up (another task may have taken
/// the message this task sent; a later attempt finds another one).
const ATTEMPTS: usize = 10_000;

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// One message.
    Single,
    /// `send_batch` of 10, receive up to 10 until 10 arrived, 10 acks.
    Batch,
    /// One message to a FIFO queue, group = sequence mod 100.
    Fifo,
}

impl Work {
    /// Every workload, in report order.
    pub const ALL: [Work; 3] = [Work::Single, Work::Batch, Work::Fifo];

    /// Messages per cycle.
    pub fn size(self) -> usize {
        if self == Work::Batch {
            10
        } else {
            1
        }
    }

    fn label(self) -> &'static str {
        match self {
            Work::Single => "send → receive → ack (1 msg), cycles/s",
            Work::Batch => "send 10 → receive 10 → 10 acks, cycles/s",
            Work::Fifo => "FIFO (100 groups) send → receive → ack, cycles/s",
        }
    }
}

/// A comparator of the adapter on the queue workloads.
#[async_trait]
pub trait Comparator: Send + Sync {
    /// Name in the report.
    fn name(&self) -> String;
    /// Target for a workload (`None`: reported only).
    fn target(&self, work: Work) -> Option<f64>;
    /// Gets ready for `conc` tasks.
    async fn setup(&self, conc: usize) -> Result<()>;
    /// The operation (one cycle), or `None`.
    fn op(self: Arc<Self>, work: Work, body: Bytes) -> Option<Op>;
}

/// Creates the adapter's queues.
pub async fn setup_adapter(q: &Arc<dyn QueueStore>) -> Result<()> {
    q.create_queue(QUEUE, QueueConfig::default())
        .await
        .context("creating the standard queue")?;
    if q.capabilities().queue_fifo {
        q.create_queue(FIFO, QueueConfig::fifo())
            .await
            .context("creating the FIFO queue")?;
    }
    Ok(())
}

/// The adapter's cycle.
pub fn adapter_op(q: &Arc<dyn QueueStore>, work: Work, body: Bytes) -> Option<Op> {
    if work == Work::Fifo && !q.capabilities().queue_fifo {
        return None;
    }
    let q = q.clone();
    Some(op(move |t, n| {
        let (q, body) = (q.clone(), body.clone());
        async move {
            let (name, msgs) = match work {
                Work::Single => (QUEUE, vec![SendMessage::new(body)]),
                Work::Batch => (
                    QUEUE,
                    (0..10).map(|_| SendMessage::new(body.clone())).collect(),
                ),
                Work::Fifo => {
                    let g = (n.wrapping_mul(31) + t as u64) % GROUPS;
                    // Dedup ids unique across the whole run (the dedup
                    // window outlasts a row).
                    let id = DEDUP.fetch_add(1, Ordering::Relaxed);
                    let m = SendMessage::new(body)
                        .group(format!("g{g}"))
                        .dedup(format!("d{id}"));
                    (FIFO, vec![m])
                }
            };
            let want = msgs.len();
            q.send_batch(name, msgs).await?;
            let mut got = 0;
            for _ in 0..ATTEMPTS {
                let ms = q.receive(name, ReceiveOptions::batch(want - got)).await?;
                for m in &ms {
                    q.ack(name, &m.receipt).await?;
                }
                got += ms.len();
                if got >= want {
                    return Ok(());
                }
                tokio::task::yield_now().await;
            }
            bail!("received {got} of {want} messages")
        }
    }))
}

/// One backend's queue rows.
pub async fn run_backend(
    backend: &str,
    adapter: Arc<dyn QueueStore>,
    comparators: Vec<Arc<dyn Comparator>>,
    plan: Plan,
    concurrencies: &[usize],
    res: &mut Results,
) -> Result<()> {
    let (rows, problems) = (&mut res.rows, &mut res.problems);
    setup_adapter(&adapter).await?;
    let body = Bytes::from(vec![b'm'; 100]);
    for &conc in concurrencies {
        let mut live = Vec::new();
        for c in &comparators {
            match c.setup(conc).await {
                Ok(()) => live.push(c.clone()),
                Err(e) => {
                    problems.push(format!("{backend} queue {}: setup failed: {e:#}", c.name()))
                }
            }
        }
        for work in Work::ALL {
            let Some(a) = adapter_op(&adapter, work, body.clone()) else {
                continue;
            };
            let mut sides = vec![Side::op("adapter", a)];
            let mut used = Vec::new();
            for c in &live {
                if let Some(o) = c.clone().op(work, body.clone()) {
                    sides.push(Side::op(c.name(), o));
                    used.push(c.clone());
                }
            }
            eprintln!("queue {backend} {:?} c={conc}", work);
            let plan = Plan {
                concurrency: conc,
                ..plan
            };
            match measure::compare(&sides, plan).await {
                Ok(rates) => {
                    for (c, rate) in used.iter().zip(&rates[1..]) {
                        rows.push(Row {
                            group: "Queue".into(),
                            workload: work.label().into(),
                            backend: backend.into(),
                            concurrency: conc,
                            adapter: rates[0],
                            comparator: c.name(),
                            comparator_ops: *rate,
                            target: c.target(work),
                        });
                    }
                }
                Err(e) => problems.push(format!("{backend} queue {work:?} c={conc}: {e:#}")),
            }
        }
    }
    Ok(())
}

/// Another `QueueStore` run through the adapter's own cycle
/// ([`adapter_op`]): context beside the adapter, no target (see
/// `raw/floor.rs`).
pub struct Through {
    /// Name in the report.
    pub name: String,
    /// The store.
    pub store: Arc<dyn QueueStore>,
}

#[async_trait]
impl Comparator for Through {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn target(&self, _work: Work) -> Option<f64> {
        None
    }
    async fn setup(&self, _conc: usize) -> Result<()> {
        setup_adapter(&self.store).await
    }
    fn op(self: Arc<Self>, work: Work, body: Bytes) -> Option<Op> {
        adapter_op(&self.store, work, body)
    }
}

/// Raw comparators: the same cycle on a raw queue (`send` then `take`
/// closures over the backend's raw driver; `take` receives and acks up to
/// `k` and returns how many). FIFO runs the raw standard queue (no raw
/// queue here keeps groups), so it is reported only.
pub struct Raw<S, T> {
    /// Name in the report.
    pub name: String,
    /// Target on the standard workloads.
    pub target: f64,
    /// Sends `k` messages.
    pub send: S,
    /// Receives and acks up to `k`; returns how many.
    pub take: T,
}

#[async_trait]
impl<S, SF, T, TF> Comparator for Raw<S, T>
where
    S: Fn(usize) -> SF + Send + Sync + 'static,
    SF: std::future::Future<Output = Result<()>> + Send + 'static,
    T: Fn(usize) -> TF + Send + Sync + 'static,
    TF: std::future::Future<Output = Result<usize>> + Send + 'static,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    fn target(&self, work: Work) -> Option<f64> {
        (work != Work::Fifo).then_some(self.target)
    }
    async fn setup(&self, _conc: usize) -> Result<()> {
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, _body: Bytes) -> Option<Op> {
        let k = work.size();
        Some(op(move |_, _| {
            let me = self.clone();
            async move {
                (me.send)(k).await?;
                let mut got = 0;
                for _ in 0..ATTEMPTS {
                    got += (me.take)(k - got).await?;
                    if got >= k {
                        return Ok(());
                    }
                    tokio::task::yield_now().await;
                }
                bail!("raw queue received {got} of {k}")
            }
        }))
    }
}
