//! Apache OpenDAL as a KV peer: its memory and redis services (the sqlite
//! service runs in `bench/peer-sqlite`, see there). OpenDAL is an object
//! API: read and write by path. It has no ordered paged listing with
//! values on these services (redis lists nothing; memory lists paths
//! only), no conditional writes and no transactions, so it takes part in
//! get and put only.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use opendal::Operator;

use crate::kv::{self, check_len, Fixture, Work};
use crate::measure::{op, Op};

/// An OpenDAL operator.
pub struct OpenDal {
    op: Operator,
    service: &'static str,
}

fn path(k: &[u8]) -> String {
    format!("bench/{}", String::from_utf8_lossy(k))
}

impl OpenDal {
    /// The memory service.
    pub fn memory() -> Result<OpenDal> {
        let op = Operator::new(opendal::services::Memory::default()).context("opendal memory")?;
        Ok(OpenDal {
            op,
            service: "memory",
        })
    }

    /// The redis service on `url` (`redis://host:port/`).
    pub fn redis(url: &str) -> Result<OpenDal> {
        let endpoint = url.trim_end_matches('/').replacen("redis://", "tcp://", 1);
        let op = Operator::new(opendal::services::Redis::default().endpoint(&endpoint))
            .context("opendal redis")?;
        Ok(OpenDal {
            op,
            service: "redis",
        })
    }
}

#[async_trait]
impl kv::Comparator for OpenDal {
    fn name(&self) -> String {
        format!("opendal {}", self.service)
    }
    fn target(&self) -> Option<f64> {
        Some(1.2)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        let writes: Vec<_> = fx
            .keys
            .iter()
            .map(|k| {
                let (o, v, p) = (self.op.clone(), fx.value.clone(), path(k));
                async move { o.write(&p, v).await.map(|_| ()) }
            })
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .context("opendal preload")?;
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        let o = self.op.clone();
        match work {
            Work::Get => Some(op(move |_, n| {
                let (o, fx) = (o.clone(), fx.clone());
                async move {
                    let b = o.read(&path(&fx.keys[fx.any(n)])).await?;
                    check_len(Some(b.len()), fx.value.len())
                }
            })),
            Work::Put => Some(op(move |t, n| {
                let (o, fx) = (o.clone(), fx.clone());
                async move {
                    o.write(&path(&fx.keys[fx.own(t, n, conc)]), fx.value.clone())
                        .await?;
                    Ok(())
                }
            })),
            Work::Scan | Work::Cas | Work::Tx => None,
        }
    }
}
