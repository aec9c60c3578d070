//! Builds each backend's adapter and comparators, and owns the services
//! they need (a throwaway redis-server, a moto server, a temp dir).

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use storage_core::{AtomicKv, KvStore, QueueConfig, QueueStore, SharedClock, SystemClock};
use storage_duckdb::{DuckDbConfig, DuckDbStore};
use storage_memory::MemoryStore;
use storage_redis::testing::RedisServer;
use storage_redis::{RedisConfig, RedisStore};
use storage_remote::testing::S3Server;
use storage_remote::RemoteStore;
use storage_sqlite::{SqliteConfig, SqliteStore};

use crate::peers::omniqueue::OmniQueue;
use crate::peers::opendal::OpenDal;
use crate::queue::{self, Raw, Through};
use crate::raw::duckdb::RawDuck;
use crate::raw::floor::FloorQueue;
use crate::raw::memory::{RawMap, RawQueue};
use crate::raw::object::RawObject;
use crate::raw::redis::{self as rawredis, RawRedis};
use crate::raw::sqlite::{self as rawsqlite, RawSqlite};
use crate::{kv, raw, sql};

/// Services shared by every group of the run.
pub struct Services {
    dir: tempfile::TempDir,
    redis: Option<RedisServer>,
    s3: Option<S3Server>,
    clock: SharedClock,
    next: u64,
}

/// One backend ready to measure.
pub struct Backend {
    /// The adapter's KV + CAS tier.
    pub kv: Arc<dyn AtomicKv>,
    /// The adapter's queue tier, if it has one.
    pub queue: Option<Arc<dyn QueueStore>>,
    /// KV comparators.
    pub kv_cmp: Vec<Arc<dyn kv::Comparator>>,
    /// Queue comparators.
    pub q_cmp: Vec<Arc<dyn queue::Comparator>>,
    /// Whatever must live as long as the backend (buckets, dirs).
    pub _keep: Vec<Box<dyn Any + Send>>,
}

impl Services {
    /// A temp dir; servers start on first use.
    pub fn new() -> Result<Services> {
        Ok(Services {
            dir: tempfile::Builder::new()
                .prefix("storage-bench")
                .tempdir()
                .context("temp dir")?,
            redis: None,
            s3: None,
            clock: Arc::new(SystemClock),
            next: 0,
        })
    }

    fn fresh(&mut self, what: &str) -> PathBuf {
        self.next += 1;
        self.dir.path().join(format!("{what}-{}", self.next))
    }

    /// A fresh path in the temp dir.
    pub fn scratch(&mut self, what: &str) -> Result<PathBuf> {
        let p = self.fresh(what);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// The throwaway redis-server (started on first use).
    pub fn redis(&mut self) -> Result<&RedisServer> {
        if self.redis.is_none() {
            self.redis = Some(RedisServer::spawn(&[]).map_err(|e| anyhow!(e))?);
        }
        self.redis.as_ref().context("redis server")
    }

    /// The redis-server's port.
    pub fn redis_port(&mut self) -> Result<u16> {
        self.redis()?.port().context("the redis server has no port")
    }

    fn s3(&mut self) -> Result<&S3Server> {
        if self.s3.is_none() {
            self.s3 = Some(S3Server::spawn(&[]).map_err(|e| anyhow!(e))?);
        }
        self.s3.as_ref().context("moto server")
    }

    /// A fresh adapter store of a backend, for the scale curves: (KV,
    /// queue, keep-alive).
    pub async fn scale_store(
        &mut self,
        name: &str,
    ) -> Result<(
        Arc<dyn KvStore>,
        Option<Arc<dyn QueueStore>>,
        Box<dyn Any + Send>,
    )> {
        let clock = self.clock.clone();
        Ok(match name {
            "memory" => {
                let s = MemoryStore::new();
                (Arc::new(s.clone()), Some(Arc::new(s)), Box::new(()))
            }
            "sqlite" => {
                let s = SqliteStore::open(SqliteConfig::file(self.fresh("scale.db"))).await?;
                (Arc::new(s.clone()), Some(Arc::new(s)), Box::new(()))
            }
            "redis" => {
                let url = self.redis()?.url().to_owned();
                let s = RedisStore::connect(RedisConfig::standalone(url, "scale")).await?;
                (Arc::new(s.clone()), Some(Arc::new(s)), Box::new(()))
            }
            "duckdb" => {
                let s = DuckDbStore::open(DuckDbConfig::memory()).await?;
                (Arc::new(s), None, Box::new(()))
            }
            "remote-memory" => (Arc::new(RemoteStore::in_memory(clock)), None, Box::new(())),
            "remote-local" => {
                let dir = self.fresh("scale-local");
                (
                    Arc::new(RemoteStore::local_dir(&dir, clock)?),
                    None,
                    Box::new(()),
                )
            }
            "s3" => {
                let (s, bucket) = self.s3()?.store("scale", clock).map_err(|e| anyhow!(e))?;
                (Arc::new(s), None, Box::new(bucket))
            }
            other => return Err(anyhow!("no backend {other}")),
        })
    }

    /// A backend with its comparators.
    pub async fn backend(&mut self, name: &str) -> Result<Backend> {
        let clock = self.clock.clone();
        let body = Bytes::from(vec![b'm'; 100]);
        Ok(match name {
            "memory" => {
                let s = MemoryStore::new();
                let rq = Arc::new(RawQueue::default());
                let (rq1, rq2, b) = (rq.clone(), rq, body.clone());
                let raw_q = Raw {
                    name: "Mutex<VecDeque>".into(),
                    target: 0.5,
                    send: move |k: usize| {
                        rq1.send(&vec![b.clone(); k]);
                        std::future::ready(Ok(()))
                    },
                    take: move |k: usize| {
                        let got = rq2.receive(k);
                        let mut n = 0;
                        for (id, count, _) in got {
                            n += usize::from(rq2.ack(id, count));
                        }
                        std::future::ready(Ok(n))
                    },
                };
                Backend {
                    kv: Arc::new(s.clone()),
                    queue: Some(Arc::new(s)),
                    kv_cmp: vec![Arc::new(RawMap::default()), Arc::new(OpenDal::memory()?)],
                    q_cmp: vec![
                        Arc::new(raw_q),
                        Arc::new(Through {
                            name: "Mutex<VecDeque> behind QueueStore".into(),
                            store: Arc::new(FloorQueue::new(queue::QUEUE)),
                        }),
                        Arc::new(OmniQueue::memory()),
                    ],
                    _keep: vec![],
                }
            }
            "sqlite" => {
                let s = SqliteStore::open(SqliteConfig::file(self.fresh("adapter.db"))).await?;
                let raw_path = self.fresh("raw.db");
                // The raw file gets the adapter's schema and queue row.
                let schema = SqliteStore::open(SqliteConfig::file(&raw_path)).await?;
                QueueStore::create_queue(&schema, queue::QUEUE, QueueConfig::default()).await?;
                drop(schema);
                let raw = Arc::new(RawSqlite::open(&raw_path, queue::QUEUE)?);
                let (r1, r2, b) = (raw.clone(), raw.clone(), body.clone());
                let raw_q = Raw {
                    name: "rusqlite".into(),
                    target: 0.9,
                    send: move |k: usize| std::future::ready(r1.send_batch(&vec![b.clone(); k])),
                    take: move |k: usize| {
                        let res = r2.receive(k).and_then(|got| {
                            for (id, count) in &got {
                                r2.ack(id, *count)?;
                            }
                            Ok(got.len())
                        });
                        std::future::ready(res)
                    },
                };
                Backend {
                    kv: Arc::new(s.clone()),
                    queue: Some(Arc::new(s)),
                    kv_cmp: vec![
                        Arc::new(rawsqlite::Inline(raw.clone())),
                        Arc::new(raw::Hopped::new(raw, "rusqlite")),
                    ],
                    q_cmp: vec![Arc::new(raw_q)],
                    _keep: vec![],
                }
            }
            "redis" => {
                let url = self.redis()?.url().to_owned();
                let s = RedisStore::connect(RedisConfig::standalone(url.clone(), "bench")).await?;
                let raw = RawRedis::connect(&url).await?;
                let floor = rawredis::ScriptFloor::new(&raw);
                let (c1, c2, b) = (raw.conn(), raw.conn(), body.clone());
                let raw_q = Raw {
                    name: "redis crate (LPUSH/LMOVE/LREM)".into(),
                    target: 0.9,
                    send: move |k: usize| {
                        let (c, b) = (c1.clone(), b.clone());
                        async move { rawredis::queue_send(&c, &b, k).await }
                    },
                    take: move |k: usize| {
                        let c = c2.clone();
                        async move { rawredis::queue_take(&c, k).await }
                    },
                };
                Backend {
                    kv: Arc::new(s.clone()),
                    queue: Some(Arc::new(s)),
                    kv_cmp: vec![
                        Arc::new(raw),
                        Arc::new(floor),
                        Arc::new(OpenDal::redis(&url)?),
                    ],
                    q_cmp: vec![Arc::new(raw_q), Arc::new(OmniQueue::redis(&url))],
                    _keep: vec![],
                }
            }
            "duckdb" => {
                let raw = Arc::new(RawDuck::open()?);
                Backend {
                    kv: Arc::new(DuckDbStore::open(DuckDbConfig::memory()).await?),
                    queue: None,
                    kv_cmp: vec![raw.clone(), Arc::new(raw::Hopped::new(raw, "duckdb crate"))],
                    q_cmp: vec![],
                    _keep: vec![],
                }
            }
            "remote-memory" => {
                let raw: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                Backend {
                    kv: Arc::new(RemoteStore::in_memory(clock)),
                    queue: None,
                    kv_cmp: vec![Arc::new(RawObject::new(raw, "InMemory"))],
                    q_cmp: vec![],
                    _keep: vec![],
                }
            }
            "remote-local" => {
                let dir = self.fresh("local-adapter");
                let raw_dir = self.fresh("local-raw");
                std::fs::create_dir_all(&raw_dir)?;
                // object_store's LocalFileSystem has no conditional update;
                // the adapter's own LocalDirStore is an ObjectStore with
                // one, so the raw side calls that, directly.
                let raw: Arc<dyn ObjectStore> =
                    Arc::new(storage_remote::LocalDirStore::open(&raw_dir)?);
                Backend {
                    kv: Arc::new(RemoteStore::local_dir(&dir, clock)?),
                    queue: None,
                    kv_cmp: vec![Arc::new(RawObject::new(raw, "LocalDirStore"))],
                    q_cmp: vec![],
                    _keep: vec![],
                }
            }
            "s3" => {
                let s3 = self.s3()?;
                let (store, bucket) = s3.store("bench", clock).map_err(|e| anyhow!(e))?;
                let raw_bucket = storage_remote::testing::unique_name("raw");
                s3.create_bucket(&raw_bucket).map_err(|e| anyhow!(e))?;
                let raw = storage_remote::build_s3(&s3.config(&raw_bucket))?;
                Backend {
                    kv: Arc::new(store),
                    queue: None,
                    kv_cmp: vec![Arc::new(RawObject::new(raw, "S3 (moto)"))],
                    q_cmp: vec![],
                    _keep: vec![Box::new(bucket)],
                }
            }
            other => return Err(anyhow!("no backend {other}")),
        })
    }

    /// The SQL engines: (name, adapter, raw) for sqlite and duckdb.
    pub async fn sql(
        &mut self,
        name: &str,
    ) -> Result<(Arc<dyn storage_core::SqlEngine>, Arc<sql::RawSql>)> {
        Ok(match name {
            "sqlite" => {
                let a = SqliteStore::open(SqliteConfig::file(self.fresh("sql-adapter.db"))).await?;
                let c = rusqlite::Connection::open(self.fresh("sql-raw.db"))?;
                let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
                anyhow::ensure!(mode == "wal", "journal mode {mode}");
                c.execute_batch("PRAGMA synchronous = FULL;")?;
                (
                    Arc::new(a),
                    Arc::new(sql::RawSql::Sqlite(parking_lot::Mutex::new(c))),
                )
            }
            "duckdb" => {
                let a = DuckDbStore::open(DuckDbConfig::memory()).await?;
                let c = duckdb::Connection::open_in_memory()?;
                (
                    Arc::new(a),
                    Arc::new(sql::RawSql::Duck(parking_lot::Mutex::new(c))),
                )
            }
            other => return Err(anyhow!("no SQL engine {other}")),
        })
    }
}
