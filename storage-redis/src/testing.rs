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
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let port = free_port()?;
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

/// A Redis Cluster of three masters on loopback: one this module started
/// (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`),
/// or the nodes `REDIS_CLUSTER_URLS` names.
#[derive(Debug)]
pub struct RedisCluster {
    urls: Vec<String>,
    nodes: Vec<RedisServer>,
    /// Holds the nodes' `nodes.conf` files.
    dir: Option<PathBuf>,
}

impl RedisCluster {
    /// The seed node URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
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
