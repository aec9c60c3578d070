//! The Redis adapter beside the raw `redis` crate and `redis-benchmark`,
//! same server, same run.
//!
//! ```sh
//! cargo bench -p storage-redis --bench vs_raw                  # BENCH_SECONDS=2 per side per row
//! BENCH_SECONDS=5 cargo bench -p storage-redis --bench vs_raw  # longer
//! BENCH_ONLY=get,put cargo bench -p storage-redis --bench vs_raw   # some rows (get, put, cas, queue)
//! ```
//!
//! The bench starts its own throwaway `redis-server` on a free loopback
//! port ([`RedisServer::spawn`]; never a shared server; its pid is printed
//! for `perf`), preloads 10k keys of 100-byte values, and measures every
//! workload at concurrency 1 and 64 on a multi-thread tokio runtime with
//! 2 workers. Concurrency *c* is *c* tokio tasks sharing one store (so one
//! multiplexed connection); every raw side likewise shares one
//! `redis::aio::MultiplexedConnection` (the crate's defaults: no response
//! timeout).
//!
//! # Sides
//!
//! - **adapter**: a [`RedisStore`] used the way an emulator holds it,
//!   `Arc<dyn KvStore>` / `Arc<dyn AtomicKv>` / `Arc<dyn QueueStore>`.
//! - **raw plain**: what a user of the `redis` crate would write for the
//!   same job without the adapter: `GET` / `SET` on string keys; for CAS
//!   an `HMGET` of a `{ver, val}` hash and a minimal Lua script that
//!   checks `ver` then sets both; for the queue a minimal reliable queue
//!   (`LPUSH` send, `LMOVE` to a processing list as receive, `LREM` ack).
//! - **raw same-work**: the raw connection issuing exactly the commands
//!   the adapter issues, on the adapter's own keys: `HGET` of the key's
//!   record (and decoding it) for get; the adapter's `PUT` script by
//!   `EVALSHA` with the same keys and arguments for put; both for CAS.
//!   The script texts and key names are the adapter's own
//!   (`src/scripts.rs` and `src/keys.rs` are compiled into this bench
//!   with `#[path]`), so adapter ÷ same-work isolates the adapter's
//!   client-side cost (trait futures, validation, the `ConnectionManager`
//!   and its response timeout, spans, reply decoding).
//! - **redis-benchmark**: `redis-benchmark -t set,get -n N -c {1,64} -P 1
//!   -d 100 -r 10000 --csv` against the same server right after the KV
//!   rows (`N` sized to run about `BENCH_SECONDS`).
//!
//! Workloads: `get` and `put` (overwrite) of random keys among the 10k;
//! CAS = `get_versioned` + `put_if(Update)` (one op = the pair), each task
//! on its own keys (key index ≡ task mod c) so every CAS succeeds; queue
//! = send → receive → ack of one message. A row's sides take turns in
//! slices of about 250 ms (order rotated every round) until each had
//! `BENCH_SECONDS`, so load from other processes on a shared machine hits
//! all sides alike; each side warms up first. Every side pays the same
//! boxed future per operation.
//!
//! Besides ops/s the bench reads, per side, the CPU time of the bench
//! process (all threads, `/proc/self/task/*/schedstat`) and of the
//! `redis-server` main thread (`/proc/<pid>/schedstat`) per operation, and
//! the server's `INFO commandstats` per operation (commands run inside
//! scripts included), to show what bounds each figure.
//!
//! The queue rows need the adapter's queue tier: when the store declares
//! `queue: false` they print "n/a".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    missing_docs
)]

/// The adapter's scripts, compiled from its own source file.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/scripts.rs"]
mod scripts;

/// The adapter's key layout, compiled from its own source file.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/keys.rs"]
mod keys;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};
use storage_core::{
    AtomicKv, BatchOp, KvStore, PutMode, PutOptions, QueueConfig, QueueStore, QueueStoreExt,
    ReceiveOptions, SendMessage,
};
use storage_redis::testing::RedisServer;
use storage_redis::{RedisConfig, RedisStore};

const KEYS: usize = 10_000;
const VALUE: usize = 100;
const PREFIX: &str = "bench";
const NS: &str = "bench";
const QUEUE: &str = "bench-q";
/// Each side's time is cut into slices of about this length, and the
/// sides take turns slice by slice, so load from other processes on a
/// shared machine hits every side alike.
const SLICE: Duration = Duration::from_millis(250);
const CONCURRENCY: [usize; 2] = [1, 64];

/// What one task needs to pick its keys.
#[derive(Clone, Copy)]
struct Ctx {
    task: usize,
    conc: usize,
    i: u64,
}

impl Ctx {
    fn mixed(self) -> u64 {
        // splitmix64 of (task, i): a cheap, well-spread, deterministic
        // index sequence, identical for every side.
        let mut z = ((self.task as u64) << 40 ^ self.i).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Any of the 10k keys.
    fn any(self) -> usize {
        (self.mixed() % KEYS as u64) as usize
    }

    /// One of this task's own keys (index ≡ task mod c).
    fn own(self) -> usize {
        let per = (KEYS / self.conc) as u64;
        self.task + self.conc * (self.mixed() % per) as usize
    }
}

type BoxFut = Pin<Box<dyn Future<Output = ()> + Send>>;
/// One operation of one side. Every side pays the same boxed future.
type Op = Arc<dyn Fn(Ctx) -> BoxFut + Send + Sync>;

fn op<F, Fut>(f: F) -> Op
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |c| Box::pin(f(c)))
}

// ---------------------------------------------------------------------
// CPU and server-side accounting.
// ---------------------------------------------------------------------

/// Nanoseconds on CPU of every thread of this process.
fn client_cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Nanoseconds on CPU of the server's main thread (0 when unreadable).
fn server_cpu_ns(pid: Option<u32>) -> u64 {
    pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/schedstat")).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `INFO commandstats` as command → calls (the bench's own INFO/CONFIG
/// left out).
async fn commandstats(raw: &mut MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else {
            continue;
        };
        let Some((name, fields)) = rest.split_once(':') else {
            continue;
        };
        if name == "info" || name.starts_with("config") {
            continue;
        }
        let calls = fields
            .split(',')
            .find_map(|f| f.strip_prefix("calls="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.insert(name.to_owned(), calls);
    }
    out
}

/// Everything measured for one side of one row.
#[derive(Default, Clone)]
struct Tally {
    ops: u64,
    secs: f64,
    client_ns: u64,
    server_ns: u64,
    calls: BTreeMap<String, u64>,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn client_us(&self) -> f64 {
        self.client_ns as f64 / 1e3 / self.ops as f64
    }
    fn server_us(&self) -> f64 {
        self.server_ns as f64 / 1e3 / self.ops as f64
    }
    /// Server commands per operation, e.g. "evalsha 1.00, hget 3.00".
    fn calls_per_op(&self) -> String {
        let mut v: Vec<_> = self
            .calls
            .iter()
            .map(|(k, n)| (k.as_str(), *n as f64 / self.ops as f64))
            .filter(|(_, n)| *n >= 0.005)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.iter()
            .map(|(k, n)| format!("{k} {n:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Bench {
    budget: Duration,
    raw: MultiplexedConnection,
    server_pid: Option<u32>,
}

impl Bench {
    /// Runs `op` on `conc` tasks for `budget`; returns (ops, seconds).
    async fn drive(op: &Op, conc: usize, budget: Duration) -> (u64, f64) {
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let tasks: Vec<_> = (0..conc)
            .map(|task| {
                let (op, stop) = (op.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        op(Ctx { task, conc, i }).await;
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        tokio::time::sleep(budget).await;
        stop.store(true, Ordering::Relaxed);
        let mut ops = 0;
        for t in tasks {
            ops += t.await.unwrap();
        }
        (ops, start.elapsed().as_secs_f64())
    }

    /// Warms every side up, then lets them take turns, one [`SLICE`] each
    /// (the order rotating every round), until each had `budget`.
    async fn compare(&mut self, conc: usize, sides: &[&Op]) -> Vec<Tally> {
        for side in sides {
            Self::drive(side, conc, Duration::from_millis(200)).await;
        }
        let rounds = (self.budget.as_secs_f64() / SLICE.as_secs_f64())
            .round()
            .max(3.0) as u32;
        let slice = self.budget / rounds;
        let mut tallies = vec![Tally::default(); sides.len()];
        for round in 0..rounds as usize {
            for turn in 0..sides.len() {
                let s = (round + turn) % sides.len();
                let _: () = redis::cmd("CONFIG")
                    .arg("RESETSTAT")
                    .query_async(&mut self.raw)
                    .await
                    .unwrap();
                let (c0, s0) = (client_cpu_ns(), server_cpu_ns(self.server_pid));
                let (ops, secs) = Self::drive(sides[s], conc, slice).await;
                let (c1, s1) = (client_cpu_ns(), server_cpu_ns(self.server_pid));
                let t = &mut tallies[s];
                t.ops += ops;
                t.secs += secs;
                t.client_ns += c1.saturating_sub(c0);
                t.server_ns += s1.saturating_sub(s0);
                for (k, n) in commandstats(&mut self.raw).await {
                    *t.calls.entry(k).or_default() += n;
                }
            }
        }
        tallies
    }
}

/// One line of the results.
struct Row {
    workload: &'static str,
    conc: usize,
    /// None: the adapter lacks the tier.
    adapter: Option<Tally>,
    plain: Tally,
    same: Option<Tally>,
    /// redis-benchmark ops/s for the matching command, if any.
    benchmark: Option<f64>,
}

/// Runs `redis-benchmark -t set,get` and returns (SET, GET) ops/s.
fn redis_benchmark(port: u16, conc: usize, n: u64) -> Option<(f64, f64)> {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-t",
            "set,get",
            "-n",
            &n.to_string(),
            "-c",
            &conc.to_string(),
        ])
        .args(["-P", "1", "-d", &VALUE.to_string(), "-r", &KEYS.to_string()])
        .arg("--csv")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |test: &str| -> Option<f64> {
        text.lines().find_map(|l| {
            let mut f = l.split(',').map(|s| s.trim_matches('"'));
            (f.next()? == test).then(|| f.next()?.parse().ok())?
        })
    };
    Some((field("SET")?, field("GET")?))
}

/// The version field of a record (`<version>;<expiry>;<value>`).
fn record_version(rec: &[u8]) -> &[u8] {
    let end = rec.iter().position(|&b| b == b';').unwrap();
    &rec[..end]
}

/// The value of a record, without a copy, as the adapter returns it.
fn record_value(rec: Vec<u8>) -> Bytes {
    let first = rec.iter().position(|&b| b == b';').unwrap();
    let second = first + 1 + rec[first + 1..].iter().position(|&b| b == b';').unwrap();
    Bytes::from(rec).slice(second + 1..)
}

fn fmt_rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ratio: f64, target: f64) -> String {
    if ratio >= target {
        "met".to_owned()
    } else {
        format!("missed by {:.2}", target - ratio)
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    // BENCH_ONLY=get,put,cas,queue (any subset) runs those rows only.
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(|w| w.trim().to_lowercase()).collect());
    let wants = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    let server = RedisServer::spawn(&[]).expect("redis-server must be installed");
    let port = server.port().expect("a spawned server has a port");
    let url = server.url().to_owned();

    let store = RedisStore::connect(RedisConfig::standalone(url.clone(), PREFIX))
        .await
        .unwrap();
    let kv: Arc<dyn KvStore> = Arc::new(store.clone());
    let cas: Arc<dyn AtomicKv> = Arc::new(store.clone());
    let queue: Arc<dyn QueueStore> = Arc::new(store.clone());
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut raw)
        .await
        .unwrap();
    let server_pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok());
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();

    // ---- preload: 10k keys, 100 B values, on every side's keys ----
    let value = Bytes::from(vec![7u8; VALUE]);
    // Static keys: cloning one is free, as borrowing a raw side's String is.
    let keys: Arc<Vec<Bytes>> = Arc::new(
        (0..KEYS)
            .map(|i| {
                let k: &'static str = format!("key-{:010}", i * 7919 % KEYS).leak();
                Bytes::from_static(k.as_bytes())
            })
            .collect(),
    );
    let raw_keys: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|k| format!("raw:{}", String::from_utf8_lossy(k)))
            .collect(),
    );
    let cas_keys: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|k| format!("rawcas:{}", String::from_utf8_lossy(k)))
            .collect(),
    );
    for chunk in keys.chunks(100) {
        let ops = chunk
            .iter()
            .map(|k| BatchOp::Put {
                key: k.clone(),
                value: value.clone(),
                options: PutOptions::default(),
            })
            .collect();
        kv.write_batch(NS, ops).await.unwrap();
    }
    for (rk, ck) in raw_keys.chunks(100).zip(cas_keys.chunks(100)) {
        let mut pipe = redis::pipe();
        for (r, c) in rk.iter().zip(ck) {
            pipe.set(r, &value[..]).ignore();
            pipe.hset_multiple(c, &[("ver", &b"1"[..]), ("val", &value[..])])
                .ignore();
        }
        let _: () = pipe.query_async(&mut raw).await.unwrap();
    }
    let caps = KvStore::capabilities(&store);
    if caps.queue {
        queue
            .create_queue(QUEUE, QueueConfig::default())
            .await
            .unwrap();
    }

    // The adapter's own keys, built by its own code, for the same-work side.
    let nk = Arc::new(keys::Keys::new(PREFIX).ns(NS));
    let registry = keys::Keys::new(PREFIX).namespaces().to_owned();
    // A minimal hand-written CAS: check the version field, then set.
    let raw_cas = Arc::new(Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'ver')
if v ~= ARGV[1] then return false end
local n = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'val', ARGV[2])
return n
",
    ));
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string()
    };

    let mut bench = Bench {
        budget,
        raw: raw.clone(),
        server_pid,
    };
    let mut rows: Vec<Row> = Vec::new();
    eprintln!(
        "measuring: {secs} s per side per row, concurrency {CONCURRENCY:?}; \
         redis-server pid {server_pid:?} on port {port} ..."
    );

    for conc in CONCURRENCY {
        // ---- get ----
        if wants("get") {
            let adapter = op({
                let (kv, keys) = (kv.clone(), keys.clone());
                move |c: Ctx| {
                    let (kv, k) = (kv.clone(), keys[c.any()].clone());
                    async move {
                        std::hint::black_box(kv.get(NS, &k).await.unwrap().unwrap());
                    }
                }
            });
            let plain = op({
                let (raw, keys) = (raw.clone(), raw_keys.clone());
                move |c: Ctx| {
                    let (mut raw, keys) = (raw.clone(), keys.clone());
                    async move {
                        let v: Vec<u8> = raw.get(&keys[c.any()]).await.unwrap();
                        std::hint::black_box(v);
                    }
                }
            });
            let same = op({
                let (raw, keys, nk) = (raw.clone(), keys.clone(), nk.clone());
                move |c: Ctx| {
                    let (mut raw, k, nk) = (raw.clone(), keys[c.any()].clone(), nk.clone());
                    async move {
                        let rec: Vec<u8> = raw.hget(&nk.data, &k[..]).await.unwrap();
                        std::hint::black_box(record_value(rec));
                    }
                }
            });
            let t = bench.compare(conc, &[&adapter, &plain, &same]).await;
            rows.push(Row {
                workload: "get",
                conc,
                adapter: Some(t[0].clone()),
                plain: t[1].clone(),
                same: Some(t[2].clone()),
                benchmark: None,
            });
        }

        // ---- put (overwrite) ----
        if wants("put") {
            let adapter = op({
                let (kv, keys, value) = (kv.clone(), keys.clone(), value.clone());
                move |c: Ctx| {
                    let (kv, k, v) = (kv.clone(), keys[c.any()].clone(), value.clone());
                    async move {
                        kv.put(NS, &k, v, PutOptions::default()).await.unwrap();
                    }
                }
            });
            let plain = op({
                let (raw, keys, value) = (raw.clone(), raw_keys.clone(), value.clone());
                move |c: Ctx| {
                    let (mut raw, keys, v) = (raw.clone(), keys.clone(), value.clone());
                    async move {
                        let _: () = raw.set(&keys[c.any()], &v[..]).await.unwrap();
                    }
                }
            });
            let same = op({
                let (raw, keys, nk, value, registry) = (
                    raw.clone(),
                    keys.clone(),
                    nk.clone(),
                    value.clone(),
                    registry.clone(),
                );
                move |c: Ctx| {
                    let (mut raw, k, nk, v) = (
                        raw.clone(),
                        keys[c.any()].clone(),
                        nk.clone(),
                        value.clone(),
                    );
                    let (now, registry) = (now_ms(), registry.clone());
                    async move {
                        let mut inv = scripts::PUT.prepare_invoke();
                        for key in nk.all() {
                            inv.key(key);
                        }
                        inv.key(&registry);
                        inv.arg(now)
                            .arg(&k[..])
                            .arg(&v[..])
                            .arg("")
                            .arg("o")
                            .arg("")
                            .arg(NS);
                        let reply: Vec<Option<Vec<u8>>> = inv.invoke_async(&mut raw).await.unwrap();
                        assert_eq!(reply[0].as_deref(), Some(&b"1"[..]));
                    }
                }
            });
            let t = bench.compare(conc, &[&adapter, &plain, &same]).await;
            rows.push(Row {
                workload: "put",
                conc,
                adapter: Some(t[0].clone()),
                plain: t[1].clone(),
                same: Some(t[2].clone()),
                benchmark: None,
            });
        }

        // ---- CAS: get_versioned + put_if(Update), own keys ----
        if wants("cas") {
            let adapter = op({
                let (cas, keys, value) = (cas.clone(), keys.clone(), value.clone());
                move |c: Ctx| {
                    let (cas, k, v) = (cas.clone(), keys[c.own()].clone(), value.clone());
                    async move {
                        let cur = cas.get_versioned(NS, &k).await.unwrap().unwrap();
                        cas.put_if(
                            NS,
                            &k,
                            v,
                            PutMode::Update(cur.version),
                            PutOptions::default(),
                        )
                        .await
                        .unwrap();
                    }
                }
            });
            let plain = op({
                let (raw, keys, value, script) = (
                    raw.clone(),
                    cas_keys.clone(),
                    value.clone(),
                    raw_cas.clone(),
                );
                move |c: Ctx| {
                    let (mut raw, keys, v, script) =
                        (raw.clone(), keys.clone(), value.clone(), script.clone());
                    async move {
                        let key = &keys[c.own()];
                        let (ver, old): (String, Vec<u8>) =
                            raw.hget(key, &["ver", "val"]).await.unwrap();
                        std::hint::black_box(old);
                        let n: Option<i64> = script
                            .key(key)
                            .arg(ver)
                            .arg(&v[..])
                            .invoke_async(&mut raw)
                            .await
                            .unwrap();
                        assert!(n.is_some(), "raw CAS conflict on an owned key");
                    }
                }
            });
            let same = op({
                let (raw, keys, nk, value, registry) = (
                    raw.clone(),
                    keys.clone(),
                    nk.clone(),
                    value.clone(),
                    registry.clone(),
                );
                move |c: Ctx| {
                    let (mut raw, k, nk, v) = (
                        raw.clone(),
                        keys[c.own()].clone(),
                        nk.clone(),
                        value.clone(),
                    );
                    let registry = registry.clone();
                    async move {
                        let rec: Vec<u8> = raw.hget(&nk.data, &k[..]).await.unwrap();
                        let ver = record_version(&rec).to_owned();
                        std::hint::black_box(record_value(rec));
                        let mut inv = scripts::PUT.prepare_invoke();
                        for key in nk.all() {
                            inv.key(key);
                        }
                        inv.key(&registry);
                        inv.arg(now_ms())
                            .arg(&k[..])
                            .arg(&v[..])
                            .arg("")
                            .arg("u")
                            .arg(ver)
                            .arg(NS);
                        let reply: Vec<Option<Vec<u8>>> = inv.invoke_async(&mut raw).await.unwrap();
                        assert_eq!(reply[0].as_deref(), Some(&b"1"[..]));
                    }
                }
            });
            let t = bench.compare(conc, &[&adapter, &plain, &same]).await;
            rows.push(Row {
                workload: "CAS (get_versioned + put_if Update)",
                conc,
                adapter: Some(t[0].clone()),
                plain: t[1].clone(),
                same: Some(t[2].clone()),
                benchmark: None,
            });
        }

        // ---- queue: send -> receive -> ack, one message ----
        if !wants("queue") {
            continue;
        }
        let plain = op({
            let (raw, value) = (raw.clone(), value.clone());
            move |c: Ctx| {
                let mut raw = raw.clone();
                // A unique 100-byte body, so LREM acks exactly this message.
                let mut body = format!("{:08}-{:012}-", c.task, c.i).into_bytes();
                body.extend_from_slice(&value[..VALUE - body.len()]);
                async move {
                    let _: i64 = raw.lpush("rawq", &body).await.unwrap();
                    let got: Option<Vec<u8>> = raw
                        .lmove(
                            "rawq",
                            "rawq:processing",
                            redis::Direction::Right,
                            redis::Direction::Left,
                        )
                        .await
                        .unwrap();
                    if let Some(m) = got {
                        let _: i64 = raw.lrem("rawq:processing", 1, m).await.unwrap();
                    }
                }
            }
        });
        if caps.queue {
            let adapter = op({
                let (q, value) = (queue.clone(), value.clone());
                move |_c: Ctx| {
                    let (q, v) = (q.clone(), value.clone());
                    async move {
                        q.send(QUEUE, SendMessage::new(v)).await.unwrap();
                        let got = q.receive(QUEUE, ReceiveOptions::default()).await.unwrap();
                        // Each task sends before it receives, so a message
                        // is always visible; tolerate none anyway.
                        if let Some(m) = got.first() {
                            q.ack(QUEUE, &m.receipt).await.unwrap();
                        }
                    }
                }
            });
            let t = bench.compare(conc, &[&adapter, &plain]).await;
            rows.push(Row {
                workload: "queue send→receive→ack (1 msg)",
                conc,
                adapter: Some(t[0].clone()),
                plain: t[1].clone(),
                same: None,
                benchmark: None,
            });
        } else {
            let t = bench.compare(conc, &[&plain]).await;
            rows.push(Row {
                workload: "queue send→receive→ack (1 msg)",
                conc,
                adapter: None,
                plain: t[0].clone(),
                same: None,
                benchmark: None,
            });
        }
    }

    // ---- redis-benchmark at the same concurrencies, same server ----
    for conc in CONCURRENCY {
        if !(wants("get") || wants("put")) {
            break;
        }
        let get_rate = rows
            .iter()
            .find(|r| r.workload == "get" && r.conc == conc)
            .map_or(50_000.0, |r| r.plain.rate());
        let n = ((get_rate * secs) as u64).max(10_000);
        match redis_benchmark(port, conc, n) {
            Some((set, get)) => {
                for r in rows.iter_mut().filter(|r| r.conc == conc) {
                    match r.workload {
                        "get" => r.benchmark = Some(get),
                        "put" => r.benchmark = Some(set),
                        _ => {}
                    }
                }
            }
            None => eprintln!("redis-benchmark did not run or its output did not parse"),
        }
    }

    // ---- report ----
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "### storage-redis vs raw `redis` 0.32 vs redis-benchmark (redis-server {version}, \
         loopback, 100 B values, 10k keys, 2 tokio workers, {secs} s per side)"
    );
    println!();
    println!(
        "| workload | c | adapter ops/s | raw plain ops/s | adapter ÷ raw plain | target ≥ 0.9 \
         | raw same-work ops/s | adapter ÷ same-work | redis-benchmark ops/s \
         | adapter ÷ redis-benchmark | raw plain ÷ redis-benchmark |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        let plain = r.plain.rate();
        let (a, ratio, verdict_s) = match &r.adapter {
            Some(a) => {
                let ratio = a.rate() / plain;
                (
                    fmt_rate(a.rate()),
                    format!("{ratio:.2}"),
                    verdict(ratio, 0.9),
                )
            }
            None => (
                "n/a (queue tier not implemented)".to_owned(),
                "n/a".to_owned(),
                "n/a".to_owned(),
            ),
        };
        let (same, same_ratio) = match (&r.same, &r.adapter) {
            (Some(s), Some(a)) => (fmt_rate(s.rate()), format!("{:.2}", a.rate() / s.rate())),
            _ => ("–".to_owned(), "–".to_owned()),
        };
        let (bm, bm_a, bm_r) = match (r.benchmark, &r.adapter) {
            (Some(b), Some(a)) => (
                fmt_rate(b),
                format!("{:.2}", a.rate() / b),
                format!("{:.2}", plain / b),
            ),
            _ => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {} | {} | {a} | {} | {ratio} | {verdict_s} | {same} | {same_ratio} | {bm} | {bm_a} | {bm_r} |",
            r.workload,
            r.conc,
            fmt_rate(plain),
        );
    }
    println!();
    println!("Cost per operation (CPU µs of the bench process / of redis-server's main thread; server commands per op, script-internal calls included):");
    println!();
    println!("| workload | c | side | client µs/op | server µs/op | server commands per op |");
    println!("|---|---:|---|---:|---:|---|");
    for r in &rows {
        let sides = [
            ("adapter", r.adapter.as_ref()),
            ("raw plain", Some(&r.plain)),
            ("raw same-work", r.same.as_ref()),
        ];
        for (name, t) in sides {
            if let Some(t) = t {
                println!(
                    "| {} | {} | {name} | {:.1} | {:.1} | {} |",
                    r.workload,
                    r.conc,
                    t.client_us(),
                    t.server_us(),
                    t.calls_per_op()
                );
            }
        }
    }
    println!();
    println!("load average at the end: {}", load.trim());
    drop(server);
}
