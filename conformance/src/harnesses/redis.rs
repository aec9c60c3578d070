//! The Redis backend's harness.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway `redis-server`
//! on a free loopback port (no persistence) the first time a fixture is
//! opened, and stops it when the harness is dropped. Each fixture gets a
//! unique key prefix and is deleted on close, so tests never see each
//! other or whatever else lives on a shared server. If neither works the
//! cases FAIL with the reason: an unreachable backend is not a skip.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use storage_core::{Capabilities, ManualClock};
use storage_redis::{RedisConfig, RedisStore};

use crate::harness::{Fixture, Harness};

/// A server the harness talks to, and the process it started (if any).
#[derive(Debug)]
struct Server {
    url: String,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the suite on [`RedisStore`] (standalone).
#[derive(Debug, Default)]
pub struct RedisHarness {
    server: OnceLock<Result<Server, String>>,
    /// Stores of open fixtures, by the address of their KV handle, so
    /// `close` can delete their keys.
    open: Mutex<HashMap<usize, RedisStore>>,
    next: AtomicU64,
}

impl RedisHarness {
    /// A harness that connects lazily.
    pub fn new() -> Self {
        RedisHarness::default()
    }

    fn server(&self) -> Result<&Server, String> {
        self.server
            .get_or_init(start_server)
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn start_server() -> Result<Server, String> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok(Server { url, child: None });
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("REDIS_URL is unset and redis-server could not be started ({e}); install redis-server")
        })?;
    let server = Server {
        url: format!("redis://127.0.0.1:{port}/"),
        child: Some(child),
    };
    // Wait (bounded) until it answers PING.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ping(port) {
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server on port {port} did not answer within 10 s"
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

#[async_trait]
impl Harness for RedisHarness {
    fn name(&self) -> String {
        "redis".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_redis::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let url = self.server()?.url.clone();
        let prefix = format!(
            "cf-{}-{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let clock = ManualClock::default();
        let store = RedisStore::connect_with_clock(
            RedisConfig::standalone(url, prefix),
            Arc::new(clock.clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
        let kv: Arc<dyn storage_core::KvStore> = Arc::new(store.clone());
        self.open
            .lock()
            .insert(Arc::as_ptr(&kv).cast::<()>() as usize, store.clone());
        Ok(Fixture {
            clock,
            kv: Some(kv),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        })
    }

    async fn close(&self, fixture: Fixture) {
        let Some(kv) = &fixture.kv else { return };
        let key = Arc::as_ptr(kv).cast::<()>() as usize;
        let store = self.open.lock().remove(&key);
        if let Some(store) = store {
            // Best effort: a case that stopped the server has nothing left.
            let _ = store.destroy().await;
        }
    }
}
