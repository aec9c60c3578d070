//! Raw `object_store` on the same kind of store as the adapter (its own
//! `InMemory`, a `LocalDirStore` on its own directory, or the same S3
//! server), one object per key under `raw/`: get = `get` + `bytes()`; put
//! = `put`; scan = `list_with_offset` from the start key, sorted, first
//! 101, each read (16 at once, like the adapter); CAS = `get` then
//! `put_opts(PutMode::Update(etag))`. No transactions (the tier has none).

use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::kv::{self, check_len, Fixture, Work, PAGE};
use crate::measure::{op, Op};

/// The raw store.
pub struct RawObject {
    store: Arc<dyn ObjectStore>,
    label: String,
}

fn path(k: &[u8]) -> Path {
    Path::from(format!("raw/{}", String::from_utf8_lossy(k)))
}

impl RawObject {
    /// Over `store`; `label` names it in the report.
    pub fn new(store: Arc<dyn ObjectStore>, label: &str) -> RawObject {
        RawObject {
            store,
            label: label.to_owned(),
        }
    }

    /// One scan page starting at `start`: `list_with_offset`, sorted,
    /// first 101, each read (16 at once, like the adapter). Returns how
    /// many values were read.
    pub async fn page_from(&self, start: &[u8]) -> Result<usize> {
        let s = &self.store;
        let prefix = Path::from("raw");
        // The offset is exclusive: start just before the start key.
        let mut before = start.to_vec();
        if let Some(last) = before.last_mut() {
            *last -= 1;
        }
        let mut metas: Vec<_> = s
            .list_with_offset(Some(&prefix), &path(&before))
            .try_collect()
            .await?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        metas.truncate(PAGE + 1);
        let vals: Vec<_> = futures::stream::iter(
            metas
                .into_iter()
                .map(|m| async move { s.get(&m.location).await?.bytes().await }),
        )
        .buffered(16)
        .try_collect()
        .await?;
        Ok(vals.len())
    }

    /// Puts `value` at every key, 16 at once.
    pub async fn put_all(&self, keys: impl Iterator<Item = Bytes>, value: Bytes) -> Result<()> {
        let puts: Vec<_> = keys
            .map(|k| {
                let (s, v, p) = (self.store.clone(), value.clone(), path(&k));
                async move { s.put(&p, PutPayload::from_bytes(v)).await.map(|_| ()) }
            })
            .collect();
        futures::stream::iter(puts)
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .context("raw object_store put")?;
        Ok(())
    }

    async fn kv_op(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        let s = &self.store;
        match work {
            Work::Get => {
                let b = s.get(&path(&fx.keys[fx.any(n)])).await?.bytes().await?;
                check_len(Some(b.len()), fx.value.len())
            }
            Work::Put => {
                let p = path(&fx.keys[fx.own(t, n, conc)]);
                s.put(&p, PutPayload::from_bytes(fx.value.clone())).await?;
                Ok(())
            }
            Work::Scan => {
                let read = self.page_from(&fx.keys[fx.any(n)]).await?;
                ensure!(read > 0, "scan returned nothing");
                Ok(())
            }
            Work::Cas => {
                let p = path(&fx.keys[fx.own(t, n, conc)]);
                let got = s.get(&p).await?;
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let _old = got.bytes().await?;
                let opts = PutOptions {
                    mode: PutMode::Update(version),
                    ..PutOptions::default()
                };
                s.put_opts(&p, PutPayload::from_bytes(fx.value.clone()), opts)
                    .await
                    .context("raw CAS")?;
                Ok(())
            }
            Work::Tx => Ok(()),
        }
    }
}

#[async_trait]
impl kv::Comparator for RawObject {
    fn name(&self) -> String {
        format!("object_store {}", self.label)
    }
    fn target(&self) -> Option<f64> {
        Some(0.9)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        self.put_all(fx.keys.iter().cloned(), fx.value.clone())
            .await
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        if work == Work::Tx {
            return None;
        }
        Some(op(move |t, n| {
            let (me, fx) = (self.clone(), fx.clone());
            async move { me.kv_op(work, &fx, t, n, conc).await }
        }))
    }
}
