//! Throwaway Redis servers for tests and benchmarks: the one place that
//! starts `redis-server` processes (the conformance harness, this crate's
//! integration tests and its benchmark all use it).
//!
//! Servers listen on a free loopback port, keep nothing on disk unless
//! asked, and are killed when dropped. `REDIS_URL` / `REDIS_CLUSTER_URLS`
//! (comma-separated node URLs) select an existing server instead; callers
//! then isolate themselves with a unique key prefix.
//!
//! Never the machine's shared server on 6379: ports come from the kernel.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a started server gets to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A standalone server: one this module started, or the one `REDIS_URL`
/// names.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    port: Option<u16>,
    child: Option<Child>,
    /// Extra `redis-server` arguments, kept for [`RedisServer::restart`].
    args: Vec<String>,
}

impl RedisServer {
    /// `REDIS_URL` when set, else a fresh server (see [`RedisServer::spawn`]).
    pub fn start() -> Result<RedisServer, String> {
        match std::env::var("REDIS_URL") {
            Ok(url) => Ok(RedisServer {
                url,
                port: None,
                child: None,
                args: Vec::new(),
            }),
            Err(_) => RedisServer::spawn(&[]),
        }
    }

    /// Always a fresh `redis-server` on a free loopback port, without
    /// persistence, plus `extra` arguments (e.g. `["--appendonly", "yes",
    /// "--dir", path]` for a server whose data survives a restart).
    pub fn spawn(extra: &[&str]) -> Result<RedisServer, String> {
        RedisServer::spawn_on(free_port()?, extra)
    }

    /// A fresh server on `port` (a free one) with `extra` arguments.
    fn spawn_on(port: u16, extra: &[&str]) -> Result<RedisServer, String> {
        let mut server = RedisServer {
            url: format!("redis://127.0.0.1:{port}/"),
            port: Some(port),
            child: None,
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<(), String> {
        let port = self.port.ok_or("an external server cannot be started")?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| {
            format!(
                "redis-server could not be started ({e}); install redis-server or set REDIS_URL"
            )
        })?;
        self.child = Some(child);
        wait_for_ping(port)
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port of a server this module started.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Kills a server this module started (no-op for `REDIS_URL`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again on the same port with the same
    /// arguments.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port, chosen by the kernel.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Waits (bounded) until the server on `port` answers `PING`.
pub(crate) fn wait_for_ping(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if ping(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server on port {port} did not answer within {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// How long a started cluster gets to report `cluster_state:ok` on every
/// node (and `redis-cli --cluster create` to finish).
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(20);

/// Slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// Masters of a started cluster.
const CLUSTER_NODES: usize = 3;

/// A Redis Cluster of three masters on loopback: one this module started
/// (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`),
/// or the nodes `REDIS_CLUSTER_URLS` names.
#[derive(Debug)]
pub struct RedisCluster {
    urls: Vec<String>,
    nodes: Vec<RedisServer>,
    /// Holds the nodes' `nodes-<port>.conf` files; removed on drop.
    dir: Option<PathBuf>,
}

impl RedisCluster {
    /// The nodes `REDIS_CLUSTER_URLS` names (comma-separated) when set,
    /// else a fresh cluster (see [`RedisCluster::spawn`]). Either way it
    /// returns once every node reports `cluster_state:ok` with all slots
    /// assigned, or with an error saying why not.
    pub fn start() -> Result<RedisCluster, String> {
        let Ok(list) = std::env::var("REDIS_CLUSTER_URLS") else {
            return RedisCluster::spawn();
        };
        let urls: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err("REDIS_CLUSTER_URLS is set but names no node".to_owned());
        }
        wait_for_cluster(&urls, None)?;
        Ok(RedisCluster {
            urls,
            nodes: Vec::new(),
            dir: None,
        })
    }

    /// Always a fresh cluster: three masters (no replicas) on free
    /// loopback ports, their cluster config files in a temporary directory
    /// of their own, joined by `redis-cli --cluster create`. Needs
    /// `redis-server` and `redis-cli` (Debian: redis-server, redis-tools).
    pub fn spawn() -> Result<RedisCluster, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "storage-redis-cluster-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // From here on, dropping `cluster` stops what was started and
        // removes the directory, on every error path too.
        let mut cluster = RedisCluster {
            urls: Vec::new(),
            nodes: Vec::new(),
            dir: Some(dir.clone()),
        };
        let dir_arg = dir.to_string_lossy().into_owned();
        for _ in 0..CLUSTER_NODES {
            let port = cluster_port()?;
            let conf = dir.join(format!("nodes-{port}.conf"));
            let conf = conf.to_string_lossy().into_owned();
            let node = RedisServer::spawn_on(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "5000",
                    "--dir",
                    &dir_arg,
                ],
            )?;
            cluster.urls.push(node.url().to_owned());
            cluster.nodes.push(node);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .filter_map(RedisServer::port)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        create_cluster(&dir, &addrs)?;
        wait_for_cluster(&cluster.urls, Some(CLUSTER_NODES))?;
        Ok(cluster)
    }

    /// The seed node URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URLs of every master, as the cluster reports them
    /// (`CLUSTER SLOTS`, asked of the first seed that answers).
    pub fn primaries(&self) -> Result<Vec<String>, String> {
        let mut last = "no seed node".to_owned();
        for url in &self.urls {
            match slot_owners(url) {
                Ok(ranges) => {
                    let mut out: Vec<String> = ranges.into_iter().map(|(_, _, u)| u).collect();
                    out.sort();
                    out.dedup();
                    return Ok(out);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The URL of the master that owns `key`'s slot (`CLUSTER KEYSLOT` +
    /// `CLUSTER SLOTS`).
    pub fn owner_of(&self, key: &[u8]) -> Result<String, String> {
        let url = self.urls.first().ok_or("no seed node")?;
        let mut con = connect(url)?;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .map_err(|e| format!("CLUSTER KEYSLOT on {url}: {e}"))?;
        slot_owners(url)?
            .into_iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, owner)| owner)
            .ok_or_else(|| format!("no master owns slot {slot}"))
    }

    /// Every key matching the glob `pattern` on every master.
    pub fn keys_matching(&self, pattern: &str) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        for url in self.primaries()? {
            out.extend(keys_matching(&url, pattern)?);
        }
        Ok(out)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Every key matching the glob `pattern` on the one server at `url`
/// (`SCAN MATCH`, never `KEYS`).
pub fn keys_matching(url: &str, pattern: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut con = connect(url)?;
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .map_err(|e| format!("SCAN on {url}: {e}"))?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// A synchronous connection with short timeouts, for setup and checks.
fn connect(url: &str) -> Result<redis::Connection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url}: {e}"))?;
    let con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| con.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| format!("cannot set timeouts on {url}: {e}"))?;
    Ok(con)
}

/// `(first slot, last slot, master URL)` per range, from `CLUSTER SLOTS`
/// asked of `url`.
fn slot_owners(url: &str) -> Result<Vec<(u16, u16, String)>, String> {
    let mut con = connect(url)?;
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .map_err(|e| format!("CLUSTER SLOTS on {url}: {e}"))?;
    let bad = || format!("unexpected CLUSTER SLOTS reply from {url}");
    let mut out = Vec::new();
    for range in ranges {
        let redis::Value::Array(fields) = range else {
            return Err(bad());
        };
        let [lo, hi, master, ..] = fields.as_slice() else {
            return Err(bad());
        };
        let lo: u16 = redis::from_redis_value(lo).map_err(|_| bad())?;
        let hi: u16 = redis::from_redis_value(hi).map_err(|_| bad())?;
        let (host, port): (String, u16) = match master {
            redis::Value::Array(m) => match m.as_slice() {
                [host, port, ..] => (
                    redis::from_redis_value(host).map_err(|_| bad())?,
                    redis::from_redis_value(port).map_err(|_| bad())?,
                ),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        out.push((lo, hi, format!("redis://{host}:{port}/")));
    }
    Ok(out)
}

/// A free loopback port whose cluster bus port (+10000) is free too.
fn cluster_port() -> Result<u16, String> {
    for _ in 0..100 {
        let port = free_port()?;
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port pair (port, port + 10000) for a cluster node".to_owned())
}

/// Runs `redis-cli --cluster create` on `addrs` (bounded), its output
/// going to a log file in `dir` that an error quotes.
fn create_cluster(dir: &Path, addrs: &[String]) -> Result<(), String> {
    let log_path = dir.join("cluster-create.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let err_log = log
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log_path.display()))?;
    let mut child = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log))
        .spawn()
        .map_err(|e| {
            format!(
                "redis-cli could not be started ({e}); install redis-tools (Debian) or set REDIS_CLUSTER_URLS"
            )
        })?;
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-cli --cluster create did not finish within {CLUSTER_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("cannot wait for redis-cli: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    Err(format!(
        "redis-cli --cluster create failed ({status}): {}",
        output.trim()
    ))
}

/// Waits (bounded) until every node of `urls` reports `cluster_state:ok`
/// with all slots assigned (and, for a cluster this module started, knows
/// `nodes` nodes).
fn wait_for_cluster(urls: &[String], nodes: Option<usize>) -> Result<(), String> {
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut pending: Vec<&String> = urls.iter().collect();
    loop {
        let mut last = String::new();
        pending.retain(|url| match cluster_ready(url, nodes) {
            Ok(()) => false,
            Err(e) => {
                last = e;
                true
            }
        });
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the Redis cluster was not ready within {CLUSTER_TIMEOUT:?}: {last}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the node at `url` reports a healthy, fully assigned cluster.
fn cluster_ready(url: &str, nodes: Option<usize>) -> Result<(), String> {
    let mut con = connect(url)?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut con)
        .map_err(|e| format!("CLUSTER INFO on {url}: {e}"))?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or("")
            .to_owned()
    };
    let state = field("cluster_state");
    let assigned = field("cluster_slots_assigned");
    let known = field("cluster_known_nodes");
    let nodes_ok = nodes.is_none_or(|n| known == n.to_string());
    if state == "ok" && assigned == SLOTS.to_string() && nodes_ok {
        Ok(())
    } else {
        Err(format!(
            "{url}: cluster_state:{state}, cluster_slots_assigned:{assigned}, cluster_known_nodes:{known}"
        ))
    }
}
