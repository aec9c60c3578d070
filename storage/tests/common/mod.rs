//! What the façade's tests share: a scratch directory and the servers a
//! test needs, started per test (throwaway `redis-server` / `moto_server`
//! on free loopback ports, or `REDIS_URL` / `S3_ENDPOINT`) and stopped
//! when the `Env` is dropped. A server that cannot be started fails the
//! test: an unreachable backend is not a skip.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use storage_redis::testing::RedisServer;
use storage_remote::testing::S3Server;

/// Every backend URL family the façade opens, by the name the tests use.
pub const BACKENDS: [&str; 5] = ["memory", "sqlite", "redis", "duckdb", "remote"];

/// Backends with a queue tier.
pub fn has_queues(backend: &str) -> bool {
    matches!(backend, "memory" | "sqlite" | "redis")
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub redis: Option<RedisServer>,
    pub s3: Option<(S3Server, String)>,
    next: AtomicU64,
}

impl Env {
    /// An environment with the servers `backends` need.
    pub fn new(backends: &[&str]) -> Env {
        let redis = backends.contains(&"redis").then(|| {
            RedisServer::start().unwrap_or_else(|e| panic!("no Redis server for the test: {e}"))
        });
        let s3 = backends.contains(&"s3").then(|| {
            let server =
                S3Server::start().unwrap_or_else(|e| panic!("no S3 server for the test: {e}"));
            let bucket = storage_remote::testing::unique_name("facade");
            server
                .create_bucket(&bucket)
                .unwrap_or_else(|e| panic!("cannot create the test bucket: {e}"));
            (server, bucket)
        });
        Env {
            dir: tempfile::tempdir().expect("a temporary directory"),
            redis,
            s3,
            next: AtomicU64::new(0),
        }
    }

    /// A fresh, empty store URL of `backend`, unique within this test.
    pub fn url(&self, backend: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let tag = format!("t{}-{n}", std::process::id());
        let dir = self.dir.path().display();
        match backend {
            "memory" => "memory://".to_owned(),
            "sqlite" => format!("sqlite://{dir}/{tag}.sqlite?durability=normal"),
            "duckdb" => format!("duckdb://{dir}/{tag}.duckdb"),
            "remote" => format!("file://{dir}/{tag}"),
            "redis" => {
                let server = self.redis.as_ref().expect("Env::new(&[\"redis\"])");
                format!("{}?prefix=facade-{tag}", server.url())
            }
            "s3" => {
                let (server, bucket) = self.s3.as_ref().expect("Env::new(&[\"s3\"])");
                format!(
                    "s3://{bucket}/{tag}?endpoint={}&region=us-east-1",
                    server.endpoint()
                )
            }
            other => panic!("unknown test backend {other}"),
        }
    }

    /// Environment variables a child `storage` process needs for S3.
    pub fn s3_credentials() -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
    }
}

/// Tests that open `s3://` URLs in-process need credentials in the
/// environment (moto accepts any).
pub fn set_s3_credentials() {
    for (k, v) in Env::s3_credentials() {
        if std::env::var(k).is_err() {
            std::env::set_var(k, v);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((server, bucket)) = &self.s3 {
            // Objects are removed by each test's destroy; best effort.
            server.delete_bucket(bucket);
        }
    }
}
