//! The memory backend's raw comparator: a `parking_lot::RwLock` around a
//! `BTreeMap` per namespace, values stored with a version number (what a
//! hand-rolled emulator store holds), and a `Mutex` queue with the
//! bookkeeping any queue needs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::kv::{self, check_len, Fixture, Work, NS, PAGE};
use crate::measure::{op, Op};

type Map = BTreeMap<String, BTreeMap<Bytes, (u64, Bytes)>>;

/// `RwLock<BTreeMap>` KV.
#[derive(Default)]
pub struct RawMap {
    map: RwLock<Map>,
    version: AtomicU64,
}

impl RawMap {
    fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stores `value` at every key of namespace `ns`, one write lock.
    pub fn insert_all(&self, ns: &str, keys: impl Iterator<Item = Bytes>, value: &Bytes) {
        let mut g = self.map.write();
        let m = g.entry(ns.to_owned()).or_default();
        for k in keys {
            m.insert(k, (self.next_version(), value.clone()));
        }
    }

    /// One page of up to `limit` entries of `ns` from `start` (key, value,
    /// version copied out, as a scan returns them).
    pub fn page_from(&self, ns: &str, start: &Bytes, limit: usize) -> Vec<(Bytes, Bytes, u64)> {
        self.map
            .read()
            .get(ns)
            .map(|m| {
                m.range(start.clone()..)
                    .take(limit)
                    .map(|(k, (ver, v))| (k.clone(), v.clone(), *ver))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl kv::Comparator for RawMap {
    fn name(&self) -> String {
        "RwLock<BTreeMap>".into()
    }

    fn target(&self) -> Option<f64> {
        Some(0.5)
    }

    async fn preload(&self, fx: &Fixture) -> Result<()> {
        let mut g = self.map.write();
        let ns = g.entry(NS.to_owned()).or_default();
        for k in &fx.keys {
            ns.insert(k.clone(), (self.next_version(), fx.value.clone()));
        }
        Ok(())
    }

    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        let me = self;
        Some(match work {
            Work::Get => op(move |_, n| {
                let v = me
                    .map
                    .read()
                    .get(NS)
                    .and_then(|m| m.get(&fx.keys[fx.any(n)]))
                    .map(|(_, v)| v.clone());
                std::future::ready(check_len(v.map(|v| v.len()), fx.value.len()))
            }),
            Work::Put => op(move |t, n| {
                let k = fx.keys[fx.own(t, n, conc)].clone();
                let ver = me.next_version();
                me.map
                    .write()
                    .entry(NS.to_owned())
                    .or_default()
                    .insert(k, (ver, fx.value.clone()));
                std::future::ready(Ok(()))
            }),
            Work::Scan => op(move |_, n| {
                let page = me.page_from(NS, &fx.keys[fx.any(n)], PAGE + 1);
                std::future::ready(if page.is_empty() {
                    Err(anyhow::anyhow!("scan returned nothing"))
                } else {
                    Ok(())
                })
            }),
            Work::Cas => op(move |t, n| {
                let k = &fx.keys[fx.own(t, n, conc)];
                let res = (|| -> Result<()> {
                    let (ver, _old) = me
                        .map
                        .read()
                        .get(NS)
                        .and_then(|m| m.get(k))
                        .cloned()
                        .context("CAS key missing")?;
                    let new = me.next_version();
                    let mut g = me.map.write();
                    let slot = g
                        .get_mut(NS)
                        .and_then(|m| m.get_mut(k))
                        .context("CAS key vanished")?;
                    ensure!(slot.0 == ver, "CAS conflict");
                    *slot = (new, fx.value.clone());
                    Ok(())
                })();
                std::future::ready(res)
            }),
            Work::Tx => op(move |t, n| {
                let mut g = me.map.write();
                let m = g.entry(NS.to_owned()).or_default();
                for i in fx.own_run(t, n, conc) {
                    let ver = me.next_version();
                    m.insert(fx.keys[i].clone(), (ver, fx.value.clone()));
                }
                std::future::ready(Ok(()))
            }),
        })
    }
}

/// One message of the raw queue.
struct Msg {
    body: Bytes,
    receive_count: u32,
    visible_at: u64,
}

/// A `Mutex<{VecDeque, HashMap}>` queue: an id per message, a visibility
/// deadline read from the clock, a receive count, a receipt check on ack.
#[derive(Default)]
pub struct RawQueue {
    inner: Mutex<QueueInner>,
}

#[derive(Default)]
struct QueueInner {
    ready: VecDeque<u64>,
    messages: HashMap<u64, Msg>,
    next: u64,
}

/// Wall-clock milliseconds, as the raw queue stamps messages.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RawQueue {
    /// Sends `bodies`.
    pub fn send(&self, bodies: &[Bytes]) {
        let now = now_ms();
        let mut g = self.inner.lock();
        for b in bodies {
            let id = g.next;
            g.next += 1;
            g.messages.insert(
                id,
                Msg {
                    body: b.clone(),
                    receive_count: 0,
                    visible_at: now,
                },
            );
            g.ready.push_back(id);
        }
    }

    /// Receives up to `max`: (id, receive count, body).
    pub fn receive(&self, max: usize) -> Vec<(u64, u32, Bytes)> {
        let mut g = self.inner.lock();
        // Read under the lock: every queued message was stamped earlier.
        let now = now_ms();
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            let Some(id) = g.ready.pop_front() else { break };
            if let Some(m) = g.messages.get_mut(&id).filter(|m| m.visible_at <= now) {
                m.receive_count += 1;
                m.visible_at = now + 30_000;
                out.push((id, m.receive_count, m.body.clone()));
            }
        }
        out
    }

    /// Acks one delivery if its receipt is current.
    pub fn ack(&self, id: u64, count: u32) -> bool {
        let mut g = self.inner.lock();
        if g.messages
            .get(&id)
            .is_some_and(|m| m.receive_count == count)
        {
            g.messages.remove(&id);
            true
        } else {
            false
        }
    }
}
