//! The store on a three-master Redis Cluster: namespaces spread over the
//! masters (checked with `CLUSTER KEYSLOT` + `CLUSTER SLOTS`, not
//! assumed), KV and CAS work on every one, transactions are refused across
//! namespaces and commit within one (`CLUSTER_CAPABILITIES`), and
//! `destroy()` cleans every master.
//!
//! Each test starts its own cluster through `storage_redis::testing`
//! (or uses `REDIS_CLUSTER_URLS`, with a unique prefix).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::{b, cluster, cluster_keys_of, clustered, unique_prefix};
use storage_core::{
    AtomicKv, Condition, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest,
    TransactionScope, TxOp,
};
use storage_redis::testing::RedisCluster;

/// Namespaces used by the spread tests; enough that they cannot all hash
/// to one master.
fn namespaces() -> Vec<String> {
    (0..24).map(|i| format!("ns-{i}")).collect()
}

/// The master owning each namespace's keys, found from the keys that
/// really exist on the cluster (every key of one namespace must live on
/// one master).
fn owners(cluster: &RedisCluster, prefix: &str, nss: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for ns in nss {
        let keys = cluster
            .keys_matching(&format!("{{{prefix}/{ns}}}*"))
            .unwrap();
        assert!(!keys.is_empty(), "namespace {ns} has no keys");
        let owners: BTreeSet<String> = keys.iter().map(|k| cluster.owner_of(k).unwrap()).collect();
        assert_eq!(owners.len(), 1, "keys of {ns} on several masters");
        out.insert(ns.clone(), owners.into_iter().next().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_and_cas_work_on_namespaces_spread_over_the_masters() {
    let cluster = cluster();
    let prefix = unique_prefix("cl");
    let clock = ManualClock::at_fixed_start();
    let store = clustered(cluster.urls(), &prefix, &clock).await;
    assert_eq!(
        KvStore::capabilities(&store),
        storage_redis::CLUSTER_CAPABILITIES
    );
    let nss = namespaces();
    for ns in &nss {
        for i in 0..5 {
            store
                .put(
                    ns,
                    format!("k{i}").as_bytes(),
                    b(&format!("{ns}={i}")),
                    PutOptions::default(),
                )
                .await
                .unwrap();
        }
    }

    let owners = owners(&cluster, &prefix, &nss);
    let distinct: BTreeSet<&String> = owners.values().collect();
    assert!(
        distinct.len() >= 2,
        "all namespaces on one master: {owners:?}"
    );

    for ns in &nss {
        assert_eq!(
            store.get(ns, b"k3").await.unwrap(),
            Some(b(&format!("{ns}=3")))
        );
        let many = store
            .get_many(ns, &[b("k0"), b("nope"), b("k4")])
            .await
            .unwrap();
        assert_eq!(
            many,
            [
                Some(b(&format!("{ns}=0"))),
                None,
                Some(b(&format!("{ns}=4")))
            ]
        );
        // Paged scan in both directions, nothing from other namespaces.
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .scan(ns, ScanRequest::all().with_limit(2).with_cursor(cursor))
                .await
                .unwrap();
            keys.extend(page.entries.iter().map(|e| e.key.clone()));
            assert!(page
                .entries
                .iter()
                .all(|e| e.value.starts_with(ns.as_bytes())));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"].map(b));
        let rev = store
            .scan(ns, ScanRequest::all().reversed().with_limit(2))
            .await
            .unwrap();
        let rev: Vec<Bytes> = rev.entries.into_iter().map(|e| e.key).collect();
        assert_eq!(rev, [b("k4"), b("k3")]);

        // CAS: create-only, update by version, stale token conflicts.
        let v1 = store
            .put_if(ns, b"cas", b("1"), PutMode::Create, PutOptions::default())
            .await
            .unwrap();
        let again = store
            .put_if(ns, b"cas", b("x"), PutMode::Create, PutOptions::default())
            .await;
        assert!(
            matches!(&again, Err(Error::Conflict { current: Some(c), .. }) if *c == v1),
            "{again:?}"
        );
        let v2 = store
            .put_if(
                ns,
                b"cas",
                b("2"),
                PutMode::Update(v1.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        assert_ne!(v1, v2);
        let stale = store
            .put_if(
                ns,
                b"cas",
                b("3"),
                PutMode::Update(v1.clone()),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(&stale, Err(Error::Conflict { current: Some(c), .. }) if *c == v2),
            "{stale:?}"
        );
        assert!(matches!(
            store.delete_if(ns, b"cas", &v1).await,
            Err(Error::Conflict { .. })
        ));
        let got = store.get_versioned(ns, b"cas").await.unwrap().unwrap();
        assert_eq!((got.value, got.version.clone()), (b("2"), v2.clone()));
        store.delete_if(ns, b"cas", &v2).await.unwrap();
        assert!(store.delete(ns, b"k0").await.unwrap());
        assert!(!store.delete(ns, b"k0").await.unwrap());
    }

    let mut listed = store.list_namespaces().await.unwrap();
    listed.sort();
    let mut want = nss.clone();
    want.sort();
    assert_eq!(listed, want);
    assert!(store.drop_namespace(&nss[0]).await.unwrap());
    assert_eq!(store.get(&nss[0], b"k1").await.unwrap(), None);
    assert_eq!(
        store.get(&nss[1], b"k1").await.unwrap(),
        Some(b(&format!("{}=1", nss[1])))
    );
    store.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_within_one_namespace_and_are_refused_across() {
    let cluster = cluster();
    let prefix = unique_prefix("cltx");
    let clock = ManualClock::at_fixed_start();
    let store = clustered(cluster.urls(), &prefix, &clock).await;
    assert_eq!(
        storage_redis::CLUSTER_CAPABILITIES.transaction_scope,
        TransactionScope::Namespace
    );
    // Two namespaces on different masters, so a cross-namespace script
    // could not run even if the store tried.
    let nss = namespaces();
    for ns in &nss {
        store
            .put(ns, b"seed", b("s"), PutOptions::default())
            .await
            .unwrap();
    }
    let owners = owners(&cluster, &prefix, &nss);
    let a = nss[0].clone();
    let other = nss
        .iter()
        .find(|ns| owners[*ns] != owners[&a])
        .expect("a namespace on another master")
        .clone();

    let cross = store
        .transact(vec![
            TxOp::put(a.as_str(), b("x"), b("1")),
            TxOp::put(other.as_str(), b("y"), b("2")),
        ])
        .await;
    assert!(
        matches!(
            cross,
            Err(Error::InvalidInput { .. } | Error::Unsupported { .. })
        ),
        "{cross:?}"
    );
    assert_eq!(store.get(&a, b"x").await.unwrap(), None);
    assert_eq!(store.get(&other, b"y").await.unwrap(), None);

    // Within one namespace: conditions hold → every write applies.
    let seed = store.get_versioned(&a, b"seed").await.unwrap().unwrap();
    let versions = store
        .transact(vec![
            TxOp::put(a.as_str(), b("x"), b("1")).when(Condition::Absent),
            TxOp::put(a.as_str(), b("seed"), b("s2")).when(Condition::Version(seed.version)),
            TxOp::check(a.as_str(), b("k-missing"), Condition::Absent),
        ])
        .await
        .unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions[0].is_some() && versions[1].is_some() && versions[2].is_none());
    assert_eq!(store.get(&a, b"x").await.unwrap(), Some(b("1")));
    assert_eq!(store.get(&a, b"seed").await.unwrap(), Some(b("s2")));

    // A failed condition changes nothing and names the operation.
    let failed = store
        .transact(vec![
            TxOp::put(a.as_str(), b("z"), b("1")),
            TxOp::put(a.as_str(), b("x"), b("2")).when(Condition::Absent),
        ])
        .await;
    assert!(
        matches!(failed, Err(Error::Conflict { index: Some(1), .. })),
        "{failed:?}"
    );
    assert_eq!(store.get(&a, b"z").await.unwrap(), None);
    assert_eq!(store.get(&a, b"x").await.unwrap(), Some(b("1")));
    store.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_leaves_no_key_of_the_prefix_on_any_master() {
    let cluster = cluster();
    let prefix = unique_prefix("cld");
    let keep_prefix = unique_prefix("clk");
    let clock = ManualClock::at_fixed_start();
    let store = clustered(cluster.urls(), &prefix, &clock).await;
    let keep = clustered(cluster.urls(), &keep_prefix, &clock).await;
    let nss = namespaces();
    for ns in &nss {
        store
            .put(ns, b"k", b("v"), PutOptions::default())
            .await
            .unwrap();
        keep.put(ns, b"k", b("kept"), PutOptions::default())
            .await
            .unwrap();
    }
    let before = cluster_keys_of(&cluster, &prefix);
    let masters: BTreeSet<String> = before
        .iter()
        .map(|k| cluster.owner_of(k).unwrap())
        .collect();
    assert!(masters.len() >= 2, "keys on one master only: {masters:?}");

    store.destroy().await.unwrap();
    let after = cluster_keys_of(&cluster, &prefix);
    assert!(
        after.is_empty(),
        "left behind: {:?}",
        after
            .iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    assert!(store.list_namespaces().await.unwrap().is_empty());
    // Another store's keys on the same masters are untouched.
    for ns in &nss {
        assert_eq!(keep.get(ns, b"k").await.unwrap(), Some(b("kept")));
    }
    // Destroying an empty store is fine.
    store.destroy().await.unwrap();
    keep.destroy().await.unwrap();
    assert!(cluster_keys_of(&cluster, &keep_prefix).is_empty());
}
