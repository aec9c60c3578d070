//! The store handle and its connection.
//!
//! One multiplexed connection per store (a `ConnectionManager` on a
//! standalone server, a `ClusterConnection` on a cluster): concurrent
//! calls pipeline over it, and it reconnects by itself after the server
//! comes back. While the server is down, calls fail with a retryable
//! `Unavailable`; the store never needs recreating.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use storage_core::{Capabilities, Context, Error, Result, SharedClock, SystemClock};

use crate::config::{RedisConfig, Target, BACKEND, CAPABILITIES, CLUSTER_CAPABILITIES};
use crate::error::map_err;
use crate::keys::Keys;

/// A standalone or cluster connection; cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A Redis store: KV, CAS, transactions, TTL and queues, every
/// read-modify-write one server-side Lua script (`EVALSHA`, reloaded on
/// `NOSCRIPT`).
///
/// Cheap to clone; clones share the connection. Two stores with the same
/// prefix on the same server share their data.
#[derive(Clone, Debug)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    pub(crate) clock: SharedClock,
    pub(crate) caps: Capabilities,
    pub(crate) queues: crate::queue::Queues,
    /// Version blocks reserved for this store's writes (`versions.rs`).
    pub(crate) versions: crate::versions::Versions,
}

impl RedisStore {
    /// Connects on the system clock.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        RedisStore::connect_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Connects, reading time from `clock`. Scripts receive "now" from it
    /// (never Redis `TIME`), so a manual clock drives expiry in tests.
    pub async fn connect_with_clock(config: RedisConfig, clock: SharedClock) -> Result<Self> {
        let ctx = || Context::new("connect", BACKEND);
        storage_core::validate::namespace(&ctx(), &CAPABILITIES, &config.prefix)?;
        // Namespace keys are tagged `{<prefix>/<namespace>}`: with a `/` in
        // the prefix, prefix `p` + namespace `x/y` and prefix `p/x` +
        // namespace `y` would be the same keys, and `destroy()` of `p`
        // would take `p/x`'s data with it.
        if config.prefix.contains('/') {
            return Err(Error::invalid(
                ctx(),
                format!(
                    "store prefix {:?} contains '/', which separates the prefix from namespace names",
                    config.prefix
                ),
            ));
        }
        let listen_urls = match &config.target {
            Target::Standalone(url) => vec![url.clone()],
            Target::Cluster(nodes) => nodes.clone(),
        };
        let (conn, caps) = match &config.target {
            Target::Standalone(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| Error::invalid(ctx(), format!("bad Redis URL: {e}")))?;
                // Reconnect backoff (backon): first delay 1 s, then times
                // `factor`, capped by `max_delay` (ms), each up to doubled by
                // jitter. The crate's default factor (100) makes the second
                // delay 60-120 s, and every call waits for the reconnect:
                // calls hung for minutes while the server was down.
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(Duration::from_secs(5))
                    .set_number_of_retries(2)
                    .set_factor(2)
                    .set_max_delay(1_000);
                let manager = ConnectionManager::new_with_config(client, cfg)
                    .await
                    .map_err(|e| map_err(ctx(), e))?;
                (Conn::Single(manager), CAPABILITIES)
            }
            Target::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| Error::invalid(ctx(), format!("bad cluster nodes: {e}")))?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|e| map_err(ctx(), e))?;
                (Conn::Cluster(conn), CLUSTER_CAPABILITIES)
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                keys: Keys::new(&config.prefix),
                clock,
                caps,
                queues: crate::queue::Queues::new(&config.prefix, listen_urls),
                versions: crate::versions::Versions::default(),
            }),
        })
    }

    /// "Now" by the store clock, in ms, as scripts receive it.
    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now().as_millis()
    }

    /// A connection handle for one call.
    pub(crate) fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }
}
