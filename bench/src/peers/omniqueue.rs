//! omniqueue 0.3 as a queue peer: its in-memory backend (a tokio channel;
//! one consumer, shared by every task behind a mutex) and its Redis
//! backend (Redis streams; one consumer per task in one consumer group,
//! created first with `XGROUP CREATE … MKSTREAM`). A cycle is
//! `send_raw` × k, then `receive_all` until k arrived, each acked. FIFO
//! groups do not exist in omniqueue, so it takes part in the standard
//! workloads only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use omniqueue::backends::redis::RedisConnectionManager;
use omniqueue::backends::{
    InMemoryBackend, InMemoryConsumer, InMemoryProducer, RedisBackend, RedisConfig, RedisConsumer,
    RedisProducer,
};
use tokio::sync::Mutex;

use crate::measure::{op, Op};
use crate::queue::{Comparator, Work};

/// How long one `receive_all` waits for a message.
const POLL: Duration = Duration::from_millis(5);
/// Receive attempts before a cycle gives up.
const ATTEMPTS: usize = 2_000;

enum Pair {
    Memory(InMemoryProducer, Vec<Arc<Mutex<InMemoryConsumer>>>),
    Redis(
        RedisProducer<RedisConnectionManager>,
        Vec<Arc<Mutex<RedisConsumer<RedisConnectionManager>>>>,
    ),
}

/// An omniqueue backend.
pub struct OmniQueue {
    kind: &'static str,
    redis_url: Option<String>,
    pair: parking_lot::RwLock<Option<Arc<Pair>>>,
    generation: std::sync::atomic::AtomicU64,
}

impl OmniQueue {
    /// The in-memory backend.
    pub fn memory() -> OmniQueue {
        OmniQueue {
            kind: "in-memory",
            redis_url: None,
            pair: parking_lot::RwLock::new(None),
            generation: 0.into(),
        }
    }

    /// The Redis backend on `url`.
    pub fn redis(url: &str) -> OmniQueue {
        OmniQueue {
            kind: "redis",
            redis_url: Some(url.to_owned()),
            pair: parking_lot::RwLock::new(None),
            generation: 0.into(),
        }
    }

    fn config(url: &str, queue: &str, consumer: usize) -> RedisConfig {
        RedisConfig {
            dsn: url.to_owned(),
            max_connections: 8,
            reinsert_on_nack: false,
            queue_key: queue.to_owned(),
            delayed_queue_key: format!("{queue}:delayed"),
            delayed_lock_key: format!("{queue}:delayed-lock"),
            consumer_group: "bench".to_owned(),
            consumer_name: format!("c{consumer}"),
            payload_key: "payload".to_owned(),
            ack_deadline_ms: 30_000,
            dlq_config: None,
            sentinel_config: None,
        }
    }
}

#[async_trait]
impl Comparator for OmniQueue {
    fn name(&self) -> String {
        format!("omniqueue {}", self.kind)
    }
    fn target(&self, _work: Work) -> Option<f64> {
        Some(1.2)
    }
    async fn setup(&self, conc: usize) -> Result<()> {
        let pair = match &self.redis_url {
            None => {
                let (p, c) = InMemoryBackend::builder()
                    .build_pair()
                    .await
                    .context("omniqueue in-memory")?;
                Pair::Memory(p, vec![Arc::new(Mutex::new(c))])
            }
            Some(url) => {
                let g = self
                    .generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let queue = format!("omniq{g}");
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let () = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&queue)
                    .arg("bench")
                    .arg("$")
                    .arg("MKSTREAM")
                    .query_async(&mut conn)
                    .await
                    .context("XGROUP CREATE")?;
                let mut consumers = Vec::with_capacity(conc);
                let mut producer = None;
                for i in 0..conc {
                    let (p, c) = RedisBackend::builder(OmniQueue::config(url, &queue, i))
                        .build_pair()
                        .await
                        .context("omniqueue redis")?;
                    producer.get_or_insert(p);
                    consumers.push(Arc::new(Mutex::new(c)));
                }
                Pair::Redis(producer.context("no consumers")?, consumers)
            }
        };
        *self.pair.write() = Some(Arc::new(pair));
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, body: Bytes) -> Option<Op> {
        if work == Work::Fifo {
            return None;
        }
        let k = work.size();
        let pair = self.pair.read().clone()?;
        Some(op(move |t, _| {
            let (pair, body) = (pair.clone(), body.clone());
            async move {
                match &*pair {
                    Pair::Memory(p, cs) => {
                        for _ in 0..k {
                            p.send_raw(&body).await?;
                        }
                        let mut got = 0;
                        for _ in 0..ATTEMPTS {
                            let ds = cs[t % cs.len()]
                                .lock()
                                .await
                                .receive_all(k - got, POLL)
                                .await?;
                            for d in ds {
                                d.ack().await.map_err(|(e, _)| e)?;
                                got += 1;
                            }
                            if got >= k {
                                return Ok(());
                            }
                        }
                        bail!("omniqueue received {got} of {k}")
                    }
                    Pair::Redis(p, cs) => {
                        for _ in 0..k {
                            p.send_raw(&body).await?;
                        }
                        let mut got = 0;
                        for _ in 0..ATTEMPTS {
                            let ds = cs[t % cs.len()]
                                .lock()
                                .await
                                .receive_all(k - got, POLL)
                                .await?;
                            for d in ds {
                                d.ack().await.map_err(|(e, _)| e)?;
                                got += 1;
                            }
                            if got >= k {
                                return Ok(());
                            }
                        }
                        bail!("omniqueue received {got} of {k}")
                    }
                }
            }
        }))
    }
}
