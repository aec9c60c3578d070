//! The CAS race over real, separate connections: 8 tasks, each with a
//! `RedisStore` of its own (its own connection) on one prefix, each doing
//! 100 read → conditional write → retry-on-conflict increments of one
//! counter; the counter ends at exactly 800. On a standalone server and on
//! a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{b, cluster, clustered, increment, server, standalone, unique_prefix};
use storage_core::{KvStore, ManualClock};
use storage_redis::RedisStore;

const TASKS: usize = 8;
const INCREMENTS: usize = 100;

/// Runs the race on the stores (one per task) and checks the total;
/// returns how many attempts were needed overall.
async fn race(stores: Vec<RedisStore>) -> usize {
    assert_eq!(stores.len(), TASKS);
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                let mut attempts = 0;
                for _ in 0..INCREMENTS {
                    attempts += increment(&store, "race", b"counter").await.unwrap();
                }
                attempts
            })
        })
        .collect();
    let mut attempts = 0;
    for t in tasks {
        attempts += t.await.unwrap();
    }
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_connections_race_to_exactly_800_on_a_standalone_server() {
    let server = server();
    let prefix = unique_prefix("race");
    let clock = ManualClock::at_fixed_start();
    let mut stores = Vec::new();
    for _ in 0..TASKS {
        stores.push(standalone(server.url(), &prefix, &clock).await);
    }
    let check = stores[0].clone();
    let attempts = race(stores).await;
    assert!(attempts >= TASKS * INCREMENTS);
    assert_eq!(
        check.get("race", b"counter").await.unwrap(),
        Some(b(&(TASKS * INCREMENTS).to_string()))
    );
    check.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_connections_race_to_exactly_800_on_a_cluster() {
    let cluster = cluster();
    let prefix = unique_prefix("racec");
    let clock = ManualClock::at_fixed_start();
    let mut stores = Vec::new();
    for _ in 0..TASKS {
        stores.push(clustered(cluster.urls(), &prefix, &clock).await);
    }
    let check = stores[0].clone();
    let attempts = race(stores).await;
    assert!(attempts >= TASKS * INCREMENTS);
    assert_eq!(
        check.get("race", b"counter").await.unwrap(),
        Some(b(&(TASKS * INCREMENTS).to_string()))
    );
    check.destroy().await.unwrap();
}
