//! Raw drivers doing the adapters' work, one file per backend, and the
//! "via spawn_blocking" comparator the blocking ones share.

pub mod duckdb;
pub mod floor;
pub mod memory;
pub mod object;
pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use crate::kv::{self, Fixture, Work};
use crate::measure::{op, Op};

/// A raw driver whose KV work is one blocking call (SQLite, DuckDB).
pub trait BlockingKv: Send + Sync + 'static {
    /// One workload operation, on the calling thread.
    fn kv_op(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()>;
}

/// A blocking raw driver behind one `spawn_blocking` hop per adapter
/// call (what the SQLite and DuckDB adapters do so the driver never
/// blocks the async runtime): context for the hop's cost, no target.
/// Shares the inline comparator's data, so it preloads nothing.
pub struct Hopped<R> {
    raw: Arc<R>,
    name: String,
}

impl<R> Hopped<R> {
    /// `raw`, reported as "`driver` via spawn_blocking".
    pub fn new(raw: Arc<R>, driver: &str) -> Self {
        Hopped {
            raw,
            name: format!("{driver} via spawn_blocking"),
        }
    }
}

#[async_trait]
impl<R: BlockingKv> kv::Comparator for Hopped<R> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn target(&self) -> Option<f64> {
        None
    }
    async fn preload(&self, _fx: &Fixture) -> Result<()> {
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        let raw = self.raw.clone();
        Some(op(move |t, n| {
            let (raw, fx) = (raw.clone(), fx.clone());
            async move {
                for _ in 1..kv::adapter_calls(work) {
                    tokio::task::spawn_blocking(|| ()).await?;
                }
                tokio::task::spawn_blocking(move || raw.kv_op(work, &fx, t, n, conc)).await?
            }
        }))
    }
}
