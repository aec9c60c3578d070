//! Raw `redis` crate: what a redis-crate user writes for the job, on one
//! shared `MultiplexedConnection` to the adapter's throwaway server.
//!
//! get / put = `GET` / `SET`; scan = `ZRANGE … BYLEX LIMIT` on an index
//! sorted set + `MGET`; CAS = `HMGET` of a `{ver, val}` hash + a minimal
//! Lua check-and-set; transaction = `MULTI` + 10 `SET` + `EXEC`; queue =
//! `LPUSH` / `LMOVE` to a processing list / `LREM` (a reliable list queue).

use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};

use crate::kv::{self, check_len, Fixture, Work, PAGE};
use crate::measure::{op, Op};

const CAS_SCRIPT: &str = r"
local v = redis.call('HGET', KEYS[1], 'ver')
if v ~= ARGV[1] then return false end
local n = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'val', ARGV[2])
return n
";

/// The raw client.
pub struct RawRedis {
    conn: MultiplexedConnection,
    cas: Script,
}

fn plain(k: &[u8]) -> Vec<u8> {
    [b"raw:".as_slice(), k].concat()
}

fn hash(k: &[u8]) -> Vec<u8> {
    [b"rawh:".as_slice(), k].concat()
}

const INDEX: &str = "raw:index";

impl RawRedis {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<RawRedis> {
        let client = redis::Client::open(url).context("redis url")?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .context("raw redis connection")?;
        Ok(RawRedis {
            conn,
            cas: Script::new(CAS_SCRIPT),
        })
    }

    /// A clone of the shared connection.
    pub fn conn(&self) -> MultiplexedConnection {
        self.conn.clone()
    }

    async fn kv_op(&self, work: Work, fx: &Fixture, t: usize, n: u64, conc: usize) -> Result<()> {
        let mut c = self.conn.clone();
        match work {
            Work::Get => {
                let v: Option<Vec<u8>> = c.get(plain(&fx.keys[fx.any(n)])).await?;
                check_len(v.map(|v| v.len()), fx.value.len())
            }
            Work::Put => {
                let () = c
                    .set(plain(&fx.keys[fx.own(t, n, conc)]), &fx.value[..])
                    .await?;
                Ok(())
            }
            Work::Scan => {
                let start = [b"[".as_slice(), &fx.keys[fx.any(n)]].concat();
                let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                    .arg(INDEX)
                    .arg(start)
                    .arg("+")
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(PAGE + 1)
                    .query_async(&mut c)
                    .await?;
                ensure!(!members.is_empty(), "scan returned nothing");
                let names: Vec<Vec<u8>> = members.iter().map(|m| plain(m)).collect();
                let vals: Vec<Option<Vec<u8>>> = c.mget(names).await?;
                ensure!(vals.len() == members.len(), "scan lost values");
                Ok(())
            }
            Work::Cas => {
                let h = hash(&fx.keys[fx.own(t, n, conc)]);
                let (ver, _val): (Option<String>, Option<Vec<u8>>) =
                    c.hget(&h, &["ver", "val"]).await?;
                let ver = ver.context("CAS key missing")?;
                let new: Option<i64> = self
                    .cas
                    .key(&h)
                    .arg(ver)
                    .arg(&fx.value[..])
                    .invoke_async(&mut c)
                    .await?;
                ensure!(new.is_some(), "CAS conflict");
                Ok(())
            }
            Work::Tx => {
                let mut p = redis::pipe();
                p.atomic();
                for i in fx.own_run(t, n, conc) {
                    p.set(plain(&fx.keys[i]), &fx.value[..]).ignore();
                }
                let () = p.query_async(&mut c).await?;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl kv::Comparator for RawRedis {
    fn name(&self) -> String {
        "redis crate".into()
    }
    fn target(&self) -> Option<f64> {
        Some(0.9)
    }
    async fn preload(&self, fx: &Fixture) -> Result<()> {
        let mut c = self.conn.clone();
        for chunk in fx.keys.chunks(500) {
            let mut p = redis::pipe();
            for k in chunk {
                p.set(plain(k), &fx.value[..]).ignore();
                p.zadd(INDEX, &k[..], 0).ignore();
                p.hset_multiple(hash(k), &[("ver", &b"1"[..]), ("val", &fx.value[..])])
                    .ignore();
            }
            let () = p.query_async(&mut c).await.context("raw redis preload")?;
        }
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        Some(op(move |t, n| {
            let (me, fx) = (self.clone(), fx.clone());
            async move { me.kv_op(work, &fx, t, n, conc).await }
        }))
    }
}

/// The raw list queue: `LPUSH` of `k` bodies in one pipeline.
pub async fn queue_send(conn: &MultiplexedConnection, body: &Bytes, k: usize) -> Result<()> {
    let mut c = conn.clone();
    let mut p = redis::pipe();
    for _ in 0..k {
        p.lpush("rawq", &body[..]).ignore();
    }
    let () = p.query_async(&mut c).await?;
    Ok(())
}

/// The raw list queue: up to `k` × (`LMOVE` to the processing list, then
/// `LREM` from it); returns how many were taken.
pub async fn queue_take(conn: &MultiplexedConnection, k: usize) -> Result<usize> {
    let mut c = conn.clone();
    let mut got = 0;
    for _ in 0..k {
        let m: Option<Vec<u8>> = c
            .lmove(
                "rawq",
                "rawq:processing",
                redis::Direction::Right,
                redis::Direction::Left,
            )
            .await?;
        let Some(m) = m else { break };
        let _: i64 = c.lrem("rawq:processing", 1, m).await?;
        got += 1;
    }
    Ok(got)
}

/// An empty Lua script, called the way the adapter calls its put script
/// (five keys, seven arguments with the value among them): the floor of
/// any design that runs one script per write. A context comparator for
/// the put rows (no target): "redis crate" ÷ this is what one `EVALSHA`
/// costs against one `SET`, before the script does anything.
pub struct ScriptFloor {
    conn: MultiplexedConnection,
    script: Script,
}

impl ScriptFloor {
    /// On the raw client's connection.
    pub fn new(raw: &RawRedis) -> ScriptFloor {
        ScriptFloor {
            conn: raw.conn(),
            script: Script::new("return {'1', ARGV[2]}"),
        }
    }
}

#[async_trait]
impl kv::Comparator for ScriptFloor {
    fn name(&self) -> String {
        "redis crate, empty Lua script".into()
    }
    fn target(&self) -> Option<f64> {
        None
    }
    async fn preload(&self, _fx: &Fixture) -> Result<()> {
        Ok(())
    }
    fn op(self: Arc<Self>, work: Work, fx: Arc<Fixture>, conc: usize) -> Option<Op> {
        if work != Work::Put {
            return None;
        }
        Some(op(move |t, n| {
            let (me, fx) = (self.clone(), fx.clone());
            async move {
                let mut c = me.conn.clone();
                let key = &fx.keys[fx.own(t, n, conc)];
                let reply: Vec<Option<Vec<u8>>> = me
                    .script
                    .key("{floor}i")
                    .key("{floor}d")
                    .key("{floor}x")
                    .key("{floor}c")
                    .key("{floor}r")
                    .arg(0)
                    .arg(&key[..])
                    .arg(&fx.value[..])
                    .arg("")
                    .arg("o")
                    .arg("")
                    .arg("floor")
                    .invoke_async(&mut c)
                    .await?;
                ensure!(reply.len() == 2, "script floor: unexpected reply");
                Ok(())
            }
        }))
    }
}
