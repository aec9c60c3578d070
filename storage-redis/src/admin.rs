//! Administrative operations on a whole store (not part of any tier).

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Value};
use storage_core::{Context, Error, Result};

use crate::backend::{Conn, RedisStore};
use crate::config::BACKEND;
use crate::error::map_err;

/// Keys a `SCAN` step asks for.
const SCAN_COUNT: usize = 500;

fn ctx() -> Context {
    Context::new("destroy", BACKEND)
}

/// `SCAN <cursor> MATCH <pattern> COUNT ..`.
fn scan_cmd(cursor: u64, pattern: &str) -> Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

impl RedisStore {
    /// Deletes every key of this store's prefix (test cleanup; the
    /// namespace counters go too, so only use it on a store being
    /// discarded). Uses `SCAN`, never `KEYS`.
    ///
    /// On a standalone server it scans that server. On a cluster it scans
    /// every master the cluster connection knows (each owns a share of the
    /// namespaces' hash tags) and deletes each key through normal slot
    /// routing. It fails with a retryable [`Error::Unavailable`] when a
    /// master cannot be reached or when `CLUSTER SLOTS` names more masters
    /// than the connection reaches, rather than report a partial cleanup
    /// as done. Keys written concurrently with the call may survive it.
    pub async fn destroy(&self) -> Result<()> {
        // The counters go: numbers reserved from them must not be used.
        self.inner.versions.clear();
        match self.conn() {
            Conn::Single(mut conn) => {
                for pattern in self.inner.keys.patterns() {
                    let mut cursor = 0;
                    loop {
                        let (next, keys): (u64, Vec<Vec<u8>>) = scan_cmd(cursor, &pattern)
                            .query_async(&mut conn)
                            .await
                            .map_err(|e| map_err(ctx(), e))?;
                        if !keys.is_empty() {
                            let _: i64 = redis::cmd("DEL")
                                .arg(&keys)
                                .query_async(&mut conn)
                                .await
                                .map_err(|e| map_err(ctx(), e))?;
                        }
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
                Ok(())
            }
            Conn::Cluster(mut cluster) => {
                for (host, port) in primaries(&mut cluster).await? {
                    let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port,
                    });
                    for pattern in self.inner.keys.patterns() {
                        let mut cursor = 0;
                        loop {
                            let reply = cluster
                                .route_command(&scan_cmd(cursor, &pattern), node.clone())
                                .await
                                .map_err(|e| map_err(ctx(), e))?;
                            let (next, keys): (u64, Vec<Vec<u8>>) =
                                redis::from_owned_redis_value(reply)
                                    .map_err(|e| map_err(ctx(), e))?;
                            // One key per DEL: keys of different slots
                            // cannot share a command on a cluster.
                            for key in keys {
                                let _: i64 = redis::cmd("DEL")
                                    .arg(&key)
                                    .query_async(&mut cluster)
                                    .await
                                    .map_err(|e| map_err(ctx(), e))?;
                            }
                            if next == 0 {
                                break;
                            }
                            cursor = next;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// `(host, port)` of every master, as the cluster connection addresses
/// them, checked against the number of masters `CLUSTER SLOTS` reports.
async fn primaries(cluster: &mut ClusterConnection) -> Result<Vec<(String, u16)>> {
    let unavailable = |why: String| Error::Unavailable {
        ctx: ctx(),
        source: why.into(),
    };
    // A multi-node command without a response policy answers a map of
    // node address ("host:port") to that node's reply.
    let reply = cluster
        .route_command(
            &redis::cmd("PING"),
            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
        )
        .await
        .map_err(|e| map_err(ctx(), e))?;
    let Value::Map(replies) = reply else {
        return Err(malformed());
    };
    let mut nodes = Vec::with_capacity(replies.len());
    for (addr, _) in replies {
        let addr: String = redis::from_owned_redis_value(addr).map_err(|e| map_err(ctx(), e))?;
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(malformed)?;
        nodes.push((host, port));
    }
    let slots = cluster
        .route_command(
            &redis::cmd("CLUSTER").arg("SLOTS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
        )
        .await
        .map_err(|e| map_err(ctx(), e))?;
    let masters = distinct_masters(slots).ok_or_else(malformed)?;
    if nodes.len() < masters {
        return Err(unavailable(format!(
            "the cluster has {masters} masters but only {} are connected",
            nodes.len()
        )));
    }
    Ok(nodes)
}

/// How many distinct masters a `CLUSTER SLOTS` reply names.
fn distinct_masters(slots: Value) -> Option<usize> {
    let Value::Array(ranges) = slots else {
        return None;
    };
    let mut ids = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return None;
        };
        let Value::Array(master) = fields.get(2)? else {
            return None;
        };
        // host, port, node id: the id names a master however it is
        // addressed; without one (old servers), host and port do.
        let id = match master.get(2) {
            Some(id) => redis::from_redis_value::<Vec<u8>>(id).ok()?,
            None => format!("{:?}", master.get(..2)?).into_bytes(),
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Some(ids.len())
}

fn malformed() -> Error {
    Error::Backend {
        ctx: ctx(),
        source: "unexpected reply shape from the cluster".into(),
    }
}
