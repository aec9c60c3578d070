//! KV workloads: get, put, 100-key scan page, CAS update, 10-op
//! transaction; 100 B and 10 KB values; concurrency 1 and 64. The adapter
//! (through `Arc<dyn AtomicKv>`) beside each comparator of its backend.

use std::ops::Bound;
use std::sync::Arc;

use anyhow::{bail, ensure, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{AtomicKv, BatchOp, PutMode, PutOptions, ScanRequest, TransactionScope, TxOp};

use crate::measure::{self, mix, op, External, Op, Plan, Side};
use crate::results::{Results, Row};

/// Value sizes (with key counts), concurrencies and timing of one
/// backend's KV rows.
#[derive(Debug, Clone)]
pub struct Shape {
    /// (value bytes, keys).
    pub sizes: Vec<(usize, usize)>,
    /// Tasks at once.
    pub concurrencies: Vec<usize>,
    /// Rounds and slice length.
    pub plan: Plan,
}

/// The namespace every KV side writes.
pub const NS: &str = "bench";
/// Entries of a scan page.
pub const PAGE: usize = 100;
/// Operations of a transaction.
pub const TX_OPS: usize = 10;

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Point read of a present key.
    Get,
    /// Overwrite of a present key.
    Put,
    /// One 100-entry page from a random start key.
    Scan,
    /// Versioned read, then a write conditional on that version.
    Cas,
    /// Ten puts, all or nothing.
    Tx,
}

impl Work {
    /// Every workload, in report order.
    pub const ALL: [Work; 5] = [Work::Get, Work::Put, Work::Scan, Work::Cas, Work::Tx];

    fn label(self) -> &'static str {
        match self {
            Work::Get => "get",
            Work::Put => "put",
            Work::Scan => "scan page (100)",
            Work::Cas => "CAS update",
            Work::Tx => "transaction (10 puts)",
        }
    }
}

/// Precomputed keys and a value; shared by every side of one row.
#[derive(Debug)]
pub struct Fixture {
    /// Keys in ascending order (`key-0000000042`).
    pub keys: Vec<Bytes>,
    /// The value every write stores.
    pub value: Bytes,
}

impl Fixture {
    /// `n` keys and a value of `size` bytes.
    pub fn new(n: usize, size: usize) -> Fixture {
        Fixture {
            keys: (0..n).map(|i| Bytes::from(key_name(i as u64))).collect(),
            value: Bytes::from(vec![b'v'; size]),
        }
    }

    /// A key of task `t`'s own stripe (tasks never share a written key,
    /// so CAS never conflicts and every side does the same work).
    pub fn own(&self, t: usize, n: u64, conc: usize) -> usize {
        let per = (self.keys.len() / conc).max(1) as u64;
        t + conc * (mix(n) % per) as usize
    }

    /// `TX_OPS` distinct keys of task `t`'s stripe.
    pub fn own_run(&self, t: usize, n: u64, conc: usize) -> impl Iterator<Item = usize> {
        let per = (self.keys.len() / conc).max(TX_OPS + 1) as u64;
        let base = (mix(n) % (per - TX_OPS as u64)) as usize;
        (0..TX_OPS).map(move |j| t + conc * (base + j))
    }

    /// Any key (reads).
    pub fn any(&self, n: u64) -> usize {
        (mix(n) % self.keys.len() as u64) as usize
    }
}

/// Adapter trait calls per workload operation (CAS: read + conditional
/// write): the hops a "via spawn_blocking" comparator makes.
pub fn adapter_calls(work: Work) -> usize {
    if work == Work::Cas {
        2
    } else {
        1
    }
}

/// The key of index `i`.
pub fn key_name(i: u64) -> String {
    format!("key-{i:010}")
}

/// A comparator of the adapter on the KV workloads.
#[async_trait]
pub trait Comparator: Send + Sync {
    /// Name in the report.
    fn name(&self) -> String;
    /// The ratio the adapter should reach against it.
    fn target(&self) -> Option<f64>;
    /// Stores every fixture key with the fixture value.
    async fn preload(&self, fx: &Fixture) -> Result<()>;
    /// The operation for a workload, or `None` if it cannot do it.
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op>;
    /// A comparator in another process measures itself instead.
    fn external(&self, _work: Work, _fx: &Fixture) -> Option<External> {
        None
    }
}

/// Stores every fixture key through the adapter.
pub async fn preload_adapter(kv: &Arc<dyn AtomicKv>, fx: &Fixture) -> Result<()> {
    for chunk in fx.keys.chunks(100) {
        let ops = chunk
            .iter()
            .map(|k| BatchOp::Put {
                key: k.clone(),
                value: fx.value.clone(),
                options: PutOptions::default(),
            })
            .collect();
        kv.write_batch(NS, ops).await.context("adapter preload")?;
    }
    Ok(())
}

/// The adapter's operation for a workload (`None`: not supported).
pub fn adapter_op(
    kv: &Arc<dyn AtomicKv>,
    work: Work,
    fx: &Arc<Fixture>,
    conc: usize,
) -> Option<Op> {
    let (kv, fx) = (kv.clone(), fx.clone());
    Some(match work {
        Work::Get => op(move |_, n| {
            let (kv, fx) = (kv.clone(), fx.clone());
            async move {
                let v = kv.get(NS, &fx.keys[fx.any(n)]).await?;
                ensure!(
                    v.is_some_and(|v| v.len() == fx.value.len()),
                    "get lost its value"
                );
                Ok(())
            }
        }),
        Work::Put => op(move |t, n| {
            let (kv, fx) = (kv.clone(), fx.clone());
            async move {
                let k = &fx.keys[fx.own(t, n, conc)];
                kv.put(NS, k, fx.value.clone(), PutOptions::default())
                    .await?;
                Ok(())
            }
        }),
        Work::Scan => op(move |_, n| {
            let (kv, fx) = (kv.clone(), fx.clone());
            async move {
                let start = fx.keys[fx.any(n)].clone();
                let req = ScanRequest {
                    start: Bound::Included(start),
                    ..ScanRequest::all()
                }
                .with_limit(PAGE);
                let page = kv.scan(NS, req).await?;
                ensure!(!page.entries.is_empty(), "scan returned nothing");
                Ok(())
            }
        }),
        Work::Cas => op(move |t, n| {
            let (kv, fx) = (kv.clone(), fx.clone());
            async move {
                let k = &fx.keys[fx.own(t, n, conc)];
                let cur = kv.get_versioned(NS, k).await?.context("CAS key missing")?;
                kv.put_if(
                    NS,
                    k,
                    fx.value.clone(),
                    PutMode::Update(cur.version),
                    PutOptions::default(),
                )
                .await?;
                Ok(())
            }
        }),
        Work::Tx => {
            let caps = kv.capabilities();
            if caps.transaction_scope == TransactionScope::None || caps.max_transaction_ops < TX_OPS
            {
                return None;
            }
            op(move |t, n| {
                let (kv, fx) = (kv.clone(), fx.clone());
                async move {
                    let ops = fx
                        .own_run(t, n, conc)
                        .map(|i| TxOp::put(NS, fx.keys[i].clone(), fx.value.clone()))
                        .collect();
                    kv.transact(ops).await?;
                    Ok(())
                }
            })
        }
    })
}

/// One backend's KV rows: every workload, both value sizes, both
/// concurrencies, the adapter beside each comparator.
pub async fn run_backend(
    backend: &str,
    adapter: Arc<dyn AtomicKv>,
    comparators: Vec<Arc<dyn Comparator>>,
    shape: &Shape,
    res: &mut Results,
) -> Result<()> {
    let (plan, rows, problems) = (shape.plan, &mut res.rows, &mut res.problems);
    for &(size, nkeys) in &shape.sizes {
        let fx = Arc::new(Fixture::new(nkeys, size));
        preload_adapter(&adapter, &fx).await?;
        let mut live = Vec::new();
        for c in &comparators {
            match c.preload(&fx).await {
                Ok(()) => live.push(c.clone()),
                Err(e) => problems.push(format!("{backend} {}: preload failed: {e:#}", c.name())),
            }
        }
        for &conc in &shape.concurrencies {
            for work in Work::ALL {
                let label = format!("{} {}", work.label(), size_label(size));
                let Some(a) = adapter_op(&adapter, work, &fx, conc) else {
                    continue;
                };
                let mut sides = vec![Side::op("adapter", a)];
                let mut used = Vec::new();
                for c in &live {
                    if let Some(o) = c.clone().op(work, fx.clone(), conc) {
                        sides.push(Side::op(c.name(), o));
                        used.push(c.clone());
                    } else if let Some(x) = c.external(work, &fx) {
                        sides.push(Side {
                            name: c.name(),
                            work: measure::Work::External(x),
                        });
                        used.push(c.clone());
                    }
                }
                if used.is_empty() {
                    problems.push(format!("{backend} {label} c={conc}: no comparator"));
                    continue;
                }
                eprintln!("kv {backend} {label} c={conc}");
                let plan = Plan {
                    concurrency: conc,
                    ..plan
                };
                match measure::compare(&sides, plan).await {
                    Ok(rates) => {
                        for (c, rate) in used.iter().zip(&rates[1..]) {
                            rows.push(Row {
                                group: "KV".into(),
                                workload: label.clone(),
                                backend: backend.into(),
                                concurrency: conc,
                                adapter: rates[0],
                                comparator: c.name(),
                                comparator_ops: *rate,
                                target: c.target(),
                            });
                        }
                    }
                    Err(e) => problems.push(format!("{backend} {label} c={conc}: {e:#}")),
                }
            }
        }
    }
    Ok(())
}

/// "100 B" / "10 KB".
pub fn size_label(size: usize) -> String {
    if size >= 1000 {
        format!("{} KB", size / 1000)
    } else {
        format!("{size} B")
    }
}

/// Fails a row loudly when a comparator reads something unexpected.
pub fn check_len(got: Option<usize>, want: usize) -> Result<()> {
    match got {
        Some(n) if n == want => Ok(()),
        Some(n) => bail!("read {n} bytes, expected {want}"),
        None => bail!("key missing"),
    }
}
